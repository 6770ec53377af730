// attention_backward_dkv: the gradients of k and v, with the scores made again from the
// log-sum-exp the flash forward pass kept and the deltas attention_backward_dq wrote.
// Legend: B batch, T time, C channels, NH heads, hs = C/NH (at most HS_MAX).
// Twin: the k and v parts of cpu::attention_backward.
//   forward:  s[t1, t] = q[t1].k[t] / sqrt(hs); P[t1, t] = exp(s[t1, t] - lse[t1]); out = P @ v
//   backward: dv[t] = sum over t1 >= t of P[t1, t] dout[t1]
//             dS[t1, t] = P[t1, t] (dout[t1].v[t] - delta[t1])
//             dk[t] = sum over t1 >= t of dS[t1, t] q[t1] / sqrt(hs)
// ROWS consecutive key rows an invocation, WG * ROWS a workgroup; queries, their output
// gradients, lse and delta are staged TQ rows at a time, each query read serving all ROWS key
// rows. It alone writes dk[t] and dv[t].

const ROWS: u32 = 4u;
// Invocations of a workgroup: 64, or fewer (16, 32) where the block has fewer rows than 64 *
// ROWS, so that few of them idle (`gpt::attention::flash_invocations`); never under TQ, whose
// lse and delta rows one invocation each stages.
const WG: u32 = 64u;
const TKV: u32 = WG * ROWS;
const TQ: u32 = 16u;
const HS_MAX: u32 = 64u;
const V4: u32 = HS_MAX / 4u;
struct Params { b: u32, t: u32, c: u32, nh: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>; // (B, T, 3C): the k and v parts
@group(0) @binding(2) var<storage, read> dout: array<f32>;       // (B, T, C)
@group(0) @binding(3) var<storage, read> inp: array<f32>;        // (B, T, 3C)
@group(0) @binding(4) var<storage, read> lse: array<f32>;        // (B, NH, T)
@group(0) @binding(5) var<storage, read> delta: array<f32>;      // (B, NH, T)

var<workgroup> q_tile: array<vec4<f32>, TQ * V4>; // [TQ][HS_MAX / 4], scaled by 1/sqrt(hs)
var<workgroup> g_tile: array<vec4<f32>, TQ * V4>; // dout rows
var<workgroup> lse_tile: array<f32, TQ>;
var<workgroup> delta_tile: array<f32, TQ>;

fn load_inp4(base: u32, d4: u32, hs: u32) -> vec4<f32> {
    var r = vec4<f32>();
    for (var i = 0u; i < 4u; i++) {
        if (d4 * 4u + i < hs) { r[i] = inp[base + d4 * 4u + i]; }
    }
    return r;
}

fn load_dout4(base: u32, d4: u32, hs: u32) -> vec4<f32> {
    var r = vec4<f32>();
    for (var i = 0u; i < 4u; i++) {
        if (d4 * 4u + i < hs) { r[i] = dout[base + d4 * 4u + i]; }
    }
    return r;
}

@compute @workgroup_size(WG)
fn attention_backward_dkv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let bh = wid.y;
    let b = bh / p.nh;
    let h = bh % p.nh;
    let hs = p.c / p.nh;
    let n4 = (hs + 3u) / 4u;
    let scale = 1.0 / sqrt(f32(hs));
    let j0 = wid.x * TKV;
    let t0 = j0 + lid * ROWS; // this invocation's first key row
    let live = t0 < p.t;
    var k: array<array<vec4<f32>, V4>, ROWS>;
    var v: array<array<vec4<f32>, V4>, ROWS>;
    var dk: array<array<vec4<f32>, V4>, ROWS>;
    var dv: array<array<vec4<f32>, V4>, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        let row = b * p.t + min(t0 + r, p.t - 1u);
        for (var d4 = 0u; d4 < V4; d4++) {
            if (d4 < n4) {
                k[r][d4] = load_inp4(row * 3u * p.c + p.c + h * hs, d4, hs);
                v[r][d4] = load_inp4(row * 3u * p.c + 2u * p.c + h * hs, d4, hs);
            }
        }
    }
    // Queries from this tile's first key row to the end: earlier ones do not see these keys.
    for (var i0 = j0; i0 < p.t; i0 += TQ) {
        for (var e = lid; e < TQ * V4; e += WG) {
            let i = i0 + e / V4;
            let d4 = e % V4;
            if (i < p.t) {
                q_tile[e] = load_inp4((b * p.t + i) * 3u * p.c + h * hs, d4, hs) * scale;
                g_tile[e] = load_dout4((b * p.t + i) * p.c + h * hs, d4, hs);
            }
        }
        if (lid < TQ && i0 + lid < p.t) {
            lse_tile[lid] = lse[bh * p.t + i0 + lid];
            delta_tile[lid] = delta[bh * p.t + i0 + lid];
        }
        workgroupBarrier();
        if (live && i0 + TQ > t0) {
            let count = min(TQ, p.t - i0);
            // Queries before this invocation's first key row (i < t0) see none of its keys.
            let first = select(0u, t0 - i0, t0 > i0);
            for (var i = first; i < count; i++) {
                // Zeroed explicitly, as in attention_forward_flash.wgsl (SwiftShader).
                var s = array<f32, ROWS>();
                var dp = array<f32, ROWS>();
                for (var d4 = 0u; d4 < V4; d4++) {
                    let qi = q_tile[i * V4 + d4];
                    let gi = g_tile[i * V4 + d4];
                    for (var r = 0u; r < ROWS; r++) {
                        s[r] += dot(qi, k[r][d4]);
                        dp[r] += dot(gi, v[r][d4]);
                    }
                }
                var pr: array<f32, ROWS>;
                var ds: array<f32, ROWS>;
                for (var r = 0u; r < ROWS; r++) {
                    // A query before the key's own position does not see it.
                    pr[r] = select(exp(s[r] - lse_tile[i]), 0.0, t0 + r > i0 + i);
                    ds[r] = pr[r] * (dp[r] - delta_tile[i]);
                }
                for (var d4 = 0u; d4 < V4; d4++) {
                    let qi = q_tile[i * V4 + d4];
                    let gi = g_tile[i * V4 + d4];
                    for (var r = 0u; r < ROWS; r++) {
                        dv[r][d4] += pr[r] * gi;
                        dk[r][d4] += ds[r] * qi;
                    }
                }
            }
        }
        workgroupBarrier();
    }
    if (!live) { return; }
    for (var r = 0u; r < ROWS; r++) {
        let t = t0 + r;
        if (t < p.t) {
            let base = (b * p.t + t) * 3u * p.c + h * hs;
            for (var d4 = 0u; d4 < V4; d4++) {
                for (var i = 0u; i < 4u; i++) {
                    let d = d4 * 4u + i;
                    if (d < hs) {
                        dinp[base + p.c + d] = dk[r][d4][i];
                        dinp[base + 2u * p.c + d] = dv[r][d4][i];
                    }
                }
            }
        }
    }
}
