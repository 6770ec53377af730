// grad_norm_partial: sums of squares of one gradient tensor, one partial per workgroup.
// Twin: cpu::global_grad_norm (first half). Each tensor owns slots [slot, slot + groups) of
// `partials`, so every value has one writer and grad_norm_finalize adds them in a fixed order.

struct Params { numel: u32, slot: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>; // (total slots)
@group(0) @binding(2) var<storage, read> grad: array<f32>;           // (numel)

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn grad_norm_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = wid.x * 256u + lid; i < p.numel; i += nwg.x * 256u) { s += grad[i] * grad[i]; }
    red[lid] = s;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k >>= 1u) {
        if (lid < k) { red[lid] += red[lid + k]; }
        workgroupBarrier();
    }
    if (lid == 0u) { partials[p.slot + wid.x] = red[0]; }
}
