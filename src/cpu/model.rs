//! The whole GPT-2 on the CPU: forward, backward and a seeded initialiser, built only from the
//! layer functions in this module. It is the oracle the GPU model is compared with, and small
//! enough to read as the definition of the model.
//!
//! Not here: the optimiser step (`optim.rs`), sampling, or anything fast.
//!
//! Legend: B batch, T time, C channels, NH heads, V vocabulary, N = B*T rows.

use super::attention::{attention_backward, attention_forward};
use super::layers::*;
use super::loss::crossentropy_softmax;
use super::rng::Rng;
use crate::config::ModelConfig;
use crate::model::{block_params, ln_f, param_table, Init, WPE, WTE};

/// Parameters drawn as the table says: Normal(std) from one stream seeded by `seed`, in table
/// order, so the same seed gives the same model everywhere.
pub fn init_params(cfg: &ModelConfig, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed);
    param_table(cfg)
        .iter()
        .map(|spec| match spec.init {
            Init::Normal(std) => (0..spec.numel()).map(|_| rng.normal() * std).collect(),
            Init::Zeros => vec![0.0; spec.numel()],
            Init::Ones => vec![1.0; spec.numel()],
        })
        .collect()
}

/// A LayerNorm's output and the row statistics its backward needs.
struct Norm {
    out: Vec<f32>,  // (N, C)
    mean: Vec<f32>, // (N)
    rstd: Vec<f32>, // (N)
}

/// What one block's forward keeps for its backward.
struct BlockActs {
    residual: Vec<f32>,  // (N, C) the block's input
    ln1: Norm,           // (N, C)
    qkv: Vec<f32>,       // (N, 3C)
    att: Vec<f32>,       // (B, NH, T, T) attention probabilities
    atty: Vec<f32>,      // (N, C) attention output, before c_proj
    residual2: Vec<f32>, // (N, C) after the attention branch is added
    ln2: Norm,           // (N, C)
    fch: Vec<f32>,       // (N, 4C) c_fc output, before GELU
    fch_gelu: Vec<f32>,  // (N, 4C)
}

/// What the whole forward keeps.
struct Acts {
    b: usize,
    t: usize,
    tokens: Vec<u32>, // (B, T)
    blocks: Vec<BlockActs>,
    residual: Vec<f32>, // (N, C) the last block's output
    lnf: Norm,          // (N, C)
    /// (N, V) gradient of the mean loss with respect to the logits; present when targets were.
    dlogits: Option<Vec<f32>>,
}

pub struct CpuGpt {
    pub cfg: ModelConfig,
    /// One Vec per `param_table` entry, same order.
    pub params: Vec<Vec<f32>>,
    acts: Option<Acts>,
}

impl CpuGpt {
    pub fn new(cfg: ModelConfig, params: Vec<Vec<f32>>) -> Self {
        let table = param_table(&cfg);
        assert_eq!(params.len(), table.len(), "expected one Vec per parameter tensor");
        for (p, spec) in params.iter().zip(&table) {
            assert_eq!(p.len(), spec.numel(), "{} has the wrong number of values", spec.name);
        }
        CpuGpt { cfg, params, acts: None }
    }

