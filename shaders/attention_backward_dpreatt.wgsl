// attention_backward_dpreatt: gradient of the scaled scores, through the softmax.
// Legend: B batch, T time, C channels, NH heads, hs = C/NH. Twin: part of cpu::attention_backward.
//   forward:  s = q.k / sqrt(hs); att = softmax(s); out = att @ v
//   backward: datt[t2] = dout[t] . v[t2]
//             ds[t2]   = att[t2] * (datt[t2] - sum_j att[j] * datt[j])
//   dpreatt stores ds / sqrt(hs), the gradient of the raw dot products q.k.
// One thread per (b, h, t) row; it writes only its own row.

struct Params { b: u32, t: u32, c: u32, nh: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dpreatt: array<f32>; // (B, NH, T, T)
@group(0) @binding(2) var<storage, read> dout: array<f32>;          // (B, T, C)
@group(0) @binding(3) var<storage, read> inp: array<f32>;           // (B, T, 3C)
@group(0) @binding(4) var<storage, read> att: array<f32>;           // (B, NH, T, T)

@compute @workgroup_size(64)
fn attention_backward_dpreatt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                              @builtin(local_invocation_index) lid: u32) {
    let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (idx >= p.b * p.nh * p.t) { return; }
    let t = idx % p.t;
    let h = (idx / p.t) % p.nh;
    let b = idx / (p.t * p.nh);
    let hs = p.c / p.nh;
    let c3 = 3u * p.c;
    let scale = 1.0 / sqrt(f32(hs));
    let row = idx * p.t;
    let o = (b * p.t + t) * p.c + h * hs;

    // First pass: datt into the output row; second pass: through the softmax.
    var weighted = 0.0;
    for (var t2 = 0u; t2 <= t; t2++) {
        let v = (b * p.t + t2) * c3 + 2u * p.c + h * hs;
        var dot = 0.0;
        for (var d = 0u; d < hs; d++) { dot += dout[o + d] * inp[v + d]; }
        dpreatt[row + t2] = dot;
        weighted += att[row + t2] * dot;
    }
    for (var t2 = 0u; t2 < p.t; t2++) {
        if (t2 <= t) {
            dpreatt[row + t2] = att[row + t2] * (dpreatt[row + t2] - weighted) * scale;
        } else {
            dpreatt[row + t2] = 0.0;
        }
    }
}
