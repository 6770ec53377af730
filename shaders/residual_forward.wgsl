// residual_forward: out = inp1 + inp2, elementwise. Twin: cpu::residual_forward.
// Its backward is the identity, so the residual stream's gradient needs no kernel.

struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (N)
@group(0) @binding(2) var<storage, read> inp1: array<f32>;      // (N)
@group(0) @binding(3) var<storage, read> inp2: array<f32>;      // (N)

@compute @workgroup_size(256)
fn residual_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= p.n) { return; }
    out[i] = inp1[i] + inp2[i];
}