    /// Runs GPT-2 on `tokens` (B, T) and returns the logits (B, T, V), and the mean
    /// cross-entropy over all B*T positions when `targets` (B, T) are given. Keeps the
    /// activations for `backward`.
    pub fn forward(&mut self, tokens: &[u32], targets: Option<&[u32]>, b: usize, t: usize) -> (Vec<f32>, Option<f32>) {
        let cfg = self.cfg;
        let (v, c, nh) = (cfg.vocab_size, cfg.n_embd, cfg.n_head);
        let n = b * t;
        assert!(t <= cfg.block_size, "T = {t} is longer than the position table");
        assert_eq!(tokens.len(), n, "tokens must be (B, T)");
        assert!(tokens.iter().all(|&x| (x as usize) < v), "a token is outside the vocabulary");
        let p = &self.params;

        // x = wte[token] + wpe[position]
        let mut x = vec![0.0; n * c]; // (N, C)
        encoder_forward(&mut x, tokens, &p[WTE], &p[WPE], b, t, c);

        let mut blocks = Vec::with_capacity(cfg.n_layer);
        for l in 0..cfg.n_layer {
            let bp = block_params(l);
            // x = x + c_proj(attention(c_attn(ln_1(x))))
            let ln1 = layernorm(p, bp.ln_1_w, &x, n, c);
            let qkv = linear(p, bp.c_attn_w, &ln1.out, n, c, 3 * c);
            let (mut atty, mut att) = (vec![0.0; n * c], vec![0.0; b * nh * t * t]);
            attention_forward(&mut atty, &mut att, &qkv, b, t, c, nh);
            let attproj = linear(p, bp.attn_proj_w, &atty, n, c, c);
            let mut residual2 = vec![0.0; n * c];
            residual_forward(&mut residual2, &x, &attproj);

            // x = x + mlp_c_proj(gelu(c_fc(ln_2(x))))
            let ln2 = layernorm(p, bp.ln_2_w, &residual2, n, c);
            let fch = linear(p, bp.c_fc_w, &ln2.out, n, c, 4 * c);
            let mut fch_gelu = vec![0.0; n * 4 * c];
            gelu_forward(&mut fch_gelu, &fch);
            let fcproj = linear(p, bp.mlp_proj_w, &fch_gelu, n, 4 * c, c);
            let mut residual3 = vec![0.0; n * c];
            residual_forward(&mut residual3, &residual2, &fcproj);

            let residual = std::mem::replace(&mut x, residual3);
            blocks.push(BlockActs { residual, ln1, qkv, att, atty, residual2, ln2, fch, fch_gelu });
        }

        // logits = ln_f(x) @ wte^T: the LM head is the embedding table, transposed.
        let lnf = layernorm(p, ln_f(&cfg), &x, n, c);
        let mut logits = vec![0.0; n * v]; // (N, V)
        lm_head_forward(&mut logits, &lnf.out, &p[WTE], n, c, v);

        let (loss, dlogits) = match targets {
            Some(targets) => {
                assert_eq!(targets.len(), n, "targets must be (B, T)");
                let (mut losses, mut dlogits) = (vec![0.0; n], vec![0.0; n * v]);
                // The loss is the mean over rows, so each row's gradient carries 1/N.
                let dloss = 1.0 / n as f32;
                crossentropy_softmax(&mut losses, &mut dlogits, &logits, targets, n, v, dloss);
                let mean = losses.iter().map(|&l| l as f64).sum::<f64>() / n as f64;
                (Some(mean as f32), Some(dlogits))
            }
            None => (None, None),
        };

        let tokens = tokens.to_vec();
        self.acts = Some(Acts { b, t, tokens, blocks, residual: x, lnf, dlogits });
        (logits, loss)
    }

