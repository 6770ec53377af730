//! Generation: one token at a time through a KV cache on the GPU, then temperature, top-k and
//! top-p sampling of the next token on the CPU from the read-back logits.
//!
//! The decode program is the forward pass for a single position: each layer appends its key and
//! value to the cache and attends over it. When the cache is full (the block size), the newest
//! half of the context is fed again from position 0.

use crate::config::ModelConfig;
use crate::cpu::Rng;
use crate::gpu::{Gpu, GpuTensor, Kernel, Kernels, Program};
use crate::model::{block_params, ln_f, WPE, WTE};

#[derive(Clone, Debug)]
pub struct SampleOptions {
    /// Divides the logits; 0 picks the most likely token.
    pub temperature: f32,
    /// Keep only the k most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p; 1 keeps all.
    pub top_p: f32,
    pub seed: u64,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions { temperature: 0.8, top_k: 0, top_p: 1.0, seed: 1337 }
    }
}

pub struct Generator {
    pub cfg: ModelConfig,
    kernels: std::rc::Rc<Kernels>,
    cursor: GpuTensor, // (2): token, position
    logits: GpuTensor, // (V)
    /// Attention probabilities of the newest position, per layer: (NH, maxT).
    pub att: Vec<GpuTensor>,
    program: Program,
    _buffers: Vec<GpuTensor>, // activations and caches the program binds
    /// Tokens whose keys and values are in the cache, in order.
    context: Vec<u32>,
}

impl Generator {
    /// Builds the decode program over parameter buffers in `param_table` order (a training
    /// model's, or ones uploaded from a checkpoint).
    pub fn new(gpu: &Gpu, cfg: ModelConfig, params: &[wgpu::Buffer]) -> Generator {
        let kernels = gpu.kernels();
        let (c, v, nh, t) = (cfg.n_embd, cfg.vocab_size, cfg.n_head, cfg.block_size);
        let z = |label: &str, len: usize| GpuTensor::zeros(gpu, label, len);
        let (cursor, logits) = (z("cursor", 2), z("decode logits", v));
        let (x, ln, qkv, atty, proj, res2, fch, fch_gelu) = (
            z("x", c),
            z("ln", c),
            z("qkv", 3 * c),
            z("atty", c),
            z("proj", c),
            z("res2", c),
            z("fch", 4 * c),
            z("fch_gelu", 4 * c),
        );
        let (mean, rstd) = (z("mean", 1), z("rstd", 1));
        let att: Vec<_> = (0..cfg.n_layer).map(|_| z("decode att", nh * t)).collect();
        let caches: Vec<_> = (0..cfg.n_layer).map(|_| (z("cache k", t * c), z("cache v", t * c))).collect();
        let u = |x: usize| x as u32;
        let no_bias = z("no bias", 1);
        let mm = |out: &GpuTensor,
                  a: &GpuTensor,
                  w: &wgpu::Buffer,
                  bias: Option<&wgpu::Buffer>,
                  n: usize,
                  k: usize,
                  tb: bool| {
            let params = [1, u(n), u(k), 0, tb as u32, bias.is_some() as u32];
            kernels.dispatch(
                gpu,
                Kernel::Matmul,
                &params,
                &[&out.buffer, &a.buffer, w, bias.unwrap_or(&no_bias.buffer)],
                [u(n.div_ceil(64)), 1, 1],
            )
        };
        let mut prog = Program::default();
        prog.push(kernels.dispatch(
            gpu,
            Kernel::DecodeEmbed,
            &[u(c)],
            &[&x.buffer, &cursor.buffer, &params[WTE], &params[WPE]],
            [u(c.div_ceil(64)), 1, 1],
        ));
        for l in 0..cfg.n_layer {
            let w = block_params(l);
            let (ck, cv) = &caches[l];
            prog.push(kernels.dispatch(
                gpu,
                Kernel::LayernormForward,
                &[1, u(c)],
                &[&ln.buffer, &mean.buffer, &rstd.buffer, &x.buffer, &params[w.ln_1_w], &params[w.ln_1_b]],
                [1, 1, 1],
            ));
            prog.push(mm(&qkv, &ln, &params[w.c_attn_w], Some(&params[w.c_attn_b]), 3 * c, c, false));
            prog.push(kernels.dispatch(
                gpu,
                Kernel::KvAppend,
                &[u(c)],
                &[&ck.buffer, &cv.buffer, &qkv.buffer, &cursor.buffer],
                [u(c.div_ceil(64)), 1, 1],
            ));
            prog.push(kernels.dispatch(
                gpu,
                Kernel::AttentionDecode,
                &[u(c), u(nh), u(t)],
                &[&atty.buffer, &att[l].buffer, &qkv.buffer, &ck.buffer, &cv.buffer, &cursor.buffer],
                [u(nh.div_ceil(64)), 1, 1],
            ));
            prog.push(mm(&proj, &atty, &params[w.attn_proj_w], Some(&params[w.attn_proj_b]), c, c, false));
            prog.push(kernels.dispatch(
                gpu,
                Kernel::ResidualForward,
                &[u(c)],
                &[&res2.buffer, &x.buffer, &proj.buffer],
                [1, 1, 1],
            ));
            prog.push(kernels.dispatch(
                gpu,
                Kernel::LayernormForward,
                &[1, u(c)],
                &[&ln.buffer, &mean.buffer, &rstd.buffer, &res2.buffer, &params[w.ln_2_w], &params[w.ln_2_b]],
                [1, 1, 1],
            ));
            prog.push(mm(&fch, &ln, &params[w.c_fc_w], Some(&params[w.c_fc_b]), 4 * c, c, false));
            prog.push(kernels.dispatch(
                gpu,
                Kernel::GeluForward,
                &[u(4 * c)],
                &[&fch_gelu.buffer, &fch.buffer],
                [u((4 * c).div_ceil(256)), 1, 1],
            ));
            prog.push(mm(&proj, &fch_gelu, &params[w.mlp_proj_w], Some(&params[w.mlp_proj_b]), c, 4 * c, false));
            // The block's output becomes the next block's input.
            prog.push(kernels.dispatch(
                gpu,
                Kernel::ResidualForward,
                &[u(c)],
                &[&x.buffer, &res2.buffer, &proj.buffer],
                [1, 1, 1],
            ));
        }
        let f = ln_f(&cfg);
        prog.push(kernels.dispatch(
            gpu,
            Kernel::LayernormForward,
            &[1, u(c)],
            &[&ln.buffer, &mean.buffer, &rstd.buffer, &x.buffer, &params[f], &params[f + 1]],
            [1, 1, 1],
        ));
        prog.push(mm(&logits, &ln, &params[WTE], None, v, c, true));
        let mut buffers = vec![x, ln, qkv, atty, proj, res2, fch, fch_gelu, mean, rstd, no_bias];
        for (k, v) in caches {
            buffers.push(k);
            buffers.push(v);
        }
        Generator { cfg, kernels, cursor, logits, att, program: prog, _buffers: buffers, context: Vec::new() }
    }

