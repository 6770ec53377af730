//! The readable CPU oracle ("CPU twin") of every GPT-2 operation, in plain loops.
//!
//! Each GPU kernel is tested against the function here of the same name, so these define the
//! exact semantics: argument order is binding order, every backward accumulates (`+=`) unless its
//! comment says otherwise, and all tensors are row-major f32 (tokens u32). Clarity before speed.
//!
//! - `layers`: embeddings, LayerNorm, linear layers and the tied LM head, GELU, residual add
//! - `attention`: causal multi-head self-attention over the fused q, k, v
//! - `loss`: softmax + cross-entropy in one pass
//! - `optim`: global gradient norm, clipping scale, AdamW (PyTorch's formula)
//! - `model`: the whole GPT-2 (`CpuGpt`) and a seeded initialiser
//! - `rng`: the seeded generator shared with the data sampler

mod attention;
mod layers;
mod loss;
mod model;
mod optim;
mod rng;

pub use attention::{attention_backward, attention_forward};
pub use layers::{
    encoder_backward, encoder_forward, gelu_backward, gelu_forward, layernorm_backward, layernorm_forward,
    lm_head_backward, lm_head_forward, matmul_backward, matmul_forward, matmul_split_sum, residual_forward,
};
pub use loss::crossentropy_softmax;
pub use model::{init_params, CpuGpt};
pub use optim::{adamw_update, clip_scale, global_grad_norm, step_is_finite};
pub use rng::Rng;
