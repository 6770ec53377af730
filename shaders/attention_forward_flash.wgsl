// attention_forward_flash: causal multi-head self-attention, flash-style: the scores are never
// stored, only each row's log-sum-exp, which is all the backward pass needs to make them again.
// Legend: B batch, T time, C channels, NH heads, hs = C/NH (at most HS_MAX).
// Twin: cpu::attention_forward (its `out`; lse[b,h,t] = log sum over t2 <= t of exp(s[t2])).
//   s[t2] = q[t].k[t2] / sqrt(hs) for t2 <= t;  out[t] = sum over t2 of softmax(s)[t2] v[t2]
// A workgroup takes WG * ROWS query rows of one (b, h), ROWS consecutive rows an invocation;
// keys and values come through workgroup memory TK rows at a time, and each key read from it
// serves all ROWS rows (reads of workgroup memory, not arithmetic, bound CPU rasterisers; a
// GPU may prefer ROWS = 1 for registers: the trial in `tune` decides). Each row keeps a running
// maximum m, a running sum l of exp(s - m) and its output sum o (the online softmax): a new
// tile's scores are made, m moves to the tile's maximum, and l and o are rescaled once a tile.

const ROWS: u32 = 4u;
// Invocations of a workgroup: 64, or fewer (16, 32) where the block has fewer rows than 64 *
// ROWS, so that few of them idle (`gpt::attention::flash_invocations`).
const WG: u32 = 64u;
const TQ: u32 = WG * ROWS;
const TK: u32 = 16u;
const HS_MAX: u32 = 64u;
const V4: u32 = HS_MAX / 4u;
// Below any score: a key after a row's own position.
const MASKED: f32 = -3.0e38;

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

@compute @workgroup_size(WG)
fn attention_forward_flash(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // wid.x: query tile, wid.y: b * NH + h.
    let bh = wid.y;
    let b = bh / p.nh;
    let h = bh % p.nh;
    let hs = p.c / p.nh;
    let n4 = (hs + 3u) / 4u;
    let scale = 1.0 / sqrt(f32(hs));
    let q0 = wid.x * TQ;
    let t0 = q0 + lid * ROWS; // this invocation's first row
    let live = t0 < p.t;
    // The last row this invocation sees keys for.
    let t_end = min(t0 + ROWS - 1u, p.t - 1u);
    var q: array<array<vec4<f32>, V4>, ROWS>;
    var o: array<array<vec4<f32>, V4>, ROWS>;
    var m: array<f32, ROWS>;
    var l: array<f32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        let row = b * p.t + min(t0 + r, p.t - 1u);
        for (var d4 = 0u; d4 < V4; d4++) {
            if (d4 < n4) { q[r][d4] = load4(row, 0u, h, d4, hs) * scale; }
        }
        m[r] = MASKED;
    }
    // Keys up to the tile's last row, TK at a time; invocations past their rows skip them.
    let last = min(q0 + TQ, p.t);
    for (var k0 = 0u; k0 < last; k0 += TK) {
        for (var e = lid; e < TK * V4; e += WG) {
            let j = k0 + e / V4;
            let d4 = e % V4;
            if (j < p.t) {
                k_tile[e] = load4(b * p.t + j, 1u, h, d4, hs);
                v_tile[e] = load4(b * p.t + j, 2u, h, d4, hs);
            }
        }
        workgroupBarrier();
        if (live && k0 <= t_end) {
            var s: array<array<f32, ROWS>, TK>;
            let count = min(TK, t_end + 1u - k0);
            var tile_max = m;
            for (var j = 0u; j < count; j++) {
                // Zero explicitly: Chromium's WebGPU on SwiftShader gave wrong sums (different
                // losses, then non-finite gradients) with `var score: array<f32, ROWS>;` here,
                // which WGSL zeroes each time the loop reaches it; lavapipe did not.
                var score = array<f32, ROWS>();
                for (var d4 = 0u; d4 < V4; d4++) {
                    let k = k_tile[j * V4 + d4];
                    for (var r = 0u; r < ROWS; r++) { score[r] += dot(q[r][d4], k); }
                }
                for (var r = 0u; r < ROWS; r++) {
                    let sr = select(score[r], MASKED, k0 + j > t0 + r);
                    s[j][r] = sr;
                    tile_max[r] = max(tile_max[r], sr);
                }
            }
            for (var r = 0u; r < ROWS; r++) {
                let corr = exp(m[r] - tile_max[r]);
                l[r] *= corr;
                for (var d4 = 0u; d4 < V4; d4++) { o[r][d4] *= corr; }
                m[r] = tile_max[r];
            }
            for (var j = 0u; j < count; j++) {
                var e: array<f32, ROWS>;
                for (var r = 0u; r < ROWS; r++) {
                    e[r] = exp(s[j][r] - m[r]);
                    l[r] += e[r];
                }
                for (var d4 = 0u; d4 < V4; d4++) {
                    let v = v_tile[j * V4 + d4];
                    for (var r = 0u; r < ROWS; r++) { o[r][d4] += e[r] * v; }
                }
            }
        }
        workgroupBarrier();
    }
    if (!live) { return; }
    for (var r = 0u; r < ROWS; r++) {
        let t = t0 + r;
        if (t < p.t) {
            let inv = 1.0 / l[r];
            let o_base = (b * p.t + t) * p.c + h * hs;
            for (var d4 = 0u; d4 < V4; d4++) {
                for (var i = 0u; i < 4u; i++) {
                    let d = d4 * 4u + i;
                    if (d < hs) { out[o_base + d] = o[r][d4][i] * inv; }
                }
            }
            lse[bh * p.t + t] = m[r] + log(l[r]);
        }
    }
}
