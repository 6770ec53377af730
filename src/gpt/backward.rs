//! GPT-2's backward pass on the GPU, recorded once: the LM head and its loss chunk by chunk,
//! then each block in reverse, then the embeddings. Each step's comment names the forward it
//! undoes.
//!
//! Legend: N = B*T rows, C channels, V vocabulary. The residual stream's gradient lives in
//! `dresidual`; layernorm backward kernels add into it, so the program clears it first.

use super::attention::{attention_backward, AttentionBufs, AttentionGrads};
use super::forward::{lm_head_chunk, Rec};
use super::{GpuGpt, GpuWeights};
use crate::gpu::params::*;
use crate::gpu::{Bind, Gpu, GpuTensor, Grid, Kernel, Program, SplitScratch};
use crate::model::{block_params, ln_f, WPE, WTE};

impl GpuGpt {
    /// `grads` are those of what trains: the weights', or with LoRA the adapters' (the weights
    /// are then frozen and no gradient of theirs is computed, only the input gradients that flow
    /// through them).
    pub(super) fn record_backward(&self, gpu: &Gpu, grads: &GpuWeights) -> Program {
        let (cfg, s, w) = (&self.cfg, &self.acts.s, &*self.weights);
        let d = self.acts.scratch.as_ref().expect("training buffers");
        let (b, t, c, nh, n) = (self.b, self.t, cfg.n_embd, cfg.n_head, self.rows());
        let base = if self.lora.is_some() { None } else { Some(grads) };
        let g = |i: usize| base.map(|g| g.tensors[i].whole().bind());
        // A projection's backward, then its adapter's: dx, dout, x, the weight's table index.
        let linear = |r: &mut Rec, (dx, dout, x): (&GpuTensor, &GpuTensor, &GpuTensor), wi: usize, ic, oc| {
            let dparams = g(wi).zip(g(wi + 1));
            linear_backward(r, dx, dparams, dout, x, w.buf(wi), n, ic, oc);
            if let Some((l, i)) = self.lora.as_ref().and_then(|l| Some((l, l.target(wi)?))) {
                l.backward(r, grads, i, (dx, dout), x, n);
            }
        };
        let mut r = self.rec(gpu);
        r.split = Some(SplitScratch::of(&d.split));
        r.prog.clear_first(&d.dresidual);
        // LM head and loss, one vocabulary chunk at a time, last first: the forward pass left the
        // last chunk's logits in place, the others are made again. For each chunk:
        // dlogits = (softmax - onehot) * dloss; dlnf += dlogits @ wte[chunk];
        // dwte[chunk] = dlogits^T @ lnf (written; the embedding's share is added later).
        for (i, chunk) in self.chunks.iter().enumerate().rev() {
            if i + 1 != self.chunks.len() {
                lm_head_chunk(&mut r, w, &s.logits, &s.lnf, chunk, n);
            }
            let params = ClassifierBackwardParams { n: u(n), vc: u(chunk.width), v0: u(chunk.v0) };
            let bufs = [s.logits.bind(), s.stats.bind(), s.targets.bind(), s.loss.bind()];
            r.push(Kernel::ClassifierBackward, params, &bufs, Grid::Threads(n * chunk.width));
            let wte = &w.tensors[WTE].parts[chunk.part].0;
            let first = i + 1 == self.chunks.len();
            let p = MatmulParams {
                m: u(n),
                n: u(c),
                k: u(chunk.width),
                accumulate: !first as u32,
                b_offset: u(chunk.local0 * c),
                ..Default::default()
            };
            r.matmul(p, d.dln.bind(), s.logits.bind(), wte.bind(), None, None);
            let Some(base) = base else { continue };
            let dwte = &base.tensors[WTE].parts[chunk.part].0;
            let p = MatmulParams {
                m: u(chunk.width),
                n: u(c),
                k: u(n),
                trans_a: 1,
                out_offset: u(chunk.local0 * c),
                ..Default::default()
            };
            r.matmul(p, dwte.bind(), s.logits.bind(), s.lnf.bind(), None, None);
        }
        let f = ln_f(cfg);
        let last = &self.acts.blocks[cfg.n_layer - 1].residual3;
        self.layernorm_backward(&mut r, base, f, last, &s.lnf_mean, &s.lnf_rstd);
        for l in (0..cfg.n_layer).rev() {
            let (a, p) = (&self.acts.blocks[l], block_params(l));
            let res_in = if l == 0 { &s.encoded } else { &self.acts.blocks[l - 1].residual3 };
            // MLP projection: out = fch_gelu @ W + b.
            linear(&mut r, (&d.dfch_gelu, &d.dresidual, &a.fch_gelu), p.mlp_proj_w, 4 * c, c);
            let count = n * 4 * c;
            r.push(
                Kernel::GeluBackward,
                CountParams { n: u(count) },
                &[d.dfch.bind(), a.fch.bind(), d.dfch_gelu.bind()],
                Grid::Threads(count),
            );
            // MLP expansion: fch = ln2 @ W + b.
            linear(&mut r, (&d.dln, &d.dfch, &a.ln2), p.c_fc_w, c, 4 * c);
            self.layernorm_backward(&mut r, base, p.ln_2_w, &a.residual2, &a.ln2_mean, &a.ln2_rstd);
            // Attention projection: out = atty @ W + b.
            linear(&mut r, (&d.datty, &d.dresidual, &a.atty), p.attn_proj_w, c, c);
            let x = AttentionBufs { qkv: a.qkv.bind(), out: a.atty.bind(), kept: a.att.bind() };
            let g = AttentionGrads { dout: d.datty.bind(), dqkv: d.dqkv.bind(), scratch: d.dpreatt.bind() };
            attention_backward(&mut r, &x, &g, [b, t, c, nh]);
            // Fused q,k,v projection: qkv = ln1 @ W + b.
            linear(&mut r, (&d.dln, &d.dqkv, &a.ln1), p.c_attn_w, c, 3 * c);
            self.layernorm_backward(&mut r, base, p.ln_1_w, res_in, &a.ln1_mean, &a.ln1_rstd);
        }
        // The embeddings: nothing below them, so nothing to do when they are frozen.
        let Some(base) = base else { return r.prog };
        let params = EncoderBackwardWpeParams { b: u(b), t: u(t), c: u(c) };
        r.push(
            Kernel::EncoderBackwardWpe,
            params,
            &[base.tensors[WPE].whole().bind(), d.dresidual.bind()],
            Grid::Threads(t * c),
        );
        for (dwte, row0, rows) in &base.tensors[WTE].parts {
            let params = EncoderBackwardWteParams { n: u(n), c: u(c), row0: u(*row0), rows: u(*rows) };
            r.push(
                Kernel::EncoderBackwardWte,
                params,
                &[dwte.bind(), d.dresidual.bind(), d.buckets.bind()],
                Grid::Threads(n * c),
            );
        }
        r.prog
    }

