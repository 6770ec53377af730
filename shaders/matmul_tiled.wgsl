// matmul_tiled: out = op(A) @ op(B) (+ bias) (+ residual), register-tiled; the same product,
// parameters and bindings as matmul.wgsl (see there for the layouts, offsets, accumulate, scale
// and residual), faster.
// Legend: M rows of out, N columns of out, K the shared dimension.
// Twins: cpu::matmul_forward and cpu::matmul_backward, as for matmul.wgsl.
// A workgroup of WX x WY invocations computes a BM x BN tile of out (BM = WY*TM, BN = WX*TN),
// walking K in steps of BK: both operands' slices are staged through workgroup memory (read
// along the stored matrix's contiguous dimension, whatever the transposition), then each
// invocation keeps TM x TN sums in registers and, per step of k, reads TM/4 + TN/4 vec4s for
// TM*TN multiply-adds. Vec4 reads of workgroup memory are one wide load on a GPU, and on CPU
// rasterisers one lane-by-lane gather for four values instead of four. An invocation owns
// blocks of 4 rows strided by WY blocks, and blocks of 4 columns strided by WX blocks, so
// neighbouring invocations read neighbouring workgroup words.
// The constants below are one variant; `gpu::MatmulVariant` writes the others (TM and TN
// multiples of 4; every variant is validated by naga and tested against the CPU twin).
// From `struct Params` to the entry point this file is the same text as matmul_unrolled.wgsl
// (WGSL has no includes; a test checks they agree).

const WX: u32 = 16u;
const WY: u32 = 8u;
const TM: u32 = 8u;
const TN: u32 = 4u;
const BK: u32 = 16u;
// 1: M, N and K are whole multiples of the tile (BM, BN, BK) and the product is not scaled,
// so no load or store needs a bounds test: rewritten per product by
// `MatmulVariant::consts_for`, and the tests of it fold away when the pipeline is compiled
// (on lavapipe a 1024 x 192 x 64 product took 2.0-2.8x less time without the bounds tests).
const WHOLE: u32 = 0u;
// 1: the epilogue adds `residual` (the Params' has_residual, compiled in by `consts_for`): as a
// runtime test, lavapipe paid for the residual's loads in every product, with or without one
// (1024 x 192 x 64 took 4.2-4.7 ms against 2.3-3.6). 2: the epilogue tests has_residual at run
// time, so one pipeline serves products with and without (`Epilogue::Tested`).
const RESIDUAL: u32 = 0u;
// 1: the product is added into out (the Params' accumulate, compiled in by `consts_for` as
// RESIDUAL is): whole tiles then stay whole (the LM head's input gradient, summed over GPT-2's
// 25 vocabulary chunks, would otherwise take the bounds-tested path for all but one). 2: tested
// at run time, as RESIDUAL's 2 is.
const ACCUMULATE: u32 = 0u;
// 1: the product is split over K (the Params' k_slice > 0, compiled in by `consts_for`): this
// workgroup takes slice wid.z of K and writes partial product wid.z. 0 leaves the loop over all
// of K as it was, its bounds constant for the compiler.
const SPLIT: u32 = 0u;

const BM: u32 = WY * TM;
const BN: u32 = WX * TN;
const THREADS: u32 = WX * WY;
const TM4: u32 = TM / 4u;
const TN4: u32 = TN / 4u;

