//! GPT-2's parameters as one table: name, shape and initialisation of every tensor.
//!
//! The table drives everything that walks the parameters: GPU buffers, gradients, AdamW moments,
//! checkpoint order and the parameter count. Names are Hugging Face GPT-2's (without the
//! `transformer.` prefix); linear weights use its `Conv1D` layout, (in, out), so `y = x @ W + b`
//! and checkpoints need no transposes. The LM head is tied to `wte.weight`.

use crate::config::ModelConfig;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Normal with mean 0 and this standard deviation.
    Normal(f32),
    Zeros,
    Ones,
}

#[derive(Clone, Debug)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
}

impl ParamSpec {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// Weight decay applies to 2-D tensors only (matrices and embeddings).
    pub fn decays(&self) -> bool {
        self.shape.len() == 2
    }
}

/// Indices into the parameter table for one transformer block.
#[derive(Clone, Copy, Debug)]
pub struct BlockParams {
    pub ln_1_w: usize,
    pub ln_1_b: usize,
    pub c_attn_w: usize,
    pub c_attn_b: usize,
    pub attn_proj_w: usize,
    pub attn_proj_b: usize,
    pub ln_2_w: usize,
    pub ln_2_b: usize,
    pub c_fc_w: usize,
    pub c_fc_b: usize,
    pub mlp_proj_w: usize,
    pub mlp_proj_b: usize,
}

/// Number of tensors per block, in the order `param_table` lists them.
pub const TENSORS_PER_BLOCK: usize = 12;
pub const WTE: usize = 0;
pub const WPE: usize = 1;

pub fn block_params(layer: usize) -> BlockParams {
    let o = 2 + layer * TENSORS_PER_BLOCK;
    BlockParams {
        ln_1_w: o,
        ln_1_b: o + 1,
        c_attn_w: o + 2,
        c_attn_b: o + 3,
        attn_proj_w: o + 4,
        attn_proj_b: o + 5,
        ln_2_w: o + 6,
        ln_2_b: o + 7,
        c_fc_w: o + 8,
        c_fc_b: o + 9,
        mlp_proj_w: o + 10,
        mlp_proj_b: o + 11,
    }
}

/// Index of `ln_f.weight`; `ln_f.bias` follows it.
pub fn ln_f(cfg: &ModelConfig) -> usize {
    2 + cfg.n_layer * TENSORS_PER_BLOCK
}

/// Every parameter tensor of GPT-2, in a fixed order.
pub fn param_table(cfg: &ModelConfig) -> Vec<ParamSpec> {
    let (v, c, t, l) = (cfg.vocab_size, cfg.n_embd, cfg.block_size, cfg.n_layer);
    let std = 0.02;
    // The two projections that write into the residual stream are scaled down so the stream's
    // variance does not grow with depth (GPT-2 paper, section 2.3).
    let proj_std = 0.02 / ((2 * l) as f32).sqrt();
    let p = |name: String, shape: Vec<usize>, init| ParamSpec { name, shape, init };
    let mut table = vec![
        p("wte.weight".into(), vec![v, c], Init::Normal(std)),
        p("wpe.weight".into(), vec![t, c], Init::Normal(std)),
    ];
    for i in 0..l {
        let h = |s: &str| format!("h.{i}.{s}");
        table.extend([
            p(h("ln_1.weight"), vec![c], Init::Ones),
            p(h("ln_1.bias"), vec![c], Init::Zeros),
            p(h("attn.c_attn.weight"), vec![c, 3 * c], Init::Normal(std)),
            p(h("attn.c_attn.bias"), vec![3 * c], Init::Zeros),
            p(h("attn.c_proj.weight"), vec![c, c], Init::Normal(proj_std)),
            p(h("attn.c_proj.bias"), vec![c], Init::Zeros),
            p(h("ln_2.weight"), vec![c], Init::Ones),
            p(h("ln_2.bias"), vec![c], Init::Zeros),
            p(h("mlp.c_fc.weight"), vec![c, 4 * c], Init::Normal(std)),
            p(h("mlp.c_fc.bias"), vec![4 * c], Init::Zeros),
            p(h("mlp.c_proj.weight"), vec![4 * c, c], Init::Normal(proj_std)),
            p(h("mlp.c_proj.bias"), vec![c], Init::Zeros),
        ]);
    }
    table.push(p("ln_f.weight".into(), vec![c], Init::Ones));
    table.push(p("ln_f.bias".into(), vec![c], Init::Zeros));
    table
}

/// Total parameters (the tied LM head counted once).
pub fn num_params(cfg: &ModelConfig) -> usize {
    param_table(cfg).iter().map(ParamSpec::numel).sum()
}
