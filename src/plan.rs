//! What a model and batch will ask of the GPU, checked against the adapter's real limits before
//! anything is allocated, so a shape that cannot fit is refused with a reason and a way out.
//!
//! The plan walks the same descriptions that allocate (`gpt::describe_acts`, `Split::describe`
//! over the parameter table), so it counts what is really allocated.

use crate::config::ModelConfig;
use crate::gpt::{describe_acts, Layout, Mode, Split};
use crate::model::param_table;

/// Sizes in bytes of what a model allocates.
#[derive(Clone, Debug)]
pub struct MemoryPlan {
    /// The weights.
    pub weight_bytes: u64,
    /// Gradients and the two AdamW moments (training only).
    pub optimizer_bytes: u64,
    /// Activations, kept for the backward pass when training, and the backward scratch.
    pub activation_bytes: u64,
    /// The largest single buffer, with its name: the one a binding limit bites on first.
    pub largest: (String, u64),
}

impl MemoryPlan {
    pub fn new(cfg: &ModelConfig, b: usize, t: usize, mode: Mode, layout: &Layout) -> MemoryPlan {
        let mut largest = (String::new(), 0u64);
        let mut note = |label: &str, words: usize| {
            let bytes = 4 * words.max(1) as u64;
            if bytes > largest.1 {
                largest = (label.to_string(), bytes);
            }
            bytes
        };
        let mut weight_bytes = 0;
        for (i, spec) in param_table(cfg).iter().enumerate() {
            for (bytes, _, _) in Split::describe(spec, i, layout, |len| note(&spec.name, len)) {
                weight_bytes += bytes;
            }
        }
        let mut activation_bytes = 0;
        describe_acts(&mut |label: &str, words| activation_bytes += note(label, words), cfg, b, t, mode, layout);
        let optimizer_bytes = if mode == Mode::Train { 3 * weight_bytes } else { 0 };
        MemoryPlan { weight_bytes, optimizer_bytes, activation_bytes, largest }
    }

    pub fn total_bytes(&self) -> u64 {
        self.weight_bytes + self.optimizer_bytes + self.activation_bytes
    }

    /// Refuses a plan whose largest buffer exceeds what the adapter can bind or allocate.
    pub fn check(&self, limits: &wgpu::Limits) -> Result<(), String> {
        let bind = limits.max_storage_buffer_binding_size;
        let alloc = limits.max_buffer_size;
        let cap = bind.min(alloc);
        let (what, bytes) = &self.largest;
        if *bytes > cap {
            let limit = if bind <= alloc { "max_storage_buffer_binding_size" } else { "max_buffer_size" };
            return Err(format!(
                "this model and batch need a {} MiB buffer for '{what}', over this adapter's {limit} of {} MiB: \
                 use a batch or block about {:.0}% as large",
                mib(*bytes),
                mib(cap),
                100.0 * cap as f64 / *bytes as f64
            ));
        }
        Ok(())
    }

    /// One line for people: the total and its parts.
    pub fn summary(&self) -> String {
        format!(
            "{} MiB of GPU memory: weights {} MiB, gradients and AdamW moments {} MiB, activations {} MiB",
            mib(self.total_bytes()),
            mib(self.weight_bytes),
            mib(self.optimizer_bytes),
            mib(self.activation_bytes)
        )
    }
}

pub fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}
