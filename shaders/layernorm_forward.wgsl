// layernorm_forward: normalise each row, then scale and shift. One workgroup per row.
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
var<workgroup> red: array<f32, 64>;

// Sum of one value per invocation, in a fixed tree order (deterministic).
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
fn layernorm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.n) { return; }
    let base = row * p.c;
    var s = 0.0;
    for (var i = lid; i < p.c; i += WG) { s += inp[base + i]; }
    let m = workgroup_sum(s, lid) / f32(p.c);
    var sq = 0.0;
    for (var i = lid; i < p.c; i += WG) { let d = inp[base + i] - m; sq += d * d; }
    let r = 1.0 / sqrt(workgroup_sum(sq, lid) / f32(p.c) + 1e-5);
    for (var i = lid; i < p.c; i += WG) {
        out[base + i] = (inp[base + i] - m) * r * weight[i] + bias[i];
    }
    if (lid == 0u) { mean[row] = m; rstd[row] = r; }
}
