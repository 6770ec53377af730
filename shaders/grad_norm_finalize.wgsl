// grad_norm_finalize: the global gradient norm and the clipping scale. One workgroup.
// Twins: cpu::global_grad_norm and cpu::clip_scale.
//   norm = sqrt(sum of partials); scale = min(1, max_norm / (norm + 1e-6)) (PyTorch's rule),
//   or 1 when max_norm <= 0 (clipping off). AdamW reads the scale on the GPU: no read-back.

struct Params { count: u32, max_norm: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> norm: array<f32>;  // (2): norm, scale
@group(0) @binding(2) var<storage, read> partials: array<f32>;    // (count)

var<workgroup> red: array<f32, 256>;

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
        norm[0] = n;
        norm[1] = select(1.0, min(1.0, p.max_norm / (n + 1e-6)), p.max_norm > 0.0);
    }
}
