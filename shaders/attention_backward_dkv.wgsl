// attention_backward_dkv: the gradients of k and v, with the scores made again from the
// log-sum-exp the flash forward pass kept and the deltas attention_backward_dq wrote.
// Legend: B batch, T time, C channels, NH heads, hs = C/NH (at most HS_MAX).
// Twin: the k and v parts of cpu::attention_backward.
//   forward:  s[t1, t] = q[t1].k[t] / sqrt(hs); P[t1, t] = exp(s[t1, t] - lse[t1]); out = P @ v
//   backward: dv[t] = sum over t1 >= t of P[t1, t] dout[t1]
//             dS[t1, t] = P[t1, t] (dout[t1].v[t] - delta[t1])
//             dk[t] = sum over t1 >= t of dS[t1, t] q[t1] / sqrt(hs)
// One invocation per key row, TKV rows a workgroup; queries, their output gradients, lse and
// delta are staged TQ rows at a time. It alone writes dk[t] and dv[t].

const TKV: u32 = 64u;
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

@compute @workgroup_size(64)
fn attention_backward_dkv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let bh = wid.y;
    let b = bh / p.nh;
    let h = bh % p.nh;
    let hs = p.c / p.nh;
    let n4 = (hs + 3u) / 4u;
    let scale = 1.0 / sqrt(f32(hs));
    let j0 = wid.x * TKV;
    let t = j0 + lid;
    let live = t < p.t;
    let row = b * p.t + min(t, p.t - 1u);
    var k: array<vec4<f32>, V4>;
    var v: array<vec4<f32>, V4>;
    var dk: array<vec4<f32>, V4>;
    var dv: array<vec4<f32>, V4>;
    for (var d4 = 0u; d4 < V4; d4++) {
        if (d4 < n4) {
            k[d4] = load_inp4(row * 3u * p.c + p.c + h * hs, d4, hs);
            v[d4] = load_inp4(row * 3u * p.c + 2u * p.c + h * hs, d4, hs);
        }
    }
    // Queries from this tile's first key row to the end: earlier ones do not see these keys.
    for (var i0 = j0; i0 < p.t; i0 += TQ) {
        for (var e = lid; e < TQ * V4; e += 64u) {
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
        if (live) {
            let count = min(TQ, p.t - i0);
            // Queries before this key row (i < t) do not see it.
            let first = select(0u, t - i0, t > i0);
            for (var i = first; i < count; i++) {
                var s = 0.0;
                var dp = 0.0;
                for (var d4 = 0u; d4 < V4; d4++) {
                    s += dot(q_tile[i * V4 + d4], k[d4]);
                    dp += dot(g_tile[i * V4 + d4], v[d4]);
                }
                let pr = exp(s - lse_tile[i]);
                let ds = pr * (dp - delta_tile[i]);
                for (var d4 = 0u; d4 < V4; d4++) {
                    dv[d4] += pr * g_tile[i * V4 + d4];
                    dk[d4] += ds * q_tile[i * V4 + d4];
                }
            }
        }
        workgroupBarrier();
    }
    if (!live) { return; }
    let base = (b * p.t + t) * 3u * p.c + h * hs;
    for (var d4 = 0u; d4 < V4; d4++) {
        for (var i = 0u; i < 4u; i++) {
            let d = d4 * 4u + i;
            if (d < hs) {
                dinp[base + p.c + d] = dk[d4][i];
                dinp[base + 2u * p.c + d] = dv[d4][i];
            }
        }
    }
}
