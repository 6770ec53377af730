// matmul_vec4: out = op(A) @ op(B) (+ bias), matmul_tiled's 16x16:4x4 shape written without
// arrays: each invocation's 4 x 4 sums are four named vec4s and its operands two vec4s, which
// every compiler keeps in registers (some, such as SwiftShader's, put small arrays in memory).
// The same product, parameters and bindings as matmul.wgsl; see matmul_tiled.wgsl for the
// tiling. Twins: cpu::matmul_forward and cpu::matmul_backward, as for matmul.wgsl.

const WX: u32 = 16u;
const WY: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;
const BK: u32 = 16u;

const BM: u32 = WY * TM;
const BN: u32 = WX * TN;
const THREADS: u32 = WX * WY;

struct Params {
    m: u32, n: u32, k: u32, trans_a: u32, trans_b: u32, has_bias: u32,
    accumulate: u32, a_offset: u32, b_offset: u32, out_offset: u32, scaled: u32, scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (M, N)
@group(0) @binding(2) var<storage, read> a: array<f32>;         // (M, K) or (K, M)
@group(0) @binding(3) var<storage, read> b: array<f32>;         // (K, N) or (N, K)
@group(0) @binding(4) var<storage, read> bias: array<f32>;      // (N), read only if has_bias

var<workgroup> a_tile: array<vec4<f32>, BK * BM / 4u>; // [BK][BM / 4]: 4 rows at one k
var<workgroup> b_tile: array<vec4<f32>, BK * BN / 4u>; // [BK][BN / 4]: 4 columns at one k

fn load_a(row: u32, kk: u32) -> f32 {
    if (row >= p.m || kk >= p.k) { return 0.0; }
    if (p.trans_a == 1u) { return a[p.a_offset + kk * p.m + row]; }
    return a[p.a_offset + row * p.k + kk];
}

fn load_b(kk: u32, col: u32) -> f32 {
    if (kk >= p.k || col >= p.n) { return 0.0; }
    if (p.trans_b == 1u) { return b[p.b_offset + col * p.k + kk]; }
    return b[p.b_offset + kk * p.n + col];
}

// Adds this invocation's sums for 4 rows x 4 columns from (row, col) into out, as the epilogue
// says (scale, bias, accumulate), skipping what falls outside (M, N).
fn store4(row: u32, col: u32, v: vec4<f32>) {
    if (row >= p.m) { return; }
    for (var jj = 0u; jj < 4u; jj++) {
        let c = col + jj;
        if (c < p.n) {
            var x = v[jj];
            if (p.scaled == 1u) { x *= p.scale; }
            if (p.has_bias == 1u) { x += bias[c]; }
            let o = p.out_offset + row * p.n + c;
            if (p.accumulate == 1u) { x += out[o]; }
            out[o] = x;
        }
    }
}

@compute @workgroup_size(WX, WY)
fn matmul_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let tid = lid.y * WX + lid.x;
    var acc0 = vec4<f32>();
    var acc1 = vec4<f32>();
    var acc2 = vec4<f32>();
    var acc3 = vec4<f32>();
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        // The tiles, THREADS vec4s at a time (a fixed count of rounds, so that compilers unroll
        // it: every variant's tile is a multiple of 4 * THREADS values). Each invocation writes
        // whole vec4s (4 rows, or 4 columns, at one k), which compilers store at once; a write
        // to a dynamically chosen component costs a read and a select on some of them.
        // Consecutive invocations take consecutive words of the stored matrix in each of their
        // four loads (along K when it is row-major in K, along M or N otherwise).
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
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let a4 = a_tile[kk * (BM / 4u) + lid.y];
            let b4 = b_tile[kk * (BN / 4u) + lid.x];
            acc0 = fma(vec4<f32>(a4.x), b4, acc0);
            acc1 = fma(vec4<f32>(a4.y), b4, acc1);
            acc2 = fma(vec4<f32>(a4.z), b4, acc2);
            acc3 = fma(vec4<f32>(a4.w), b4, acc3);
        }
        workgroupBarrier();
    }
    let row = row0 + lid.y * 4u;
    let col = col0 + lid.x * 4u;
    store4(row, col, acc0);
    store4(row + 1u, col, acc1);
    store4(row + 2u, col, acc2);
    store4(row + 3u, col, acc3);
}
