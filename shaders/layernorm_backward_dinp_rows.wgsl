// layernorm_backward_dinp_rows: layernorm_backward_dinp with one invocation per row instead of
// one workgroup (no barriers; see layernorm_forward_rows for why and when). Added into dinp.
// Legend: N rows, C channels. Twin: cpu::layernorm_backward (its dinp).
//   forward:  norm = (x - mean) * rstd; out = norm * w + b
//   backward: dnorm = dout * w
//             dinp += rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm))

struct Params { n: u32, c: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>; // (N, C), added into
@group(0) @binding(2) var<storage, read> dout: array<f32>;       // (N, C)
@group(0) @binding(3) var<storage, read> inp: array<f32>;        // (N, C)
@group(0) @binding(4) var<storage, read> weight: array<f32>;     // (C)
@group(0) @binding(5) var<storage, read> mean: array<f32>;       // (N)
@group(0) @binding(6) var<storage, read> rstd: array<f32>;       // (N)

@compute @workgroup_size(64)
fn layernorm_backward_dinp_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                @builtin(local_invocation_index) lid: u32) {
    let row = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (row >= p.n) { return; }
    let base = row * p.c;
    let m = mean[row];
    let r = rstd[row];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var i = 0u; i < p.c; i++) {
        let dnorm = dout[base + i] * weight[i];
        s1 += dnorm;
        s2 += dnorm * (inp[base + i] - m) * r;
    }
    let mean_dnorm = s1 / f32(p.c);
    let mean_dnorm_norm = s2 / f32(p.c);
    for (var i = 0u; i < p.c; i++) {
        let norm = (inp[base + i] - m) * r;
        let dnorm = dout[base + i] * weight[i];
        dinp[base + i] += r * (dnorm - mean_dnorm - norm * mean_dnorm_norm);
    }
}
