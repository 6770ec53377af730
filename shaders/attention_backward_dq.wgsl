// attention_backward_dq: the gradient of q, with the scores made again from the log-sum-exp the
// flash forward pass kept; also writes each row's delta for attention_backward_dkv.
// Legend: B batch, T time, C channels, NH heads, hs = C/NH (at most HS_MAX).
// Twin: the q part of cpu::attention_backward.
//   forward:  s[t2] = q[t].k[t2] / sqrt(hs); P = softmax(s) = exp(s - lse[t]); out[t] = P @ v
//   backward: dP[t2] = dout[t].v[t2];  delta[t] = sum over t2 of P[t2] dP[t2] = dout[t].out[t]
//             dS[t2] = P[t2] (dP[t2] - delta[t]);  dq[t] = sum over t2 <= t of dS[t2] k[t2] / sqrt(hs)
// ROWS consecutive query rows an invocation, WG * ROWS a workgroup, keys and values staged TK
// rows at a time as in attention_forward_flash, each key read serving all ROWS rows. It alone
// writes dq[t] and delta[t].

const ROWS: u32 = 4u;
// Invocations of a workgroup: 64, or fewer (16, 32) where the block has fewer rows than 64 *
// ROWS, so that few of them idle (`gpt::attention::flash_invocations`).
const WG: u32 = 64u;
const TQ: u32 = WG * ROWS;
const TK: u32 = 16u;
const HS_MAX: u32 = 64u;
const V4: u32 = HS_MAX / 4u;
struct Params { b: u32, t: u32, c: u32, nh: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;  // (B, T, 3C): the q part
@group(0) @binding(2) var<storage, read_write> delta: array<f32>; // (B, NH, T)
@group(0) @binding(3) var<storage, read> dout: array<f32>;        // (B, T, C)
@group(0) @binding(4) var<storage, read> inp: array<f32>;         // (B, T, 3C)
@group(0) @binding(5) var<storage, read> out: array<f32>;         // (B, T, C)
@group(0) @binding(6) var<storage, read> lse: array<f32>;         // (B, NH, T)

var<workgroup> k_tile: array<vec4<f32>, TK * V4>; // [TK][HS_MAX / 4]
var<workgroup> v_tile: array<vec4<f32>, TK * V4>;

// Four channels d4*4.. from `base` of `buf`'s row, zero past hs.
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

fn load_out4(base: u32, d4: u32, hs: u32) -> vec4<f32> {
    var r = vec4<f32>();
    for (var i = 0u; i < 4u; i++) {
        if (d4 * 4u + i < hs) { r[i] = out[base + d4 * 4u + i]; }
    }
    return r;
}

@compute @workgroup_size(WG)
fn attention_backward_dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let bh = wid.y;
    let b = bh / p.nh;
    let h = bh % p.nh;
    let hs = p.c / p.nh;
    let n4 = (hs + 3u) / 4u;
    let scale = 1.0 / sqrt(f32(hs));
    let q0 = wid.x * TQ;
    let t0 = q0 + lid * ROWS; // this invocation's first row
    let live = t0 < p.t;
    let t_end = min(t0 + ROWS - 1u, p.t - 1u);
    var q: array<array<vec4<f32>, V4>, ROWS>;
    var g: array<array<vec4<f32>, V4>, ROWS>; // dout rows
    var dq: array<array<vec4<f32>, V4>, ROWS>;
    var dl: array<f32, ROWS>;
    var row_lse: array<f32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        let row = b * p.t + min(t0 + r, p.t - 1u);
        for (var d4 = 0u; d4 < V4; d4++) {
            if (d4 < n4) {
                q[r][d4] = load_inp4(row * 3u * p.c + h * hs, d4, hs) * scale;
                g[r][d4] = load_dout4(row * p.c + h * hs, d4, hs);
                dl[r] += dot(g[r][d4], load_out4(row * p.c + h * hs, d4, hs));
            }
        }
        row_lse[r] = lse[bh * p.t + min(t0 + r, p.t - 1u)];
    }
    let last = min(q0 + TQ, p.t);
    for (var k0 = 0u; k0 < last; k0 += TK) {
        for (var e = lid; e < TK * V4; e += WG) {
            let j = k0 + e / V4;
            let d4 = e % V4;
            if (j < p.t) {
                let base = (b * p.t + j) * 3u * p.c + h * hs;
                k_tile[e] = load_inp4(base + p.c, d4, hs);
                v_tile[e] = load_inp4(base + 2u * p.c, d4, hs);
            }
        }
        workgroupBarrier();
        if (live && k0 <= t_end) {
            let count = min(TK, t_end + 1u - k0);
            for (var j = 0u; j < count; j++) {
                // Zeroed explicitly, as in attention_forward_flash.wgsl (SwiftShader).
                var s = array<f32, ROWS>();
                var dp = array<f32, ROWS>();
                for (var d4 = 0u; d4 < V4; d4++) {
                    let k = k_tile[j * V4 + d4];
                    let v = v_tile[j * V4 + d4];
                    for (var r = 0u; r < ROWS; r++) {
                        s[r] += dot(q[r][d4], k);
                        dp[r] += dot(g[r][d4], v);
                    }
                }
                var ds: array<f32, ROWS>;
                for (var r = 0u; r < ROWS; r++) {
                    // A key after the row's own position has no gradient.
                    let pr = select(exp(s[r] - row_lse[r]), 0.0, k0 + j > t0 + r);
                    ds[r] = pr * (dp[r] - dl[r]) * scale;
                }
                for (var d4 = 0u; d4 < V4; d4++) {
                    let k = k_tile[j * V4 + d4];
                    for (var r = 0u; r < ROWS; r++) { dq[r][d4] += ds[r] * k; }
                }
            }
        }
        workgroupBarrier();
    }
    if (!live) { return; }
    for (var r = 0u; r < ROWS; r++) {
        let t = t0 + r;
        if (t < p.t) {
            delta[bh * p.t + t] = dl[r];
            let base = (b * p.t + t) * 3u * p.c + h * hs;
            for (var d4 = 0u; d4 < V4; d4++) {
                for (var i = 0u; i < 4u; i++) {
                    let d = d4 * 4u + i;
                    if (d < hs) { dinp[base + d] = dq[r][d4][i]; }
                }
            }
        }
    }
}
