// mean_loss: the mean of the per-position losses, in a fixed order. One workgroup.
// Legend: N positions. Twin: the plain mean of cpu::crossentropy_softmax's losses.
//   out[0] = sum(losses) / N, or out[0] += that when accumulate = 1 (evaluation over batches).

struct Params { n: u32, accumulate: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (1)
@group(0) @binding(2) var<storage, read> losses: array<f32>;    // (N)

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn mean_loss(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < p.n; i += 256u) { s += losses[i]; }
    red[lid] = s;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k >>= 1u) {
        if (lid < k) { red[lid] += red[lid + k]; }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let mean = red[0] / f32(p.n);
        if (p.accumulate == 1u) { out[0] += mean; } else { out[0] = mean; }
    }
}
