// matmul_backward_bias: the bias's gradient, written. One thread per output channel.
// Legend: N rows, OC output channels. Twin: cpu::matmul_backward (its dbias).
//   forward:  out[n,o] = ... + bias[o]
//   backward: dbias[o] = sum over n of dout[n,o]

struct Params { n: u32, oc: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dbias: array<f32>; // (OC)
@group(0) @binding(2) var<storage, read> dout: array<f32>;        // (N, OC)

@compute @workgroup_size(64)
fn matmul_backward_bias(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x;
    if (o >= p.oc) { return; }
    var acc = 0.0;
    for (var row = 0u; row < p.n; row++) {
        acc += dout[row * p.oc + o];
    }
    dbias[o] = acc;
}
