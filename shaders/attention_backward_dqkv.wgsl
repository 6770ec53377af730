// attention_backward_dqkv: gradients of q, k and v for one position, written.
// Legend: B batch, T time, C channels, NH heads, hs = C/NH. Twin: part of cpu::attention_backward.
//   forward:  p = q.k (scaled inside dpreatt); att = softmax(p); out = att @ v
//   backward: dq[t]  = sum over t2 <= t of dpreatt[t, t2] * k[t2]
//             dk[t]  = sum over t1 >= t of dpreatt[t1, t] * q[t1]
//             dv[t]  = sum over t1 >= t of att[t1, t] * dout[t1]
// One thread per (b, h, t) owns dq, dk and dv of that position and head: no two writers.

struct Params { b: u32, t: u32, c: u32, nh: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>; // (B, T, 3C)
@group(0) @binding(2) var<storage, read> dout: array<f32>;       // (B, T, C)
@group(0) @binding(3) var<storage, read> inp: array<f32>;        // (B, T, 3C)
@group(0) @binding(4) var<storage, read> att: array<f32>;        // (B, NH, T, T)
@group(0) @binding(5) var<storage, read> dpreatt: array<f32>;    // (B, NH, T, T)

@compute @workgroup_size(64)
fn attention_backward_dqkv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) lid: u32) {
    let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (idx >= p.b * p.nh * p.t) { return; }
    let t = idx % p.t;
    let h = (idx / p.t) % p.nh;
    let b = idx / (p.t * p.nh);
    let hs = p.c / p.nh;
    let c3 = 3u * p.c;
    let square = (b * p.nh + h) * p.t * p.t;
    let here = (b * p.t + t) * c3 + h * hs;

    for (var d = 0u; d < hs; d++) {
        var dq = 0.0;
        for (var t2 = 0u; t2 <= t; t2++) {
            dq += dpreatt[square + t * p.t + t2] * inp[(b * p.t + t2) * c3 + p.c + h * hs + d];
        }
        var dk = 0.0;
        var dv = 0.0;
        for (var t1 = t; t1 < p.t; t1++) {
            dk += dpreatt[square + t1 * p.t + t] * inp[(b * p.t + t1) * c3 + h * hs + d];
            dv += att[square + t1 * p.t + t] * dout[(b * p.t + t1) * p.c + h * hs + d];
        }
        dinp[here + d] = dq;
        dinp[here + p.c + d] = dk;
        dinp[here + 2u * p.c + d] = dv;
    }
}
