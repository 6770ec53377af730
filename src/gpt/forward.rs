//! The forward pass, recorded once: the one place that lays out a transformer block's kernels,
//! used by training, evaluation and decoding alike (they differ only in the attention step and
//! the row count), plus the embeddings and the chunked LM head.
//!
//! Legend: N rows (B*T when training, 1 when decoding), C channels, NH heads, V vocabulary.

use super::attention::{attention_forward, AttentionBufs};
use super::{BlockActs, GpuLora, GpuWeights, VocabChunk};
use crate::gpu::params::*;
use crate::gpu::{Bind, Gpu, GpuTensor, Grid, Kernel, Kernels, Program, SplitScratch, NARROW_SIDE};
use crate::model::{block_params, ln_f, WPE, WTE};

/// Builds one program: dispatches with their parameters, bindings and grids.
pub(crate) struct Rec<'a> {
    pub gpu: &'a Gpu,
    pub k: &'a Kernels,
    /// Bound where a product has no bias or residual (WebGPU bindings cannot be empty).
    pub unbound: Bind<'a>,
    /// Where products split over K keep their partial products (see `gpu::SplitK`); None
    /// (evaluation, decoding) splits none.
    pub split: Option<SplitScratch<'a>>,
    pub prog: Program,
}

impl<'a> Rec<'a> {
    pub fn new(gpu: &'a Gpu, k: &'a Kernels, unbound: Bind<'a>) -> Rec<'a> {
        Rec { gpu, k, unbound, split: None, prog: Program::default() }
    }

    pub fn push<P: bytemuck::Pod>(&mut self, kernel: Kernel, params: P, bufs: &[Bind<'_>], grid: Grid) {
        self.prog.push(self.k.dispatch(self.gpu, kernel, &params, bufs, grid));
    }

    /// `push` with some of the kernel's constants rewritten (see `Kernels::dispatch_specialised`).
    pub fn push_specialised<P: bytemuck::Pod>(
        &mut self,
        kernel: Kernel,
        consts: &[(&'static str, u32)],
        params: P,
        bufs: &[Bind<'_>],
        grid: Grid,
    ) {
        self.prog.push(self.k.dispatch_specialised(self.gpu, kernel, consts, &params, bufs, grid));
    }

    /// out (M, N) = op(a) @ op(b) (+ bias (N)) (+ residual (M, N)); see matmul.wgsl. The
    /// options' variant for its size (split over K where `split` has room and its tiles are
    /// few), or matmul_narrow where M, N or K is under `NARROW_SIDE`.
    pub fn matmul(
        &mut self,
        p: MatmulParams,
        out: Bind<'_>,
        a: Bind<'_>,
        b: Bind<'_>,
        bias: Option<Bind<'_>>,
        residual: Option<Bind<'_>>,
    ) {
        let p = MatmulParams { has_bias: bias.is_some() as u32, has_residual: residual.is_some() as u32, ..p };
        let bufs = [out, a, b, bias.unwrap_or(self.unbound), residual.unwrap_or(self.unbound)];
        if p.m.min(p.n).min(p.k) < NARROW_SIDE {
            return self.push(Kernel::MatmulNarrow, p, &bufs, Grid::Threads(p.m as usize * p.n as usize));
        }
        for d in self.k.matmul_dispatches(self.gpu, p, &bufs, self.split) {
            self.prog.push(d);
        }
    }

    /// A linear layer in GPT-2's Conv1D layout: out (N, OC) = inp (N, IC) @ W (IC, OC) + bias
    /// (+ residual (N, OC): the block's residual connection, added by the product's epilogue),
    /// with W table entry `weight` of `w` and its bias the entry after it. The one place every
    /// projection of a block is recorded (a single row, decoding, runs on matmul_narrow).
    pub fn linear(
        &mut self,
        out: &GpuTensor,
        inp: &GpuTensor,
        residual: Option<&GpuTensor>,
        w: &GpuWeights,
        weight: usize,
        [n, ic, oc]: [usize; 3],
    ) {
        let (wb, bias, residual) = (w.buf(weight), Some(w.buf(weight + 1)), residual.map(|r| r.bind()));
        let p = MatmulParams { m: u(n), n: u(oc), k: u(ic), ..Default::default() };
        self.matmul(p, out.bind(), inp.bind(), wb, bias, residual);
    }

    pub fn layernorm(
        &mut self,
        a: (&GpuTensor, &GpuTensor, &GpuTensor),
        inp: &GpuTensor,
        w: Bind<'_>,
        b: Bind<'_>,
        n: usize,
        c: usize,
    ) {
        let (out, mean, rstd) = a;
        let bufs = [out.bind(), mean.bind(), rstd.bind(), inp.bind(), w, b];
        let (kernel, _, grid) = self.k.options.norm.launch(n);
        self.push(kernel, RowsParams { n: u(n), c: u(c) }, &bufs, grid);
    }
}

/// How a block's attention finds its keys and values.
pub(crate) enum Attention<'a> {
    /// Causal attention within each of B sequences of T rows; the probabilities are kept in
    /// the block's `att` for the backward pass (see attention.rs).
    Full { b: usize, t: usize },
    /// One new position (`cursor` = token, position) appended to a KV cache of `max_t` rows
    /// and attending over it; `att` (NH, maxT) keeps its probabilities for the page's views.
    Decode { cache_k: &'a GpuTensor, cache_v: &'a GpuTensor, cursor: &'a GpuTensor, max_t: usize },
    /// One sequence of T rows (a prompt, padded) with causal attention as `Full`, whose keys and
    /// values are then stored in a KV cache of at least T rows, for decoding to go on from.
    Prefill { t: usize, cache_k: &'a GpuTensor, cache_v: &'a GpuTensor },
}

/// One transformer block: x -> x + attn(ln1(x)) -> (that) + mlp(ln2(that)), from `input` into
/// `a.residual3`. Each residual add is the epilogue of the projection before it, which writes
/// `residual2` and `residual3` directly.
#[allow(clippy::too_many_arguments)]
pub(crate) fn block_forward(
    r: &mut Rec,
    w: &GpuWeights,
    layer: usize,
    input: &GpuTensor,
    a: &BlockActs<GpuTensor>,
    n: usize,
    attention: &Attention,
    lora: Option<&GpuLora>,
) {
    let c = w.cfg.n_embd;
    let nh = w.cfg.n_head;
    let p = block_params(layer);
    // A projection (plus a residual), and its adapter's share when the model trains LoRA
    // adapters, added after it.
    let linear = |r: &mut Rec, out: &GpuTensor, inp: &GpuTensor, res: Option<&GpuTensor>, weight: usize, dims| {
        r.linear(out, inp, res, w, weight, dims);
        if let Some((l, i)) = lora.and_then(|l| Some((l, l.target(weight)?))) {
            l.forward(r, i, out, inp, n);
        }
    };
    r.layernorm((&a.ln1, &a.ln1_mean, &a.ln1_rstd), input, w.buf(p.ln_1_w), w.buf(p.ln_1_b), n, c);
    linear(r, &a.qkv, &a.ln1, None, p.c_attn_w, [n, c, 3 * c]);
    match attention {
        Attention::Full { b, t } => {
            let bufs = AttentionBufs { qkv: a.qkv.bind(), out: a.atty.bind(), kept: a.att.bind() };
            attention_forward(r, &bufs, [*b, *t, c, nh]);
        }
        Attention::Prefill { t, cache_k, cache_v } => {
            let bufs = AttentionBufs { qkv: a.qkv.bind(), out: a.atty.bind(), kept: a.att.bind() };
            attention_forward(r, &bufs, [1, *t, c, nh]);
            let bufs = [cache_k.bind(), cache_v.bind(), a.qkv.bind()];
            r.push(Kernel::KvStoreRows, KvStoreRowsParams { c: u(c), rows: u(*t) }, &bufs, Grid::Threads(t * c));
        }
        Attention::Decode { cache_k, cache_v, cursor, max_t } => {
            let bufs = [cache_k.bind(), cache_v.bind(), a.qkv.bind(), cursor.bind()];
            r.push(Kernel::KvAppend, KvAppendParams { c: u(c) }, &bufs, Grid::Threads(c));
            let params = AttentionDecodeParams { c: u(c), nh: u(nh), max_t: u(*max_t) };
            let bufs = [a.atty.bind(), a.att.bind(), a.qkv.bind(), cache_k.bind(), cache_v.bind(), cursor.bind()];
            // The head size and count compiled in: see attention_decode.wgsl for why.
            let consts = [("HS", u(c / nh)), ("NH", u(nh))];
            r.push_specialised(Kernel::AttentionDecode, &consts, params, &bufs, Grid::Threads(nh));
        }
    }
    linear(r, &a.residual2, &a.atty, Some(input), p.attn_proj_w, [n, c, c]);
    r.layernorm((&a.ln2, &a.ln2_mean, &a.ln2_rstd), &a.residual2, w.buf(p.ln_2_w), w.buf(p.ln_2_b), n, c);
    linear(r, &a.fch, &a.ln2, None, p.c_fc_w, [n, c, 4 * c]);
    let count = n * 4 * c;
    r.push(Kernel::GeluForward, CountParams { n: u(count) }, &[a.fch_gelu.bind(), a.fch.bind()], Grid::Threads(count));
    linear(r, &a.residual3, &a.fch_gelu, Some(&a.residual2), p.mlp_proj_w, [n, 4 * c, c]);
}

/// Token plus position embeddings of a (B, T) batch, one dispatch per buffer of wte.
pub(crate) fn embed(r: &mut Rec, w: &GpuWeights, out: &GpuTensor, tokens: &GpuTensor, b: usize, t: usize) {
    let c = w.cfg.n_embd;
    for (part, row0, rows) in &w.tensors[WTE].parts {
        let params = EncoderParams { b: u(b), t: u(t), c: u(c), row0: u(*row0), rows: u(*rows) };
        let bufs = [out.bind(), tokens.bind(), part.bind(), w.buf(WPE)];
        r.push(Kernel::EncoderForward, params, &bufs, Grid::Threads(b * t * c));
    }
}

/// The final LayerNorm of the residual stream.
pub(crate) fn final_norm(
    r: &mut Rec,
    w: &GpuWeights,
    out: (&GpuTensor, &GpuTensor, &GpuTensor),
    inp: &GpuTensor,
    n: usize,
) {
    let f = ln_f(&w.cfg);
    r.layernorm(out, inp, w.buf(f), w.buf(f + 1), n, w.cfg.n_embd);
}

/// logits[.., chunk] = lnf @ wte[chunk]^T: the tied LM head over one vocabulary chunk, into
/// `logits` (N, width).
pub(crate) fn lm_head_chunk(
    r: &mut Rec,
    w: &GpuWeights,
    logits: &GpuTensor,
    lnf: &GpuTensor,
    chunk: &VocabChunk,
    n: usize,
) {
    let c = w.cfg.n_embd;
    let part = &w.tensors[WTE].parts[chunk.part].0;
    let p = MatmulParams {
        m: u(n),
        n: u(chunk.width),
        k: u(c),
        trans_b: 1,
        b_offset: u(chunk.local0 * c),
        ..Default::default()
    };
    r.matmul(p, logits.bind(), lnf.bind(), part.bind(), None, None);
}

/// Softmax statistics of one chunk of logits merged into `stats` (see classifier_stats.wgsl).
pub(crate) fn classifier_stats(
    r: &mut Rec,
    stats: &GpuTensor,
    logits: &GpuTensor,
    targets: &GpuTensor,
    chunk: &VocabChunk,
    first: bool,
    n: usize,
) {
    let params = ClassifierStatsParams { n: u(n), vc: u(chunk.width), v0: u(chunk.v0), first: first as u32 };
    let (kernel, grid) = r.k.options.norm.classifier_stats(n);
    r.push(kernel, params, &[stats.bind(), logits.bind(), targets.bind()], grid);
}
