//! GPT-2's backward pass on the GPU, recorded once: the LM head, then each block in reverse,
//! then the embeddings. Each step's comment names the forward it undoes.
//!
//! Legend: N = B*T rows, C channels, V vocabulary. The residual stream's gradient lives in
//! `dresidual`; layernorm backward kernels add into it, so it is cleared before each backward.

use super::GpuGpt;
use crate::gpu::{grid_1d, Gpu, GpuTensor, Kernel, Program};
use crate::model::{block_params, ln_f, WPE, WTE};

impl GpuGpt {
    pub(super) fn record_backward(&self, gpu: &Gpu) -> Program {
        let (cfg, s, k) = (&self.cfg, &self.s, &self.kernels);
        let (b, t, c, nh, n, v) = (self.b, self.t, cfg.n_embd, cfg.n_head, self.rows(), cfg.vocab_size);
        let p = |i: usize| &self.params[i].buffer;
        let g = |i: usize| &self.grads[i];
        let u = |x: usize| x as u32;
        let mut prog = Program::default();
        // LM head: dlnf = dlogits @ wte; dwte = dlogits^T @ lnf (written; the embedding adds later).
        prog.push(self.matmul(gpu, &s.dln, &s.logits, p(WTE), None, n, c, v, false, false));
        prog.push(self.matmul(gpu, g(WTE), &s.logits, &s.lnf.buffer, None, v, c, n, true, false));
        let f = ln_f(cfg);
        let last = &self.blocks[cfg.n_layer - 1].residual3;
        self.layernorm_backward(gpu, &mut prog, f, f + 1, last, &s.lnf_mean, &s.lnf_rstd);
        for l in (0..cfg.n_layer).rev() {
            let (a, w) = (&self.blocks[l], block_params(l));
            let res_in = if l == 0 { &s.encoded } else { &self.blocks[l - 1].residual3 };
            // MLP projection: out = fch_gelu @ W + b.
            prog.push(self.matmul(gpu, &s.dfch_gelu, &s.dresidual, p(w.mlp_proj_w), None, n, 4 * c, c, false, true));
            prog.push(self.matmul(
                gpu,
                g(w.mlp_proj_w),
                &a.fch_gelu,
                &s.dresidual.buffer,
                None,
                4 * c,
                c,
                n,
                true,
                false,
            ));
            prog.push(self.bias_backward(gpu, g(w.mlp_proj_b), &s.dresidual, n, c));
            prog.push(k.dispatch(
                gpu,
                Kernel::GeluBackward,
                &[u(n * 4 * c)],
                &[&s.dfch.buffer, &a.fch.buffer, &s.dfch_gelu.buffer],
                grid_1d((n * 4 * c).div_ceil(256)),
            ));
            // MLP expansion: fch = ln2 @ W + b.
            prog.push(self.matmul(gpu, &s.dln, &s.dfch, p(w.c_fc_w), None, n, c, 4 * c, false, true));
            prog.push(self.matmul(gpu, g(w.c_fc_w), &a.ln2, &s.dfch.buffer, None, c, 4 * c, n, true, false));
            prog.push(self.bias_backward(gpu, g(w.c_fc_b), &s.dfch, n, 4 * c));
            self.layernorm_backward(gpu, &mut prog, w.ln_2_w, w.ln_2_b, &a.residual2, &a.ln2_mean, &a.ln2_rstd);
            // Attention projection: out = atty @ W + b.
            prog.push(self.matmul(gpu, &s.datty, &s.dresidual, p(w.attn_proj_w), None, n, c, c, false, true));
            prog.push(self.matmul(gpu, g(w.attn_proj_w), &a.atty, &s.dresidual.buffer, None, c, c, n, true, false));
            prog.push(self.bias_backward(gpu, g(w.attn_proj_b), &s.dresidual, n, c));
            let dims = [u(b), u(t), u(c), u(nh)];
            let rows = grid_1d((b * nh * t).div_ceil(64));
            prog.push(k.dispatch(
                gpu,
                Kernel::AttentionBackwardDpreatt,
                &dims,
                &[&s.dpreatt.buffer, &s.datty.buffer, &a.qkv.buffer, &a.att.buffer],
                rows,
            ));
            prog.push(k.dispatch(
                gpu,
                Kernel::AttentionBackwardDqkv,
                &dims,
                &[&s.dqkv.buffer, &s.datty.buffer, &a.qkv.buffer, &a.att.buffer, &s.dpreatt.buffer],
                rows,
            ));
            // Fused q,k,v projection: qkv = ln1 @ W + b.
            prog.push(self.matmul(gpu, &s.dln, &s.dqkv, p(w.c_attn_w), None, n, c, 3 * c, false, true));
            prog.push(self.matmul(gpu, g(w.c_attn_w), &a.ln1, &s.dqkv.buffer, None, c, 3 * c, n, true, false));
            prog.push(self.bias_backward(gpu, g(w.c_attn_b), &s.dqkv, n, 3 * c));
            self.layernorm_backward(gpu, &mut prog, w.ln_1_w, w.ln_1_b, res_in, &a.ln1_mean, &a.ln1_rstd);
        }
        prog.push(k.dispatch(
            gpu,
            Kernel::EncoderBackwardWpe,
            &[u(b), u(t), u(c)],
            &[&g(WPE).buffer, &s.dresidual.buffer],
            grid_1d((t * c).div_ceil(256)),
        ));
        prog.push(k.dispatch(
            gpu,
            Kernel::EncoderBackwardWte,
            &[u(n), u(c)],
            &[&g(WTE).buffer, &s.dresidual.buffer, &s.buckets.buffer],
            grid_1d((n * c).div_ceil(256)),
        ));
        prog
    }

    /// Backward of a LayerNorm whose upstream gradient is in `dln`: adds into the residual
    /// gradient and writes the gradients of its weight and bias.
    #[allow(clippy::too_many_arguments)]
    fn layernorm_backward(
        &self,
        gpu: &Gpu,
        prog: &mut Program,
        w: usize,
        bias: usize,
        inp: &GpuTensor,
        mean: &GpuTensor,
        rstd: &GpuTensor,
    ) {
        let (s, k, n, c) = (&self.s, &self.kernels, self.rows() as u32, self.cfg.n_embd as u32);
        prog.push(k.dispatch(
            gpu,
            Kernel::LayernormBackwardDinp,
            &[n, c],
            &[&s.dresidual.buffer, &s.dln.buffer, &inp.buffer, &self.params[w].buffer, &mean.buffer, &rstd.buffer],
            grid_1d(n as usize),
        ));
        prog.push(k.dispatch(
            gpu,
            Kernel::LayernormBackwardDparams,
            &[n, c],
            &[&self.grads[w].buffer, &self.grads[bias].buffer, &s.dln.buffer, &inp.buffer, &mean.buffer, &rstd.buffer],
            [c.div_ceil(64), 1, 1],
        ));
    }
}
