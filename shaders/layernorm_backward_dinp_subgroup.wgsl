// layernorm_backward_dinp_subgroup: layernorm_backward_dinp with its two row sums taken by the
// subgroup (subgroupAdd), then one partial a subgroup added through workgroup memory (see
// layernorm_forward_subgroup: adapters with subgroup operations only, no assumed subgroup size).
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
const MAX_SUBGROUPS: u32 = 16u; // WG over the smallest subgroup wgpu allows (4)
var<workgroup> partial: array<vec2<f32>, MAX_SUBGROUPS>;

// Both sums at once: one pair of barriers for the two.
fn workgroup_sum2(v: vec2<f32>, sg: u32, lane: u32, subgroups: u32) -> vec2<f32> {
    let s = subgroupAdd(v);
    if (lane == 0u && sg < MAX_SUBGROUPS) { partial[sg] = s; }
    workgroupBarrier();
    var total = vec2(0.0);
    for (var i = 0u; i < min(subgroups, MAX_SUBGROUPS); i++) { total += partial[i]; }
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(64)
fn layernorm_backward_dinp_subgroup(@builtin(workgroup_id) wid: vec3<u32>,
                                    @builtin(num_workgroups) nwg: vec3<u32>,
                                    @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32,
                                    @builtin(subgroup_invocation_id) lane: u32,
                                    @builtin(num_subgroups) subgroups: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.n) { return; }
    let base = row * p.c;
    let m = mean[row];
    let r = rstd[row];
    var s = vec2(0.0);
    for (var i = lid; i < p.c; i += WG) {
        let dnorm = dout[base + i] * weight[i];
        s += vec2(dnorm, dnorm * (inp[base + i] - m) * r);
    }
    let means = workgroup_sum2(s, sg, lane, subgroups) / f32(p.c); // mean(dnorm), mean(dnorm * norm)
    for (var i = lid; i < p.c; i += WG) {
        let norm = (inp[base + i] - m) * r;
        let dnorm = dout[base + i] * weight[i];
        dinp[base + i] += r * (dnorm - means.x - norm * means.y);
    }
}
