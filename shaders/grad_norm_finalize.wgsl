// grad_norm_finalize: the global gradient norm, the clipping scale, and whether this step may
// update the weights at all. One workgroup.
// Twins: cpu::global_grad_norm, cpu::clip_scale and cpu::step_is_finite.
//   norm = sqrt(sum of partials); scale = min(1, max_norm / (norm + 1e-6)) (PyTorch's rule),
//   or 1 when max_norm <= 0 (clipping off). AdamW reads the scale on the GPU: no read-back.
//   skip = 1 when the batch's loss or the norm is not finite (inf or NaN), else 0: AdamW then
//   leaves the weights and moments as they were; skipped counts such steps for the read-back.
// Finiteness is tested on the bits (exponent all ones), since compilers may assume floats are
// finite and fold `x != x` away.
struct Params { count: u32, max_norm: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> norm: array<f32>;  // (4): norm, scale, skip, skipped
@group(0) @binding(2) var<storage, read> partials: array<f32>;    // (count)
@group(0) @binding(3) var<storage, read> loss: array<f32>;        // (2): the batch's mean loss, dloss

var<workgroup> red: array<f32, 256>;

fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(256)
fn grad_norm_finalize(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < p.count; i += 256u) { s += partials[i]; }
    red[lid] = s;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k >>= 1u) {
        if (lid < k) { red[lid] += red[lid + k]; }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let n = sqrt(red[0]);
        let ok = is_finite(n) && is_finite(loss[0]);
        norm[0] = n;
        norm[1] = select(1.0, min(1.0, p.max_norm / (n + 1e-6)), p.max_norm > 0.0);
        norm[2] = select(1.0, 0.0, ok);
        norm[3] = norm[3] + norm[2];
    }
}
