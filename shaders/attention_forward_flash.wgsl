// attention_forward_flash: causal multi-head self-attention, flash-style: the scores are never
// stored, only each row's log-sum-exp, which is all the backward pass needs to make them again.
// Legend: B batch, T time, C channels, NH heads, hs = C/NH (at most HS_MAX).
// Twin: cpu::attention_forward (its `out`; lse[b,h,t] = log sum over t2 <= t of exp(s[t2])).
//   s[t2] = q[t].k[t2] / sqrt(hs) for t2 <= t;  out[t] = sum over t2 of softmax(s)[t2] v[t2]
// A workgroup takes TQ query rows of one (b, h), one invocation per row; keys and values come
// through workgroup memory TK rows at a time, shared by every row. Each row keeps a running
// maximum m, a running sum l of exp(s - m) and its output sum o (the online softmax): a new
// tile's scores are made, m moves to the tile's maximum, and l and o are rescaled once a tile.

const TQ: u32 = 64u;
const TK: u32 = 16u;
const HS_MAX: u32 = 64u;
const V4: u32 = HS_MAX / 4u;

struct Params { b: u32, t: u32, c: u32, nh: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (B, T, C)
@group(0) @binding(2) var<storage, read_write> lse: array<f32>; // (B, NH, T)
@group(0) @binding(3) var<storage, read> inp: array<f32>;       // (B, T, 3C)

var<workgroup> k_tile: array<vec4<f32>, TK * V4>; // [TK][HS_MAX / 4]
var<workgroup> v_tile: array<vec4<f32>, TK * V4>;

// Four channels d4*4.. of row `row` of q, k or v (part 0, 1, 2), zero past hs.
fn load4(row: u32, part: u32, h: u32, d4: u32, hs: u32) -> vec4<f32> {
    let base = row * 3u * p.c + part * p.c + h * hs;
    var r = vec4<f32>();
    for (var i = 0u; i < 4u; i++) {
        let d = d4 * 4u + i;
        if (d < hs) { r[i] = inp[base + d]; }
    }
    return r;
}

@compute @workgroup_size(64)
fn attention_forward_flash(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // wid.x: query tile, wid.y: b * NH + h.
    let bh = wid.y;
    let b = bh / p.nh;
    let h = bh % p.nh;
    let hs = p.c / p.nh;
    let n4 = (hs + 3u) / 4u;
    let scale = 1.0 / sqrt(f32(hs));
    let q0 = wid.x * TQ;
    let t = q0 + lid;
    let live = t < p.t;
    let row = b * p.t + min(t, p.t - 1u);
    var q: array<vec4<f32>, V4>;
    var o: array<vec4<f32>, V4>;
    for (var d4 = 0u; d4 < V4; d4++) {
        if (d4 < n4) { q[d4] = load4(row, 0u, h, d4, hs) * scale; }
    }
    var m = -3.0e38;
    var l = 0.0;
    // Keys up to the tile's last row, TK at a time; rows past their own position skip them.
    let last = min(q0 + TQ, p.t);
    for (var k0 = 0u; k0 < last; k0 += TK) {
        for (var e = lid; e < TK * V4; e += 64u) {
            let j = k0 + e / V4;
            let d4 = e % V4;
            if (j < p.t) {
                k_tile[e] = load4(b * p.t + j, 1u, h, d4, hs);
                v_tile[e] = load4(b * p.t + j, 2u, h, d4, hs);
            }
        }
        workgroupBarrier();
        if (live && k0 <= t) {
            var s: array<f32, TK>;
            let count = min(TK, t + 1u - k0);
            var tile_max = m;
            for (var j = 0u; j < count; j++) {
                var score = 0.0;
                for (var d4 = 0u; d4 < V4; d4++) { score += dot(q[d4], k_tile[j * V4 + d4]); }
                s[j] = score;
                tile_max = max(tile_max, score);
            }
            let corr = exp(m - tile_max);
            l *= corr;
            for (var d4 = 0u; d4 < V4; d4++) { o[d4] *= corr; }
            for (var j = 0u; j < count; j++) {
                let e = exp(s[j] - tile_max);
                l += e;
                for (var d4 = 0u; d4 < V4; d4++) { o[d4] += e * v_tile[j * V4 + d4]; }
            }
            m = tile_max;
        }
        workgroupBarrier();
    }
    if (!live) { return; }
    let inv = 1.0 / l;
    let o_base = (b * p.t + t) * p.c + h * hs;
    for (var d4 = 0u; d4 < V4; d4++) {
        for (var i = 0u; i < 4u; i++) {
            let d = d4 * 4u + i;
            if (d < hs) { out[o_base + d] = o[d4][i] * inv; }
        }
    }
    lse[bh * p.t + t] = m + log(l);
}