    /// Forgets the cached context.
    pub fn reset(&mut self) {
        self.context.clear();
    }

    /// Feeds one token at the next position and returns the logits for the token after it.
    /// Sync point: reads back V logits.
    pub async fn feed(&mut self, gpu: &Gpu, token: u32) -> Vec<f32> {
        self.step(gpu, token);
        self.logits.read_f32(gpu).await
    }

    /// Runs one position without reading anything back, sliding the window first when the
    /// cache is full: the newest half of the context is fed again from position 0.
    fn step(&mut self, gpu: &Gpu, token: u32) {
        if self.context.len() == self.cfg.block_size {
            let keep = self.context.split_off(self.cfg.block_size - self.cfg.block_size / 2);
            self.context.clear();
            for &t in &keep {
                self.submit(gpu, t);
            }
        }
        self.submit(gpu, token);
    }

    fn submit(&mut self, gpu: &Gpu, token: u32) {
        let pos = self.context.len() as u32;
        self.cursor.write_u32(gpu, &[token, pos]);
        self.program.submit(gpu, &self.kernels);
        self.context.push(token);
    }

    /// Logits after feeding all of `tokens` (from an empty cache); only the last is read back.
    pub async fn prefill(&mut self, gpu: &Gpu, tokens: &[u32]) -> Vec<f32> {
        self.reset();
        let Some((&last, rest)) = tokens.split_last() else { return Vec::new() };
        for &t in rest {
            self.step(gpu, t);
        }
        self.feed(gpu, last).await
    }

    /// Generates up to `max_tokens` after `prompt`, calling `on_token` with each new token as
    /// soon as it exists; `on_token` returns false to stop early.
    pub async fn generate(
        &mut self,
        gpu: &Gpu,
        prompt: &[u32],
        max_tokens: usize,
        opts: &SampleOptions,
        mut on_token: impl FnMut(u32) -> bool,
    ) -> Vec<u32> {
        let mut rng = Rng::new(opts.seed);
        // An empty prompt starts from token 0 (a newline in char vocabularies of most texts).
        let start = if prompt.is_empty() { vec![0] } else { prompt.to_vec() };
        let mut logits = self.prefill(gpu, &start).await;
        let mut out = Vec::new();
        for i in 0..max_tokens {
            let next = sample_token(&logits, opts, &mut rng);
            out.push(next);
            if !on_token(next) || i + 1 == max_tokens {
                break;
            }
            logits = self.feed(gpu, next).await;
        }
        out
    }
}

/// Picks a token from `logits`: greedy at temperature 0, else softmax(logits / temperature)
/// restricted to the top k and the top-p nucleus.
pub fn sample_token(logits: &[f32], opts: &SampleOptions, rng: &mut Rng) -> u32 {
    if opts.temperature <= 0.0 {
        return argmax(logits);
    }
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    if opts.top_k > 0 {
        order.truncate(opts.top_k);
    }
    let max = logits[order[0]];
    let mut probs: Vec<f64> = order.iter().map(|&i| (((logits[i] - max) / opts.temperature) as f64).exp()).collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    if opts.top_p < 1.0 {
        let mut acc = 0.0;
        let keep = probs.iter().position(|p| {
            acc += p;
            acc >= opts.top_p as f64
        });
        let keep = keep.map_or(probs.len(), |k| k + 1);
        order.truncate(keep);
        probs.truncate(keep);
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
    }
    let r = rng.next_f32() as f64;
    let mut acc = 0.0;
    for (p, &i) in probs.iter().zip(&order) {
        acc += p;
        if r < acc {
            return i as u32;
        }
    }
    *order.last().unwrap() as u32
}

pub fn argmax(x: &[f32]) -> u32 {
    x.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i as u32)
}

/// Softmax of logits, for displays of next-token probabilities.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let e: Vec<f32> = logits.iter().map(|&x| (x - max).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}
