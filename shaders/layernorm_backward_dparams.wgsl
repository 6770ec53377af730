// layernorm_backward_dparams: gradients of the scale and shift, written. One thread per channel.
// Legend: N rows, C channels. Twin: cpu::layernorm_backward (its dweight and dbias).
//   forward:  out = norm * w + b, norm = (x - mean) * rstd
//   backward: dweight[c] = sum over rows of dout * norm; dbias[c] = sum over rows of dout

struct Params { n: u32, c: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dweight: array<f32>; // (C)
@group(0) @binding(2) var<storage, read_write> dbias: array<f32>;   // (C)
@group(0) @binding(3) var<storage, read> dout: array<f32>;          // (N, C)
@group(0) @binding(4) var<storage, read> inp: array<f32>;           // (N, C)
@group(0) @binding(5) var<storage, read> mean: array<f32>;          // (N)
@group(0) @binding(6) var<storage, read> rstd: array<f32>;          // (N)

@compute @workgroup_size(64)
fn layernorm_backward_dparams(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ch = gid.x;
    if (ch >= p.c) { return; }
    var dw = 0.0;
    var db = 0.0;
    for (var row = 0u; row < p.n; row++) {
        let d = dout[row * p.c + ch];
        dw += d * (inp[row * p.c + ch] - mean[row]) * rstd[row];
        db += d;
    }
    dweight[ch] = dw;
    dbias[ch] = db;
}
