// layernorm_forward_subgroup: layernorm_forward with each row sum taken by the subgroup
// (subgroupAdd), then one partial a subgroup added through workgroup memory: two barriers a sum
// where layernorm_forward's tree takes eight. Only for adapters with subgroup operations
// (wgpu's Features::SUBGROUP; native only in wgpu 30); the per-adapter trial times it beside
// the workgroup and rows kernels. Nothing assumes a subgroup size: the builtins give each
// invocation its subgroup and lane (an adapter's subgroups hold 4 to 128 invocations, so a
// workgroup of 64 has at most 16). The same formula, bindings and results up to summation order.
// Legend: N rows (B*T), C channels. Twin: cpu::layernorm_forward.
//   mean = sum(x)/C; var = sum((x-mean)^2)/C; rstd = 1/sqrt(var + 1e-5)
//   out = (x - mean) * rstd * weight + bias; mean and rstd are kept for the backward pass.

struct Params { n: u32, c: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;  // (N, C)
@group(0) @binding(2) var<storage, read_write> mean: array<f32>; // (N)
@group(0) @binding(3) var<storage, read_write> rstd: array<f32>; // (N)
@group(0) @binding(4) var<storage, read> inp: array<f32>;        // (N, C)
@group(0) @binding(5) var<storage, read> weight: array<f32>;     // (C)
@group(0) @binding(6) var<storage, read> bias: array<f32>;       // (C)

const WG: u32 = 64u;
const MAX_SUBGROUPS: u32 = 16u; // WG over the smallest subgroup wgpu allows (4)
var<workgroup> partial: array<f32, MAX_SUBGROUPS>;

// Sum of one value per invocation: each subgroup's sum, then the subgroups' in order of their
// ids (deterministic on a given adapter: its subgroup sum has one order).
fn workgroup_sum(v: f32, sg: u32, lane: u32, subgroups: u32) -> f32 {
    let s = subgroupAdd(v);
    if (lane == 0u && sg < MAX_SUBGROUPS) { partial[sg] = s; }
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < min(subgroups, MAX_SUBGROUPS); i++) { total += partial[i]; }
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(64)
fn layernorm_forward_subgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                              @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32,
                              @builtin(subgroup_invocation_id) lane: u32,
                              @builtin(num_subgroups) subgroups: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.n) { return; }
    let base = row * p.c;
    var s = 0.0;
    for (var i = lid; i < p.c; i += WG) { s += inp[base + i]; }
    let m = workgroup_sum(s, sg, lane, subgroups) / f32(p.c);
    var sq = 0.0;
    for (var i = lid; i < p.c; i += WG) { let d = inp[base + i] - m; sq += d * d; }
    let r = 1.0 / sqrt(workgroup_sum(sq, sg, lane, subgroups) / f32(p.c) + 1e-5);
    for (var i = lid; i < p.c; i += WG) {
        out[base + i] = (inp[base + i] - m) * r * weight[i] + bias[i];
    }
    if (lid == 0u) { mean[row] = m; rstd[row] = r; }
}
