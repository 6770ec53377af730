// matmul_backward_bias: the bias's gradient, written. A workgroup per block of COLS output
// channels: LANES invocations per channel sum every LANES-th row, then add their sums in a fixed
// tree in workgroup memory (deterministic; no atomics). Against one invocation per channel this
// puts LANES times as many invocations to work and shortens each serial sum LANES times, which is
// what a wide GPU needs when OC is a few hundred and N many thousands.
// Legend: N rows, OC output channels. Twin: cpu::matmul_backward (its dbias).
//   forward:  out[n,o] = ... + bias[o]
//   backward: dbias[o] = sum over n of dout[n,o]

struct Params { n: u32, oc: u32 }

// Channels per workgroup (COLUMNS_PER_GROUP in gpt/backward.rs) and rows summed side by side.
const COLS: u32 = 16u;
const LANES: u32 = 16u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dbias: array<f32>; // (OC)
@group(0) @binding(2) var<storage, read> dout: array<f32>;        // (N, OC)

var<workgroup> part: array<f32, COLS * LANES>; // [LANES][COLS]

@compute @workgroup_size(16, 16)
fn matmul_backward_bias(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let o = (wid.x + wid.y * nwg.x) * COLS + lid.x;
    var acc = 0.0;
    if (o < p.oc) {
        for (var row = lid.y; row < p.n; row += LANES) {
            acc += dout[row * p.oc + o];
        }
    }
    part[lid.y * COLS + lid.x] = acc;
    for (var s = LANES / 2u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (lid.y < s) {
            part[lid.y * COLS + lid.x] += part[(lid.y + s) * COLS + lid.x];
        }
    }
    if (lid.y == 0u && o < p.oc) {
        dbias[o] = part[lid.x];
    }
}
