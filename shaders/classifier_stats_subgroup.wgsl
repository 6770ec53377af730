// classifier_stats_subgroup: classifier_stats with its row max and row sum taken by the
// subgroup (subgroupMax, subgroupAdd), then one partial a subgroup merged through workgroup
// memory: two barriers a reduction where the tree takes eight. Taken where the per-adapter trial
// chose LayerNorm's subgroup kernels (adapters with subgroup operations only; nothing assumes a
// subgroup size). The same formula, bindings, merging of chunks, and results up to summation
// order.
// Legend: N rows (B*T), Vc the chunk's width, v0 its first token.
// Twin: cpu::crossentropy_softmax (the statistics behind its losses).
//   per row n, over the chunk: m_c = max_j l[n,j], s_c = sum_j exp(l[n,j] - m_c)
//   merged into the row's stats (max m, sum s): m' = max(m, m_c),
//   s' = s exp(m - m') + s_c exp(m_c - m')   (first = 1 starts them at m_c, s_c)
//   and the target's logit is kept when the target falls in the chunk.
// One workgroup per row.

struct Params { n: u32, vc: u32, v0: u32, first: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>; // (N, 3): max, sum, target logit
@group(0) @binding(2) var<storage, read> logits: array<f32>;      // (N, Vc): this chunk
@group(0) @binding(3) var<storage, read> targets: array<u32>;     // (N), 0xffffffff: ignored

const WG: u32 = 64u;
const MAX_SUBGROUPS: u32 = 16u; // WG over the smallest subgroup wgpu allows (4)
var<workgroup> partial: array<f32, MAX_SUBGROUPS>;

fn workgroup_reduce(v: f32, sg: u32, lane: u32, subgroups: u32, take_max: bool) -> f32 {
    var s: f32;
    if (take_max) { s = subgroupMax(v); } else { s = subgroupAdd(v); }
    if (lane == 0u && sg < MAX_SUBGROUPS) { partial[sg] = s; }
    workgroupBarrier();
    var r = partial[0];
    for (var i = 1u; i < min(subgroups, MAX_SUBGROUPS); i++) {
        if (take_max) { r = max(r, partial[i]); } else { r += partial[i]; }
    }
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(64)
fn classifier_stats_subgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                             @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32,
                             @builtin(subgroup_invocation_id) lane: u32,
                             @builtin(num_subgroups) subgroups: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.n) { return; }
    let base = row * p.vc;
    var m = -3.0e38;
    for (var i = lid; i < p.vc; i += WG) { m = max(m, logits[base + i]); }
    let m_c = workgroup_reduce(m, sg, lane, subgroups, true);
    var s = 0.0;
    for (var i = lid; i < p.vc; i += WG) { s += exp(logits[base + i] - m_c); }
    let s_c = workgroup_reduce(s, sg, lane, subgroups, false);
    if (lid != 0u) { return; }
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
