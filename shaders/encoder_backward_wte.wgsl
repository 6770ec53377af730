// encoder_backward_wte: the token embedding's share of the gradient, added into dwte.
// Legend: N = B*T positions, C channels, V vocabulary. Twin: cpu::encoder_backward (its dwte).
//   forward:  out[n,:] = wte[tokens[n],:] + ...
//   backward: dwte[v,:] += sum over positions n with tokens[n] == v of dout[n,:]
// Floats are never added atomically: the CPU groups positions by token ("buckets") and each
// thread owns one (token, channel) pair, summing its positions in a fixed order.
// buckets = [count, token[N], offset[N+1], position[N]]: bucket u holds token[u] and the
// positions position[offset[u] .. offset[u+1]].
// wte's gradient may be split by rows like wte: this dispatch adds into the buffer holding rows
// [row0, row0 + rows) and skips the other tokens.

struct Params { n: u32, c: u32, row0: u32, rows: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dwte: array<f32>; // (rows, C), added into
@group(0) @binding(2) var<storage, read> dout: array<f32>;       // (N, C)
@group(0) @binding(3) var<storage, read> buckets: array<u32>;    // (1 + N + N+1 + N)

@compute @workgroup_size(256)
fn encoder_backward_wte(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    let u = i / p.c;
    let ch = i % p.c;
    if (u >= buckets[0]) { return; }
    let token = buckets[1u + u];
    if (token < p.row0 || token >= p.row0 + p.rows) { return; }
    let start = buckets[1u + p.n + u];
    let end = buckets[1u + p.n + u + 1u];
    let positions = 1u + p.n + p.n + 1u;
    var acc = 0.0;
    for (var j = start; j < end; j++) {
        acc += dout[buckets[positions + j] * p.c + ch];
    }
    dwte[(token - p.row0) * p.c + ch] += acc;
}
