//! What a model and batch will ask of the GPU, checked against the adapter's real limits before
//! anything is allocated, so a shape that cannot fit is refused with a reason and a way out.

use crate::config::ModelConfig;
use crate::model::num_params;

/// Sizes in bytes of what training allocates.
#[derive(Clone, Debug)]
pub struct MemoryPlan {
    /// Parameters, gradients and the two AdamW moments.
    pub param_bytes: u64,
    /// Activations kept for the backward pass plus the backward scratch.
    pub activation_bytes: u64,
    /// The largest single buffer, with its name: the one a binding limit bites on first.
    pub largest: (&'static str, u64),
}

impl MemoryPlan {
    pub fn new(cfg: &ModelConfig, b: usize, t: usize) -> MemoryPlan {
        let (n, c, v, nh, l) = (b * t, cfg.n_embd, cfg.vocab_size, cfg.n_head, cfg.n_layer);
        let f = |words: usize| (words as u64) * 4;
        let per_layer = 16 * n * c + 4 * n + b * nh * t * t;
        let shared = 8 * n * c + 11 * n * c + n * v + b * nh * t * t + 6 * n;
        let candidates = [
            ("logits (batch x block x vocabulary)", f(n * v)),
            ("attention (batch x heads x block x block)", f(b * nh * t * t)),
            ("MLP activations (batch x block x 4 channels)", f(n * 4 * c)),
            ("token embedding (vocabulary x channels)", f(v * c)),
        ];
        let largest = candidates.into_iter().max_by_key(|x| x.1).unwrap();
        MemoryPlan { param_bytes: f(4 * num_params(cfg)), activation_bytes: f(l * per_layer + shared), largest }
    }

    pub fn total_bytes(&self) -> u64 {
        self.param_bytes + self.activation_bytes
    }

    /// Refuses a plan whose largest buffer exceeds what the adapter can bind or allocate.
    pub fn check(&self, limits: &wgpu::Limits) -> Result<(), String> {
        let bind = limits.max_storage_buffer_binding_size;
        let alloc = limits.max_buffer_size;
        let cap = bind.min(alloc);
        let (what, bytes) = self.largest;
        if bytes > cap {
            let limit = if bind <= alloc { "max_storage_buffer_binding_size" } else { "max_buffer_size" };
            return Err(format!(
                "this model and batch need a {} MiB buffer for the {what}, over this adapter's {limit} of {} MiB: \
                 use a batch or block about {:.0}% as large, or a smaller vocabulary",
                mib(bytes),
                mib(cap),
                100.0 * cap as f64 / bytes as f64
            ));
        }
        Ok(())
    }
}

pub fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}
