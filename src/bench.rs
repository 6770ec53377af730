//! Micro-benchmarks of single operations, recorded exactly as training records them (the same
//! `Rec` calls, so the variant a model would use is the one timed): a matrix product and causal
//! attention forward and backward. The core builds the programs; the front end owns the clock.

use crate::gpt::attention::{attention_backward, attention_forward, AttentionBufs, AttentionGrads};
use crate::gpt::Rec;
use crate::gpu::params::{u, MatmulParams};
use crate::gpu::{split_scratch_words, Gpu, GpuTensor, Kernel, Kernels, Program, SplitScratch};

/// One timed operation: its program, and what one run of it must compute and move at least.
pub struct OpBench {
    /// Its output, whose read-back marks the end of the runs before it.
    pub out: GpuTensor,
    pub name: &'static str,
    pub program: Program,
    /// Floating-point operations of one run (a multiply-add counts two).
    pub flops: f64,
    /// Bytes one run must read and write at least (each input once, each output once).
    pub bytes: f64,
    /// The kernels one run launches, in order.
    pub kernels: Vec<&'static str>,
    /// How a product runs, in words ("u8x8:8x8:16, K in 8 slices of 128", "narrow"); None
    /// elsewhere.
    pub variant: Option<String>,
    /// Keeps the buffers alive as long as the program.
    _buffers: Vec<GpuTensor>,
}

fn filled(gpu: &Gpu, label: &str, len: usize, seed: u64) -> GpuTensor {
    let mut rng = crate::cpu::Rng::new(seed);
    let data: Vec<f32> = (0..len).map(|_| rng.normal() * 0.5).collect();
    GpuTensor::from_f32(gpu, label, &data)
}

/// `buffers[0]` is the program's output.
fn finish(name: &'static str, r: Rec, flops: f64, bytes: f64, buffers: Vec<GpuTensor>) -> OpBench {
    let kernels = r.prog.dispatches.iter().map(|d| d.kernel.name()).collect();
    OpBench { name, out: buffers[0].clone(), program: r.prog, flops, bytes, kernels, variant: None, _buffers: buffers }
}

/// How a benchmarked product reads its operands and writes its result.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProductLayout {
    /// A is (K, M), read transposed (a weight gradient).
    pub trans_a: bool,
    /// B is (N, K), read transposed (an input gradient, the tied LM head).
    pub trans_b: bool,
    /// The product is added into out (the LM head's input gradient over vocabulary chunks).
    pub accumulate: bool,
}

/// out (M, N) = op(A) @ op(B) (added into out where `layout.accumulate`), with A (M, K) or
/// (K, M), B (K, N) or (N, K) as `layout` says: the three products of a linear layer's forward
/// and backward.
pub fn matmul(gpu: &Gpu, shape: [usize; 3], layout: ProductLayout) -> OpBench {
    matmul_with(gpu, &gpu.kernels(), shape, layout)
}

/// `matmul` with the given pipelines (a variant under trial) instead of the device's.
pub fn matmul_with(gpu: &Gpu, kernels: &Kernels, [m, n, k]: [usize; 3], layout: ProductLayout) -> OpBench {
    let (a, b) = (filled(gpu, "bench a", m * k, 1), filled(gpu, "bench b", k * n, 2));
    let (out, no_bias) = (GpuTensor::zeros(gpu, "bench out", m * n), GpuTensor::zeros(gpu, "no bias", 1));
    // Room for partial products as a model whose rows are K and channels the narrower side has.
    let scratch = GpuTensor::zeros(gpu, "split scratch", split_scratch_words(k, m.min(n)));
    let mut r = Rec::new(gpu, kernels, no_bias.bind());
    r.split = Some(SplitScratch::of(&scratch));
    let p = MatmulParams {
        m: u(m),
        n: u(n),
        k: u(k),
        trans_a: layout.trans_a as u32,
        trans_b: layout.trans_b as u32,
        accumulate: layout.accumulate as u32,
        ..Default::default()
    };
    r.matmul(p, out.bind(), a.bind(), b.bind(), None, None);
    let (flops, bytes) = (2.0 * (m * n * k) as f64, 4.0 * (m * k + k * n + m * n) as f64);
    let variant = match kernels.matmul_plan(&p, Some(scratch.len)) {
        _ if r.prog.dispatches.iter().any(|d| d.kernel == Kernel::MatmulNarrow) => "narrow".to_string(),
        plan if plan.slices > 1 => format!("{}, K in {} slices of {}", plan.variant, plan.slices, plan.slice),
        plan => plan.variant.to_string(),
    };
    let mut bench = finish("matmul", r, flops, bytes, vec![out, a, b, no_bias.clone(), scratch.clone()]);
    bench.variant = Some(variant);
    bench
}

