// layernorm_backward_dparams: gradients of the scale and shift, written. A workgroup per block
// of COLS channels: LANES invocations per channel take every LANES-th row, then add their sums
// in a fixed tree in workgroup memory (deterministic; no atomics), as matmul_backward_bias does.
// Legend: N rows, C channels. Twin: cpu::layernorm_backward (its dweight and dbias).
//   forward:  out = norm * w + b, norm = (x - mean) * rstd
//   backward: dweight[c] = sum over rows of dout * norm; dbias[c] = sum over rows of dout

struct Params { n: u32, c: u32 }

// Channels per workgroup (COLUMNS_PER_GROUP in gpt/backward.rs) and rows summed side by side.
const COLS: u32 = 16u;
const LANES: u32 = 16u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dweight: array<f32>; // (C)
@group(0) @binding(2) var<storage, read_write> dbias: array<f32>;   // (C)
@group(0) @binding(3) var<storage, read> dout: array<f32>;          // (N, C)
@group(0) @binding(4) var<storage, read> inp: array<f32>;           // (N, C)
@group(0) @binding(5) var<storage, read> mean: array<f32>;          // (N)
@group(0) @binding(6) var<storage, read> rstd: array<f32>;          // (N)

var<workgroup> part_w: array<f32, COLS * LANES>; // [LANES][COLS]
var<workgroup> part_b: array<f32, COLS * LANES>;

@compute @workgroup_size(16, 16)
fn layernorm_backward_dparams(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let ch = (wid.x + wid.y * nwg.x) * COLS + lid.x;
    var dw = 0.0;
    var db = 0.0;
    if (ch < p.c) {
        for (var row = lid.y; row < p.n; row += LANES) {
            let d = dout[row * p.c + ch];
            dw += d * (inp[row * p.c + ch] - mean[row]) * rstd[row];
            db += d;
        }
    }
    let at = lid.y * COLS + lid.x;
    part_w[at] = dw;
    part_b[at] = db;
    for (var s = LANES / 2u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (lid.y < s) {
            part_w[at] += part_w[at + s * COLS];
            part_b[at] += part_b[at + s * COLS];
        }
    }
    if (lid.y == 0u && ch < p.c) {
        dweight[ch] = part_w[lid.x];
        dbias[ch] = part_b[lid.x];
    }
}
