// layernorm_backward_dinp: the input's gradient, added into dinp. One workgroup per row.
// Legend: N rows, C channels. Twin: cpu::layernorm_backward (its dinp).
//   forward:  norm = (x - mean) * rstd; out = norm * w + b
//   backward: dnorm = dout * w
//             dinp += rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm))
// Adding (not writing) lets the residual stream's gradient collect both of its paths.

struct Params { n: u32, c: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>; // (N, C), added into
@group(0) @binding(2) var<storage, read> dout: array<f32>;       // (N, C)
@group(0) @binding(3) var<storage, read> inp: array<f32>;        // (N, C)
@group(0) @binding(4) var<storage, read> weight: array<f32>;     // (C)
@group(0) @binding(5) var<storage, read> mean: array<f32>;       // (N)
@group(0) @binding(6) var<storage, read> rstd: array<f32>;       // (N)

const WG: u32 = 64u;
var<workgroup> red: array<f32, 64>;

fn workgroup_sum(v: f32, lid: u32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) { red[lid] += red[lid + s]; }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(64)
fn layernorm_backward_dinp(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) lid: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.n) { return; }
    let base = row * p.c;
    let m = mean[row];
    let r = rstd[row];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var i = lid; i < p.c; i += WG) {
        let dnorm = dout[base + i] * weight[i];
        s1 += dnorm;
        s2 += dnorm * (inp[base + i] - m) * r;
    }
    let mean_dnorm = workgroup_sum(s1, lid) / f32(p.c);
    let mean_dnorm_norm = workgroup_sum(s2, lid) / f32(p.c);
    for (var i = lid; i < p.c; i += WG) {
        let norm = (inp[base + i] - m) * r;
        let dnorm = dout[base + i] * weight[i];
        dinp[base + i] += r * (dnorm - mean_dnorm - norm * mean_dnorm_norm);
    }
}
