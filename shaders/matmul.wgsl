// matmul: out = op(A) @ op(B) (+ bias) (+ residual), the one tiled matrix product every linear
// layer uses.
// Legend: M rows of out, N columns of out, K the shared dimension.
//   A is (M, K), or (K, M) read transposed when trans_a = 1
//   B is (K, N), or (N, K) read transposed when trans_b = 1
// Twins: cpu::matmul_forward (A = inp, B = weight in (in, out) layout, bias);
//        cpu::matmul_backward: dinp = dout @ weight^T (trans_b), dweight = inp^T @ dout (trans_a);
//        the tied LM head: logits = x @ wte^T (trans_b), dwte = dlogits^T @ x (trans_a).
// Offsets (in words) let one operand be a slice of a larger buffer: a chunk of the vocabulary of
// the tied LM head, inside one of the buffers that hold wte. With accumulate = 1 the product is
// added into out (the LM head's input gradient, summed over vocabulary chunks in order). With
// scaled = 1 the product is multiplied by `scale` first (a LoRA adapter's alpha / rank). With
// has_residual = 1 an (M, N) tensor is added (a block's residual connection, x + proj(..),
// written by the projection itself rather than by a kernel of its own: twin
// cpu::residual_forward after the product).
// k_slice: the register-tiled kernels' slice of K for a product split over K (their workgroup
// z takes terms [z * k_slice, (z + 1) * k_slice) of K and writes its partial product (M, N) at
// out_offset + z * M * N, which matmul_split_sum then adds up); 0, the whole of K, here.
// Each workgroup computes a 64x64 tile of out; each of its 16x16 invocations owns 4x4 outputs,
// strided by 16 so that neighbouring invocations write neighbouring addresses.

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

const TILE: u32 = 64u;
const BK: u32 = 16u;
var<workgroup> a_tile: array<f32, 1024>; // [BK][TILE]
var<workgroup> b_tile: array<f32, 1024>; // [BK][TILE]

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

// Writes one row of this invocation's outputs (columns col0, col0+16, col0+32, col0+48).
fn store_row(row: u32, col0: u32, acc: vec4<f32>) {
    if (row >= p.m) { return; }
    for (var j = 0u; j < 4u; j++) {
        let col = col0 + 16u * j;
        if (col < p.n) {
            var v = acc[j];
            if (p.scaled == 1u) { v *= p.scale; }
            if (p.has_bias == 1u) { v += bias[col]; }
            if (p.has_residual == 1u) { v += residual[row * p.n + col]; }
            let o = p.out_offset + row * p.n + col;
            if (p.accumulate == 1u) { v += out[o]; }
            out[o] = v;
        }
    }
}

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let tid = lid.y * 16u + lid.x;
    // Four vec4 accumulators rather than an indexed array: software rasterisers (lavapipe,
    // SwiftShader) keep these in registers, while a dynamically indexed array goes to memory.
    var acc0 = vec4<f32>();
    var acc1 = vec4<f32>();
    var acc2 = vec4<f32>();
    var acc3 = vec4<f32>();
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        // 256 invocations load 1024 values of each tile; the index order follows the
        // contiguous dimension of the stored matrix so the reads coalesce.
        for (var l = 0u; l < 4u; l++) {
            let e = tid + l * 256u;
            if (p.trans_a == 1u) {
                a_tile[e] = load_a(row0 + e % TILE, k0 + e / TILE);
            } else {
                a_tile[(e % BK) * TILE + e / BK] = load_a(row0 + e / BK, k0 + e % BK);
            }
            if (p.trans_b == 1u) {
                b_tile[(e % BK) * TILE + e / BK] = load_b(k0 + e % BK, col0 + e / BK);
            } else {
                b_tile[e] = load_b(k0 + e / TILE, col0 + e % TILE);
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let at = kk * TILE + lid.y;
            let bt = kk * TILE + lid.x;
            let bv = vec4<f32>(b_tile[bt], b_tile[bt + 16u], b_tile[bt + 32u], b_tile[bt + 48u]);
            acc0 += a_tile[at] * bv;
            acc1 += a_tile[at + 16u] * bv;
            acc2 += a_tile[at + 32u] * bv;
            acc3 += a_tile[at + 48u] * bv;
        }
        workgroupBarrier();
    }
    let col = col0 + lid.x;
    store_row(row0 + lid.y, col, acc0);
    store_row(row0 + lid.y + 16u, col, acc1);
    store_row(row0 + lid.y + 32u, col, acc2);
    store_row(row0 + lid.y + 48u, col, acc3);
}
