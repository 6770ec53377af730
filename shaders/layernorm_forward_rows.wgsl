// layernorm_forward_rows: layernorm_forward with one invocation per row instead of one
// workgroup: no workgroup reductions, so no barriers. The same formula, bindings and results up
// to summation order (a row is summed in order). Faster where barriers are dear (CPU rasterisers
// run a workgroup's invocations as coroutines that switch at each barrier); the per-adapter
// trial chooses between the two.
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

@compute @workgroup_size(64)
fn layernorm_forward_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
    let row = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (row >= p.n) { return; }
    let base = row * p.c;
    var s = 0.0;
    for (var i = 0u; i < p.c; i++) { s += inp[base + i]; }
    let m = s / f32(p.c);
    var sq = 0.0;
    for (var i = 0u; i < p.c; i++) { let d = inp[base + i] - m; sq += d * d; }
    let r = 1.0 / sqrt(sq / f32(p.c) + 1e-5);
    for (var i = 0u; i < p.c; i++) {
        out[base + i] = (inp[base + i] - m) * r * weight[i] + bias[i];
    }
    mean[row] = m;
    rstd[row] = r;
}