    /// Backward of a LayerNorm whose upstream gradient is in `dln`: adds into the residual
    /// gradient and, unless the weights are frozen (`grads` None), writes the gradients of its
    /// weight (table entry `w`) and bias (`w + 1`).
    fn layernorm_backward(
        &self,
        r: &mut Rec,
        grads: Option<&GpuWeights>,
        w: usize,
        inp: &GpuTensor,
        mean: &GpuTensor,
        rstd: &GpuTensor,
    ) {
        let d = self.acts.scratch.as_ref().expect("training buffers");
        let (n, c) = (self.rows(), self.cfg.n_embd);
        let params = RowsParams { n: u(n), c: u(c) };
        let bufs = [d.dresidual.bind(), d.dln.bind(), inp.bind(), self.weights.buf(w), mean.bind(), rstd.bind()];
        let (_, kernel, grid) = r.k.options.norm.launch(n);
        r.push(kernel, params, &bufs, grid);
        let Some(grads) = grads else { return };
        let (dw, db) = (grads.tensors[w].whole().bind(), grads.tensors[w + 1].whole().bind());
        let bufs = [dw, db, d.dln.bind(), inp.bind(), mean.bind(), rstd.bind()];
        r.push(Kernel::LayernormBackwardDparams, params, &bufs, Grid::Groups(c.div_ceil(COLUMNS_PER_GROUP)));
    }
}

/// Backward of out (N, OC) = inp (N, IC) @ weight (IC, OC) + bias, given dout:
/// dinp = dout @ weight^T, and unless frozen (`dparams` None) dweight = inp^T @ dout and
/// dbias = column sums of dout (all written).
#[allow(clippy::too_many_arguments)]
fn linear_backward(
    r: &mut Rec,
    dinp: &GpuTensor,
    dparams: Option<(Bind<'_>, Bind<'_>)>,
    dout: &GpuTensor,
    inp: &GpuTensor,
    weight: Bind<'_>,
    n: usize,
    ic: usize,
    oc: usize,
) {
    let p = MatmulParams { m: u(n), n: u(ic), k: u(oc), trans_b: 1, ..Default::default() };
    r.matmul(p, dinp.bind(), dout.bind(), weight, None, None);
    let Some((dweight, dbias)) = dparams else { return };
    let p = MatmulParams { m: u(ic), n: u(oc), k: u(n), trans_a: 1, ..Default::default() };
    r.matmul(p, dweight, inp.bind(), dout.bind(), None, None);
    r.push(
        Kernel::MatmulBackwardBias,
        BiasBackwardParams { n: u(n), oc: u(oc) },
        &[dbias, dout.bind()],
        Grid::Groups(oc.div_ceil(COLUMNS_PER_GROUP)),
    );
}

/// Channels per workgroup of the column sums (matmul_backward_bias, layernorm_backward_dparams:
/// their `COLS`).
const COLUMNS_PER_GROUP: usize = 16;
