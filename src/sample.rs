//! Generation: one token at a time through a KV cache on the GPU, then temperature, top-k and
//! top-p sampling of the next token on the CPU from the read-back logits.
//!
//! The decode program is the forward pass for a single position: each layer appends its key and
//! value to the cache and attends over it. A prompt goes through the prefill program instead: the
//! forward pass over a whole block of positions at once (the prompt, padded), each layer storing
//! every position's keys and values in the cache, one dispatch per kernel rather than one per
//! kernel and token. When the cache is full (the block size), the newest half of the context is
//! fed again from position 0.

use crate::config::ModelConfig;
use crate::cpu::Rng;
use crate::gpt::{block_acts, block_forward, embed, final_norm, Attention, BlockActs, GpuWeights, Rec};
use crate::gpu::params::*;
use crate::gpu::{Gpu, GpuTensor, Grid, Kernel, Kernels, Program};
use crate::model::{WPE, WTE};
use std::rc::Rc;

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

/// Tokens a sample runs to unless told otherwise (`kiln sample`, the page, samples while training).
pub const DEFAULT_SAMPLE_TOKENS: usize = 200;

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions { temperature: 0.8, top_k: 0, top_p: 1.0, seed: 1337 }
    }
}

pub struct Generator {
    pub cfg: ModelConfig,
    kernels: Rc<Kernels>,
    weights: Rc<GpuWeights>,
    cursor: GpuTensor, // (2): token, position
    no_bias: GpuTensor,
    /// Each layer's key and value cache, each (maxT, C).
    caches: Vec<(GpuTensor, GpuTensor)>,
    /// The prompt program, built on the first prompt of more than one token.
    prefill: Option<Prefill>,
    logits: GpuTensor, // (V)
    /// Attention probabilities of the newest position, per layer: (NH, maxT).
    pub att: Vec<GpuTensor>,
    program: Program,
    _buffers: Vec<GpuTensor>, // activations the program binds
    /// Tokens whose keys and values are in the cache, in order.
    context: Vec<u32>,
}

/// The prefill program and what it binds.
struct Prefill {
    tokens: GpuTensor, // (T): the prompt, padded
    program: Program,
    _acts: BlockActs<GpuTensor>,
}

impl Generator {
    /// Builds the decode program over `weights` (a training model's, shared, or ones uploaded
    /// from a checkpoint): the forward pass's own block recorder, for one row.
    pub fn new(gpu: &Gpu, weights: Rc<GpuWeights>) -> Generator {
        let kernels = gpu.kernels();
        let cfg = weights.cfg;
        let (c, v, nh, t) = (cfg.n_embd, cfg.vocab_size, cfg.n_head, cfg.block_size);
        let z = |label: &str, len: usize| GpuTensor::zeros(gpu, label, len);
        let (cursor, logits, x, no_bias) = (z("cursor", 2), z("decode logits", v), z("x", c), z("no bias", 1));
        // One row's activations, shared by every layer; the residual stream `x` is each block's
        // input and output (a block reads it for the last time before it writes it).
        let shared = BlockActs {
            ln1: z("ln1", c),
            ln1_mean: z("mean", 1),
            ln1_rstd: z("rstd", 1),
            qkv: z("qkv", 3 * c),
            atty: z("atty", c),
            att: z("decode att", 1),
            residual2: z("res2", c),
            ln2: z("ln2", c),
            ln2_mean: z("mean", 1),
            ln2_rstd: z("rstd", 1),
            fch: z("fch", 4 * c),
            fch_gelu: z("fch_gelu", 4 * c),
            residual3: x.clone(),
        };
        let att: Vec<_> = (0..cfg.n_layer).map(|_| z("decode att", nh * t)).collect();
        let caches: Vec<_> = (0..cfg.n_layer).map(|_| (z("cache k", t * c), z("cache v", t * c))).collect();
        let mut r = Rec::new(gpu, &kernels, no_bias.bind());
        for (part, row0, rows) in &weights.tensors[WTE].parts {
            let params = DecodeEmbedParams { c: u(c), row0: u(*row0), rows: u(*rows) };
            r.push(
                Kernel::DecodeEmbed,
                params,
                &[x.bind(), cursor.bind(), part.bind(), weights.buf(WPE)],
                Grid::Threads(c),
            );
        }
        for l in 0..cfg.n_layer {
            let acts = BlockActs { att: att[l].clone(), ..shared.clone() };
            let (cache_k, cache_v) = (&caches[l].0, &caches[l].1);
            let attention = Attention::Decode { cache_k, cache_v, cursor: &cursor, max_t: t };
            block_forward(&mut r, &weights, l, &x, &acts, 1, &attention, None);
        }
        let lnf = (&shared.ln1, &shared.ln1_mean, &shared.ln1_rstd);
        final_norm(&mut r, &weights, lnf, &x, 1);
        // The tied LM head over each buffer of wte, into its slice of the logits.
        for (part, row0, rows) in &weights.tensors[WTE].parts {
            let p = MatmulParams { m: 1, n: u(*rows), k: u(c), trans_b: 1, out_offset: u(*row0), ..Default::default() };
            r.matmul(p, logits.bind(), shared.ln1.bind(), part.bind(), None, None);
        }
        let program = r.prog;
        let buffers = vec![x, shared.ln1, shared.qkv, shared.fch];
        Generator {
            cfg,
            kernels,
            weights,
            cursor,
            no_bias,
            caches,
            prefill: None,
            logits,
            att,
            program,
            _buffers: buffers,
            context: Vec::new(),
        }
    }

