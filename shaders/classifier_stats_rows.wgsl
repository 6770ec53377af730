// classifier_stats_rows: classifier_stats with one invocation per row instead of one workgroup:
// no workgroup reductions, so no barriers. The same formula, bindings and merging of chunks,
// and the same results up to summation order (a row's chunk is read in order, twice: its max,
// then the sum of exponentials). Taken where the per-adapter trial chose LayerNorm's rows
// kernels (CPU rasterisers, where a barrier switches between a workgroup's invocations): on
// lavapipe `tiny`'s 1024 rows of 65 logits took 2.0 ms with a workgroup a row.
// Legend: N rows (B*T), Vc the chunk's width, v0 its first token.
// Twin: cpu::crossentropy_softmax (the statistics behind its losses).
//   per row n, over the chunk: m_c = max_j l[n,j], s_c = sum_j exp(l[n,j] - m_c)
//   merged into the row's stats (max m, sum s): m' = max(m, m_c),
//   s' = s exp(m - m') + s_c exp(m_c - m')   (first = 1 starts them at m_c, s_c)
//   and the target's logit is kept when the target falls in the chunk.

struct Params { n: u32, vc: u32, v0: u32, first: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>; // (N, 3): max, sum, target logit
@group(0) @binding(2) var<storage, read> logits: array<f32>;      // (N, Vc): this chunk
@group(0) @binding(3) var<storage, read> targets: array<u32>;     // (N), 0xffffffff: ignored

@compute @workgroup_size(64)
fn classifier_stats_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    let row = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (row >= p.n) { return; }
    let base = row * p.vc;
    var m_c = -3.0e38;
    for (var i = 0u; i < p.vc; i++) { m_c = max(m_c, logits[base + i]); }
    var s_c = 0.0;
    for (var i = 0u; i < p.vc; i++) { s_c += exp(logits[base + i] - m_c); }
    let o = row * 3u;
    if (p.first == 1u) {
        stats[o] = m_c;
        stats[o + 1u] = s_c;
        stats[o + 2u] = 0.0;
    } else {
        let m0 = stats[o];
        let m1 = max(m0, m_c);
        stats[o] = m1;
        stats[o + 1u] = stats[o + 1u] * exp(m0 - m1) + s_c * exp(m_c - m1);
    }
    let tgt = targets[row];
    if (tgt >= p.v0 && tgt < p.v0 + p.vc) { stats[o + 2u] = logits[base + tgt - p.v0]; }
}