/// The three products of a linear layer of `ic` inputs and `oc` outputs over N rows, as training
/// records them (GPT-2's weight is (ic, oc)): out = inp @ w, dinp = dout @ w^T, dw = inp^T @ dout.
/// Timed together, the way a model runs them (one after the other, each with its own shape), so
/// that a kernel is judged on the mix a step has, long K (the weight gradient) included.
pub fn linear_layer_with(gpu: &Gpu, kernels: &Kernels, [n, ic, oc]: [usize; 3]) -> OpBench {
    let (inp, w, dout) =
        (filled(gpu, "bench inp", n * ic, 1), filled(gpu, "bench w", ic * oc, 2), filled(gpu, "bench dout", n * oc, 3));
    let z = |label, len| GpuTensor::zeros(gpu, label, len);
    let (out, dinp, dw, no_bias) =
        (z("bench out", n * oc), z("bench dinp", n * ic), z("bench dw", ic * oc), z("no bias", 1));
    let scratch = z("split scratch", split_scratch_words(n, ic));
    let mut r = Rec::new(gpu, kernels, no_bias.bind());
    r.split = Some(SplitScratch::of(&scratch));
    let product = |m, nn, k| MatmulParams { m: u(m), n: u(nn), k: u(k), ..Default::default() };
    r.matmul(product(n, oc, ic), out.bind(), inp.bind(), w.bind(), None, None);
    r.matmul(MatmulParams { trans_b: 1, ..product(n, ic, oc) }, dinp.bind(), dout.bind(), w.bind(), None, None);
    r.matmul(MatmulParams { trans_a: 1, ..product(ic, oc, n) }, dw.bind(), inp.bind(), dout.bind(), None, None);
    let flops = 3.0 * 2.0 * (n * ic * oc) as f64;
    // Each of the three reads two of inp, w and dout and writes one (N, C)-sized result.
    let bytes = 4.0 * 3.0 * (n * ic + ic * oc + n * oc) as f64;
    // dw last: its read-back marks the end of all three.
    finish("linear layer", r, flops, bytes, vec![dw, out, dinp, inp, w, dout, no_bias.clone(), scratch.clone()])
}

/// LayerNorm forward and its input gradient over N rows of C channels, as `kernels` records
/// them (the workgroup or the row-per-invocation variant).
pub fn layernorm_with(gpu: &Gpu, kernels: &Kernels, n: usize, c: usize) -> OpBench {
    let (inp, dout) = (filled(gpu, "bench inp", n * c, 1), filled(gpu, "bench dout", n * c, 2));
    let (w, bias) = (filled(gpu, "bench w", c, 3), filled(gpu, "bench b", c, 4));
    let z = |label, len| GpuTensor::zeros(gpu, label, len);
    let (out, mean, rstd, dinp, no_bias) =
        (z("bench out", n * c), z("mean", n), z("rstd", n), z("dinp", n * c), z("no bias", 1));
    let mut r = Rec::new(gpu, kernels, no_bias.bind());
    r.layernorm((&out, &mean, &rstd), &inp, w.bind(), bias.bind(), n, c);
    let (_, backward, grid) = kernels.options.norm.launch(n);
    let bufs = [dinp.bind(), dout.bind(), inp.bind(), w.bind(), mean.bind(), rstd.bind()];
    r.push(backward, crate::gpu::params::RowsParams { n: u(n), c: u(c) }, &bufs, grid);
    // About 10 FLOPs per value forward and backward; each (N, C) tensor read or written once.
    let (flops, bytes) = (20.0 * (n * c) as f64, 4.0 * 5.0 * (n * c) as f64);
    finish(
        "layernorm forward + backward",
        r,
        flops,
        bytes,
        vec![dinp, out, inp, dout, w, bias, mean, rstd, no_bias.clone()],
    )
}

/// Causal attention of B sequences of T rows, NH heads of `hs` channels: the forward pass and
/// the backward pass as two programs (the backward pass reads what the forward pass kept).
/// Each causal T x T product of hs-long dot products is B NH T(T+1)/2 hs multiply-adds: the
/// forward pass does 2 (scores, weighted values), the backward pass 5 (the scores again, dV,
/// dP, dQ, dK), whichever kernels do them.
pub fn attention(gpu: &Gpu, shape: [usize; 4]) -> [OpBench; 2] {
    attention_with(gpu, &gpu.kernels(), shape)
}

/// `attention` with the given pipelines (a variant under trial) instead of the device's.
pub fn attention_with(gpu: &Gpu, kernels: &Kernels, [b, nh, t, hs]: [usize; 4]) -> [OpBench; 2] {
    let c = nh * hs;
    let (kept, scratch) = crate::gpt::attention::kept_words(b, nh, t, hs);
    let qkv = filled(gpu, "bench qkv", b * t * 3 * c, 1);
    let dout = filled(gpu, "bench dout", b * t * c, 2);
    let z = |label, len| GpuTensor::zeros(gpu, label, len);
    let (out, att, dqkv, dpre, no_bias) = (
        z("bench out", b * t * c),
        z("bench att", kept),
        z("bench dqkv", b * t * 3 * c),
        z("bench scratch", scratch),
        z("no bias", 1),
    );
    let x = AttentionBufs { qkv: qkv.bind(), out: out.bind(), kept: att.bind() };
    let g = AttentionGrads { dout: dout.bind(), dqkv: dqkv.bind(), scratch: dpre.bind() };
    let shape = [b, t, c, nh];
    // One causal T x T product of hs-long dot products: B NH T(T+1)/2 hs multiply-adds.
    let product = 2.0 * (b * nh * t * (t + 1) / 2 * hs) as f64;
    let mut fwd = Rec::new(gpu, kernels, no_bias.bind());
    attention_forward(&mut fwd, &x, shape);
    let mut bwd = Rec::new(gpu, kernels, no_bias.bind());
    attention_backward(&mut bwd, &x, &g, shape);
    let io = (b * t * c) as f64 * 4.0;
    let name = if crate::gpt::attention::is_flash(hs) {
        ["attention forward (flash)", "attention backward (flash)"]
    } else {
        ["attention forward", "attention backward"]
    };
    let keep = vec![out.clone(), qkv.clone(), att.clone(), no_bias.clone()];
    [
        finish(name[0], fwd, 2.0 * product, io * 4.0, keep),
        finish(name[1], bwd, 5.0 * product, io * 7.0, vec![dqkv, qkv, dout, out, att, dpre, no_bias.clone()]),
    ]
}
