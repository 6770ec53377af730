// encoder_backward_wpe: the position embedding's gradient, written (not added).
// Legend: B batch, T time, C channels. Twin: cpu::encoder_backward (its dwpe).
//   forward:  out[b,t,:] = ... + wpe[t,:]
//   backward: dwpe[t,:] = sum over b of dout[b,t,:]
// Rows t >= T are never written and stay zero.

struct Params { b: u32, t: u32, c: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dwpe: array<f32>; // (maxT, C)
@group(0) @binding(2) var<storage, read> dout: array<f32>;       // (B, T, C)

@compute @workgroup_size(256)
fn encoder_backward_wpe(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= p.t * p.c) { return; }
    var acc = 0.0;
    for (var b = 0u; b < p.b; b++) {
        acc += dout[b * p.t * p.c + i];
    }
    dwpe[i] = acc;
}
