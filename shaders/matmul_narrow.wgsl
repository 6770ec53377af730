// matmul_narrow: out = op(A) @ op(B) (+ bias) (+ residual), one invocation an output, for
// products with a side narrower than any tile: the last few tokens of a vocabulary chunk (the
// LM head over 65 characters is 64 tokens of whole tiles and a sliver of 1), a LoRA adapter of
// rank 8, a prompt of a few rows. There a tiled kernel computes whole 64-sided tiles of which
// all but a sliver fall outside (on lavapipe 1024 x 65 x 64 took 4.7-5.5 ms against 1.2-2.8 for
// 1024 x 64 x 64). No workgroup memory and no barriers; each invocation walks its row of op(A)
// and its column of op(B) along K, in order.
// Parameters, bindings and layouts as matmul.wgsl (offsets, accumulate, scale, bias, residual).
// Legend: M rows of out, N columns of out, K the shared dimension.
//   A is (M, K), or (K, M) read transposed when trans_a = 1
//   B is (K, N), or (N, K) read transposed when trans_b = 1
// Twins: cpu::matmul_forward, cpu::matmul_backward, as matmul.wgsl.

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

@compute @workgroup_size(64)
fn matmul_narrow(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (i >= p.m * p.n) { return; }
    let row = i / p.n;
    let col = i % p.n;
    // Where op(A)[row, 0] and op(B)[0, col] are, and how far one step of K moves each: the
    // layouts chosen once, so the loop has no branch.
    var ia = p.a_offset + select(row * p.k, row, p.trans_a == 1u);
    var ib = p.b_offset + select(col, col * p.k, p.trans_b == 1u);
    let step_a = select(1u, p.m, p.trans_a == 1u);
    let step_b = select(p.n, 1u, p.trans_b == 1u);
    var acc = 0.0;
    for (var kk = 0u; kk < p.k; kk++) {
        acc += a[ia] * b[ib];
        ia += step_a;
        ib += step_b;
    }
    if (p.scaled == 1u) { acc *= p.scale; }
    if (p.has_bias == 1u) { acc += bias[col]; }
    if (p.has_residual == 1u) { acc += residual[i]; }
    let o = p.out_offset + i;
    if (p.accumulate == 1u) { acc += out[o]; }
    out[o] = acc;
}