    /// The weights this generator reads.
    pub fn weights(&self) -> &Rc<GpuWeights> {
        &self.weights
    }

    /// Forgets the cached context.
    pub fn reset(&mut self) {
        self.context.clear();
    }

    /// Feeds one token at the next position and returns the logits for the token after it.
    /// Sync point: reads back V logits.
    pub async fn feed(&mut self, gpu: &Gpu, token: u32) -> Result<Vec<f32>, String> {
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

    /// Runs `tokens` (more than one, fewer than the block size) at positions 0.. through the
    /// prefill program, without reading anything back.
    fn feed_prompt(&mut self, gpu: &Gpu, tokens: &[u32]) {
        let t = self.cfg.block_size;
        assert!(self.context.is_empty() && tokens.len() < t, "a prompt starts an empty cache and fits it");
        if self.prefill.is_none() {
            self.prefill = Some(self.build_prefill(gpu));
        }
        let prefill = self.prefill.as_ref().expect("just built");
        // Positions past the prompt compute nothing the prompt sees (attention is causal); their
        // cache rows are overwritten as decoding reaches them.
        let mut padded = tokens.to_vec();
        padded.resize(t, 0);
        prefill.tokens.write_u32(gpu, &padded);
        prefill.program.submit(gpu);
        self.context.extend_from_slice(tokens);
    }

    /// The forward pass over one sequence of a whole block (1, T), storing each layer's keys and
    /// values in the cache: no final norm or LM head (the prompt's last token is decoded).
    fn build_prefill(&self, gpu: &Gpu) -> Prefill {
        let t = self.cfg.block_size;
        let mut z = |label: &str, len: usize| GpuTensor::zeros(gpu, &format!("prompt {label}"), len);
        let tokens = z("tokens", t);
        // One block's activations for (1, T), shared by every layer; the residual stream `x` is
        // each block's input and output (`residual3`), as in the decode program.
        let acts = block_acts(&mut z, &self.cfg, 1, t);
        let x = acts.residual3.clone();
        let mut r = Rec::new(gpu, &self.kernels, self.no_bias.bind());
        embed(&mut r, &self.weights, &x, &tokens, 1, t);
        for (l, (cache_k, cache_v)) in self.caches.iter().enumerate() {
            let attention = Attention::Prefill { t, cache_k, cache_v };
            block_forward(&mut r, &self.weights, l, &x, &acts, t, &attention, None);
        }
        Prefill { tokens, program: r.prog, _acts: acts }
    }

    fn submit(&mut self, gpu: &Gpu, token: u32) {
        let pos = self.context.len() as u32;
        self.cursor.write_u32(gpu, &[token, pos]);
        self.program.submit(gpu);
        self.context.push(token);
    }

    /// Logits after feeding all of `tokens` (from an empty cache); only the last is read back.
    pub async fn prefill(&mut self, gpu: &Gpu, tokens: &[u32]) -> Result<Vec<f32>, String> {
        self.reset();
        let Some((&last, rest)) = tokens.split_last() else {
            return Err("nothing to feed: the prompt is empty".into());
        };
        if rest.len() > 1 && rest.len() < self.cfg.block_size {
            self.feed_prompt(gpu, rest);
        } else {
            // Longer than the cache: slide as decoding does.
            for &t in rest {
                self.step(gpu, t);
            }
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
    ) -> Result<Vec<u32>, String> {
        let mut rng = Rng::new(opts.seed);
        // An empty prompt starts from token 0 (a newline in char vocabularies of most texts).
        let start = if prompt.is_empty() { vec![0] } else { prompt.to_vec() };
        let mut logits = self.prefill(gpu, &start).await?;
        let mut out = Vec::new();
        for i in 0..max_tokens {
            let next = sample_token(&logits, opts, &mut rng);
            out.push(next);
            if !on_token(next) || i + 1 == max_tokens {
                break;
            }
            logits = self.feed(gpu, next).await?;
        }
        Ok(out)
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