struct Params {
    m: u32, n: u32, k: u32, trans_a: u32, trans_b: u32, has_bias: u32,
    accumulate: u32, a_offset: u32, b_offset: u32, out_offset: u32, scaled: u32, scale: f32,
    has_residual: u32, k_slice: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (M, N)
@group(0) @binding(2) var<storage, read> a: array<f32>;         // (M, K) or (K, M)
@group(0) @binding(3) var<storage, read> b: array<f32>;         // (K, N) or (N, K)
@group(0) @binding(4) var<storage, read> bias: array<f32>;      // (N), read only if has_bias
@group(0) @binding(5) var<storage, read> residual: array<f32>;  // (M, N), read only if has_residual

var<workgroup> a_tile: array<vec4<f32>, BK * BM / 4u>; // [BK][BM / 4]: 4 rows at one k
var<workgroup> b_tile: array<vec4<f32>, BK * BN / 4u>; // [BK][BN / 4]: 4 columns at one k

// Element (row, kk) of op(A), zero outside it. No branches: a CPU rasteriser (lavapipe) runs
// both sides of a branch for its SIMD lanes and pays for each side's loads, so one load at a
// chosen index (word 0 outside) measured 5-25% faster a product than a branch per layout.
fn load_a(row: u32, kk: u32) -> f32 {
    if (WHOLE == 1u) { return a[p.a_offset + select(row * p.k + kk, kk * p.m + row, p.trans_a == 1u)]; }
    let inside = row < p.m && kk < p.k;
    let i = select(row * p.k + kk, kk * p.m + row, p.trans_a == 1u);
    return select(0.0, a[p.a_offset + select(0u, i, inside)], inside);
}

// Element (kk, col) of op(B), zero outside it, as load_a.
fn load_b(kk: u32, col: u32) -> f32 {
    if (WHOLE == 1u) { return b[p.b_offset + select(kk * p.n + col, col * p.k + kk, p.trans_b == 1u)]; }
    let inside = kk < p.k && col < p.n;
    let i = select(kk * p.n + col, col * p.k + kk, p.trans_b == 1u);
    return select(0.0, b[p.b_offset + select(0u, i, inside)], inside);
}

// Whether the epilogue adds the residual, and adds into out: compiled in (RESIDUAL and
// ACCUMULATE 0 or 1), or as the Params say (2).
fn adds_residual() -> bool { return RESIDUAL == 1u || (RESIDUAL == 2u && p.has_residual == 1u); }
fn adds_into_out() -> bool { return ACCUMULATE == 1u || (ACCUMULATE == 2u && p.accumulate == 1u); }

// Adds this invocation's sums for 4 rows x 4 columns from (row, col) into out from word `base`,
// as the epilogue says (scale, bias, residual, accumulate), skipping what falls outside (M, N).
fn store4(base: u32, row: u32, col: u32, v: vec4<f32>) {
    if (WHOLE == 1u) {
        var x = v;
        if (p.has_bias == 1u) { x += vec4<f32>(bias[col], bias[col + 1u], bias[col + 2u], bias[col + 3u]); }
        let r = row * p.n + col;
        if (adds_residual()) { x += vec4<f32>(residual[r], residual[r + 1u], residual[r + 2u], residual[r + 3u]); }
        let o = base + r;
        if (adds_into_out()) { x += vec4<f32>(out[o], out[o + 1u], out[o + 2u], out[o + 3u]); }
        out[o] = x.x;
        out[o + 1u] = x.y;
        out[o + 2u] = x.z;
        out[o + 3u] = x.w;
        return;
    }
    if (row >= p.m) { return; }
    for (var jj = 0u; jj < 4u; jj++) {
        let c = col + jj;
        if (c < p.n) {
            var x = v[jj];
            if (p.scaled == 1u) { x *= p.scale; }
            if (p.has_bias == 1u) { x += bias[c]; }
            if (adds_residual()) { x += residual[row * p.n + c]; }
            let o = base + row * p.n + c;
            if (adds_into_out()) { x += out[o]; }
            out[o] = x;
        }
    }
}

// Stages the step of K from k0 into a_tile and b_tile, THREADS vec4s at a time (a fixed count of
// rounds: every variant's tile is a multiple of 4 * THREADS values). Each invocation writes whole
// vec4s (4 rows, or 4 columns, at one k); consecutive invocations take consecutive words of the
// stored matrix in each of their four loads (along K when it is row-major in K, along M or N
// otherwise).
fn stage_tiles(k0: u32, row0: u32, col0: u32, tid: u32) {
    for (var l = 0u; l < BK * BM / 4u / THREADS; l++) {
        let e = tid + l * THREADS;
        var r4 = e / BK;
        var kk = e % BK;
        if (p.trans_a == 1u) {
            r4 = e % (BM / 4u);
            kk = e / (BM / 4u);
        }
        let row = row0 + r4 * 4u;
        let k = k0 + kk;
        a_tile[kk * (BM / 4u) + r4] = vec4<f32>(load_a(row, k), load_a(row + 1u, k), load_a(row + 2u, k), load_a(row + 3u, k));
    }
    for (var l = 0u; l < BK * BN / 4u / THREADS; l++) {
        let e = tid + l * THREADS;
        var c4 = e % (BN / 4u);
        var kk = e / (BN / 4u);
        if (p.trans_b == 1u) {
            c4 = e / BK;
            kk = e % BK;
        }
        let col = col0 + c4 * 4u;
        let k = k0 + kk;
        b_tile[kk * (BN / 4u) + c4] = vec4<f32>(load_b(k, col), load_b(k, col + 1u), load_b(k, col + 2u), load_b(k, col + 3u));
    }
}

@compute @workgroup_size(WX, WY)
fn matmul_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let tid = lid.y * WX + lid.x;
    // acc[(i4 * 4 + ii) * TN4 + j4]: row block i4, row ii within it, column block j4.
    var acc: array<vec4<f32>, TM * TN4>;
    var a4: array<vec4<f32>, TM4>;
    var b4: array<vec4<f32>, TN4>;
    // This workgroup's slice of K, and where its sums go: all of K into out, or for a product
    // split over K (SPLIT, see matmul.wgsl) slice wid.z into partial product wid.z.
    let k_begin = select(0u, wid.z * p.k_slice, SPLIT == 1u);
    let k_end = select(p.k, min(p.k, k_begin + p.k_slice), SPLIT == 1u);
    let base = select(p.out_offset, p.out_offset + wid.z * p.m * p.n, SPLIT == 1u);
    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        stage_tiles(k0, row0, col0, tid);
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            for (var i4 = 0u; i4 < TM4; i4++) { a4[i4] = a_tile[kk * (BM / 4u) + lid.y + i4 * WY]; }
            for (var j4 = 0u; j4 < TN4; j4++) { b4[j4] = b_tile[kk * (BN / 4u) + lid.x + j4 * WX]; }
            for (var i4 = 0u; i4 < TM4; i4++) {
                for (var ii = 0u; ii < 4u; ii++) {
                    for (var j4 = 0u; j4 < TN4; j4++) {
                        let s = (i4 * 4u + ii) * TN4 + j4;
                        acc[s] = fma(vec4<f32>(a4[i4][ii]), b4[j4], acc[s]);
                    }
                }
            }
        }
        workgroupBarrier();
    }
    for (var i4 = 0u; i4 < TM4; i4++) {
        for (var ii = 0u; ii < 4u; ii++) {
            let row = row0 + (lid.y + i4 * WY) * 4u + ii;
            for (var j4 = 0u; j4 < TN4; j4++) {
                store4(base, row, col0 + (lid.x + j4 * WX) * 4u, acc[(i4 * 4u + ii) * TN4 + j4]);
            }
        }
    }
}
