// attention_decode: attention of the newest position over the KV cache, one thread per head.
// Legend: C channels, NH heads, hs = C/NH, maxT the block size. Twin: row t = pos of
// cpu::attention_forward.
//   att[h, t2] = softmax over t2 <= pos of q[h].k[t2] / sqrt(hs)
//   out[h*hs + d] = sum over t2 of att[h, t2] * v[t2, h*hs + d]
// The probabilities stay in `att` for the page's attention view.

struct Params { c: u32, nh: u32, max_t: u32 } // c and nh: as HS * NH and NH below

// The head size and the number of heads, compiled in (rewritten for each model; see
// `gpt::forward`). Read from the uniform, as loop bounds and a condition, they made lavapipe
// (Mesa 22.3) compile the kernel again at every dispatch with the values inlined, and keep every
// copy: 166 KB of host memory and about 2 ms per generated token (native/tests/soak.rs found it).
const HS: u32 = 64u;
const NH: u32 = 12u;
const C: u32 = HS * NH;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;  // (C)
@group(0) @binding(2) var<storage, read_write> att: array<f32>;  // (NH, maxT)
@group(0) @binding(3) var<storage, read> qkv: array<f32>;        // (3C): q of the newest position
@group(0) @binding(4) var<storage, read> cache_k: array<f32>;    // (maxT, C)
@group(0) @binding(5) var<storage, read> cache_v: array<f32>;    // (maxT, C)
@group(0) @binding(6) var<storage, read> cursor: array<u32>;     // (2): token, pos

@compute @workgroup_size(64)
fn attention_decode(@builtin(global_invocation_id) gid: vec3<u32>) {
    let h = gid.x;
    if (h >= NH) { return; }
    let pos = cursor[1];
    let scale = 1.0 / sqrt(f32(HS));
    let row = h * p.max_t;
    var maxv = -3.0e38;
    for (var t2 = 0u; t2 <= pos; t2++) {
        var dot = 0.0;
        for (var d = 0u; d < HS; d++) { dot += qkv[h * HS + d] * cache_k[t2 * C + h * HS + d]; }
        let s = dot * scale;
        att[row + t2] = s;
        maxv = max(maxv, s);
    }
    var sum = 0.0;
    for (var t2 = 0u; t2 <= pos; t2++) {
        let e = exp(att[row + t2] - maxv);
        att[row + t2] = e;
        sum += e;
    }
    for (var t2 = 0u; t2 <= pos; t2++) { att[row + t2] /= sum; }
    for (var d = 0u; d < HS; d++) {
        var acc = 0.0;
        for (var t2 = 0u; t2 <= pos; t2++) { acc += att[row + t2] * cache_v[t2 * C + h * HS + d]; }
        out[h * HS + d] = acc;
    }
}