    /// Gradients of the mean loss of the last `forward` that had targets, one Vec per parameter
    /// in table order. The tied `wte` gets both the embedding's and the LM head's contribution.
    pub fn backward(&mut self) -> Vec<Vec<f32>> {
        let acts = self.acts.as_ref().expect("backward needs a forward first");
        let dlogits = acts.dlogits.as_ref().expect("backward needs a forward with targets");
        let cfg = self.cfg;
        let (v, c, nh) = (cfg.vocab_size, cfg.n_embd, cfg.n_head);
        let (b, t) = (acts.b, acts.t);
        let n = b * t;
        let p = &self.params;
        let mut g = Grads { p, grads: p.iter().map(|x| vec![0.0; x.len()]).collect(), n };

        // Through the LM head, then ln_f. From here `dres` (N, C) carries the gradient of the
        // residual stream down through the blocks: each branch's backward adds into it, and the
        // skip connection passes it on unchanged.
        let mut dlnf = vec![0.0; n * c];
        lm_head_backward(&mut dlnf, &mut g.grads[WTE], dlogits, &acts.lnf.out, &p[WTE], n, c, v);
        let mut dres = vec![0.0; n * c];
        g.layernorm(ln_f(&cfg), &mut dres, &dlnf, &acts.residual, &acts.lnf);

        for l in (0..cfg.n_layer).rev() {
            let bp = block_params(l);
            let a = &acts.blocks[l];

            // MLP branch: residual3 = residual2 + c_proj(gelu(c_fc(ln_2(residual2)))).
            let dfch_gelu = g.linear(bp.mlp_proj_w, &dres, &a.fch_gelu, 4 * c, c);
            let mut dfch = vec![0.0; n * 4 * c];
            gelu_backward(&mut dfch, &a.fch, &dfch_gelu);
            let dln2 = g.linear(bp.c_fc_w, &dfch, &a.ln2.out, c, 4 * c);
            g.layernorm(bp.ln_2_w, &mut dres, &dln2, &a.residual2, &a.ln2);

            // Attention branch: residual2 = residual + c_proj(attention(c_attn(ln_1(residual)))).
            let datty = g.linear(bp.attn_proj_w, &dres, &a.atty, c, c);
            let mut dqkv = vec![0.0; n * 3 * c];
            attention_backward(&mut dqkv, &datty, &a.qkv, &a.att, b, t, c, nh);
            let dln1 = g.linear(bp.c_attn_w, &dqkv, &a.ln1.out, c, 3 * c);
            g.layernorm(bp.ln_1_w, &mut dres, &dln1, &a.residual, &a.ln1);
        }

        // Into the embeddings; wte already holds the LM head's share.
        let (dwte, dwpe) = pair_mut(&mut g.grads, WTE);
        encoder_backward(dwte, dwpe, &dres, &acts.tokens, b, t, c);
        g.grads
    }
}

/// LayerNorm with the weight at table index `w` and its bias at `w + 1`.
fn layernorm(p: &[Vec<f32>], w: usize, x: &[f32], n: usize, c: usize) -> Norm {
    let mut norm = Norm { out: vec![0.0; n * c], mean: vec![0.0; n], rstd: vec![0.0; n] };
    layernorm_forward(&mut norm.out, &mut norm.mean, &mut norm.rstd, x, &p[w], &p[w + 1], n, c);
    norm
}

/// x @ W + b, (N, C) -> (N, OC), with W at table index `w` and b at `w + 1`.
fn linear(p: &[Vec<f32>], w: usize, x: &[f32], n: usize, c: usize, oc: usize) -> Vec<f32> {
    let mut out = vec![0.0; n * oc];
    matmul_forward(&mut out, x, &p[w], Some(&p[w + 1]), n, c, oc);
    out
}

/// The parameter gradients being accumulated, with the two backward calls that write a weight
/// and its bias (table indices `w` and `w + 1`) in one go.
struct Grads<'a> {
    p: &'a [Vec<f32>],
    grads: Vec<Vec<f32>>,
    n: usize,
}

impl Grads<'_> {
    /// Backward of `linear`: accumulates dW and db, returns a fresh dx (N, C).
    fn linear(&mut self, w: usize, dout: &[f32], x: &[f32], c: usize, oc: usize) -> Vec<f32> {
        let mut dx = vec![0.0; self.n * c];
        let (dw, db) = pair_mut(&mut self.grads, w);
        matmul_backward(&mut dx, dw, Some(db), dout, x, &self.p[w], self.n, c, oc);
        dx
    }

    /// Backward of `layernorm`: accumulates dweight and dbias, and adds dx into `dx`, the
    /// residual stream's gradient.
    fn layernorm(&mut self, w: usize, dx: &mut [f32], dout: &[f32], x: &[f32], norm: &Norm) {
        let (n, c) = (self.n, x.len() / self.n);
        let (dw, db) = pair_mut(&mut self.grads, w);
        let (mean, rstd) = (&norm.mean, &norm.rstd);
        layernorm_backward(dx, dw, db, dout, x, &self.p[w], mean, rstd, n, c);
    }
}

/// Mutable views of tensors `i` and `i + 1`. Every weight in the table is followed by its bias
/// (and `wte` by `wpe`), so this is how a backward gets both of its outputs at once.
fn pair_mut(grads: &mut [Vec<f32>], i: usize) -> (&mut [f32], &mut [f32]) {
    let (lo, hi) = grads.split_at_mut(i + 1);
    (&mut lo[i], &mut hi[0])
}
