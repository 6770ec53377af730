// matvec: one row times a matrix, out[n] = sum_k a[k] B(k, n) (+ bias[n]) (+ residual[n]): the
// decoding path's linear layers and LM head, where the 64x64-tiled matmul would compute 64 rows
// to keep one.
// Legend: N outputs, K the shared dimension.
//   B is (K, N) (a Conv1D weight), or (N, K) read transposed when trans_b = 1 (the tied LM head
//   over wte's rows), from word b_offset of its buffer; out is written from word out_offset.
// Twin: cpu::matmul_forward with one row (and cpu::lm_head_forward for trans_b).
// One invocation per output; each sums its K products in order.

struct Params { n: u32, k: u32, trans_b: u32, has_bias: u32, b_offset: u32, out_offset: u32, has_residual: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (N) from out_offset
@group(0) @binding(2) var<storage, read> a: array<f32>;         // (K)
@group(0) @binding(3) var<storage, read> b: array<f32>;         // (K, N) or (N, K)
@group(0) @binding(4) var<storage, read> bias: array<f32>;      // (N), read only if has_bias
@group(0) @binding(5) var<storage, read> residual: array<f32>;  // (N), read only if has_residual

@compute @workgroup_size(64)
fn matvec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let col = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (col >= p.n) { return; }
    var acc = 0.0;
    if (p.trans_b == 1u) {
        let row = p.b_offset + col * p.k;
        for (var kk = 0u; kk < p.k; kk++) { acc += a[kk] * b[row + kk]; }
    } else {
        for (var kk = 0u; kk < p.k; kk++) { acc += a[kk] * b[p.b_offset + kk * p.n + col]; }
    }
    if (p.has_bias == 1u) { acc += bias[col]; }
    if (p.has_residual == 1u) { acc += residual[col]; }
    out[p.out_offset + col] = acc;
}
