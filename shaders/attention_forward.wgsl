// attention_forward: causal multi-head self-attention over the fused q,k,v projection.
// Legend: B batch, T time, C channels, NH heads, hs = C/NH. Twin: cpu::attention_forward.
//   q, k, v = inp[.., 0:C], inp[.., C:2C], inp[.., 2C:3C]; head h owns channels h*hs..(h+1)*hs
//   att[b,h,t,:] = softmax over t2 <= t of q[t].k[t2] / sqrt(hs)  (0 for t2 > t)
//   out[b,t,h*hs+d] = sum over t2 of att[b,h,t,t2] * v[t2,d]
// One thread per (b, h, t) row; the probabilities are kept for the backward pass.

struct Params { b: u32, t: u32, c: u32, nh: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (B, T, C)
@group(0) @binding(2) var<storage, read_write> att: array<f32>; // (B, NH, T, T)
@group(0) @binding(3) var<storage, read> inp: array<f32>;       // (B, T, 3C)

@compute @workgroup_size(64)
fn attention_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (idx >= p.b * p.nh * p.t) { return; }
    let t = idx % p.t;
    let h = (idx / p.t) % p.nh;
    let b = idx / (p.t * p.nh);
    let hs = p.c / p.nh;
    let c3 = 3u * p.c;
    let scale = 1.0 / sqrt(f32(hs));
    let q = (b * p.t + t) * c3 + h * hs;
    let row = idx * p.t;

    var maxv = -3.0e38;
    for (var t2 = 0u; t2 <= t; t2++) {
        let k = (b * p.t + t2) * c3 + p.c + h * hs;
        var dot = 0.0;
        for (var d = 0u; d < hs; d++) { dot += inp[q + d] * inp[k + d]; }
        let s = dot * scale;
        att[row + t2] = s;
        maxv = max(maxv, s);
    }
    var sum = 0.0;
    for (var t2 = 0u; t2 <= t; t2++) {
        let e = exp(att[row + t2] - maxv);
        att[row + t2] = e;
        sum += e;
    }
    let inv = 1.0 / sum;
    for (var t2 = 0u; t2 < p.t; t2++) {
        if (t2 <= t) { att[row + t2] *= inv; } else { att[row + t2] = 0.0; }
    }
    let o = (b * p.t + t) * p.c + h * hs;
    for (var d = 0u; d < hs; d++) {
        var acc = 0.0;
        for (var t2 = 0u; t2 <= t; t2++) {
            acc += att[row + t2] * inp[(b * p.t + t2) * c3 + 2u * p.c + h * hs + d];
        }
        out[o + d] = acc;
    }
}
