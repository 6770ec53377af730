//! Model and training configuration: one commented block of defaults and the named presets.
//!
//! `ModelConfig` is GPT-2's shape (what goes into a Hugging Face `config.json`); `TrainConfig` is
//! the recipe (optimiser, schedule, batch). Validation of user input lives here too, so every
//! front end (command line, web page) reports the same one-line errors.

use serde::{Deserialize, Serialize};

/// GPT-2's shape. Field names follow the Hugging Face config where one exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub vocab_size: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    /// Longest sequence the position table covers (`n_positions`).
    pub block_size: usize,
}

/// LayerNorm epsilon, as in GPT-2.
pub const LAYER_NORM_EPS: f32 = 1e-5;

impl ModelConfig {
    pub fn head_size(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// Checks the shape makes sense; the error is one line a person can act on.
    pub fn validate(&self) -> Result<(), String> {
        if self.n_layer == 0 || self.n_head == 0 || self.n_embd == 0 || self.block_size == 0 {
            return Err("layers, heads, channels and block size must all be at least 1".into());
        }
        if self.vocab_size == 0 {
            return Err("the vocabulary is empty".into());
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(format!(
                "{} heads do not divide {} channels: choose heads that divide the channel count",
                self.n_head, self.n_embd
            ));
        }
        Ok(())
    }
}

/// The training recipe: AdamW with warm-up then cosine decay to a tenth, clipping by global norm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub batch_size: usize,
    /// Tokens per training window (at most the model's `block_size`).
    pub seq_len: usize,
    pub steps: usize,
    pub lr: f32,
    pub warmup: usize,
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub grad_clip: f32,
    pub seed: u64,
    /// Train low-rank adapters instead of the weights (fine-tuning); None trains every weight.
    #[serde(default)]
    pub lora: Option<crate::lora::LoraConfig>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            batch_size: 16,
            seq_len: 64,
            steps: 300,
            lr: 1e-3,
            warmup: 30,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            grad_clip: 1.0,
            seed: 1337,
            lora: None,
        }
    }
}

impl TrainConfig {
    /// The recipe for fine-tuning a pre-trained model on a task: fewer steps, a lower peak, no
    /// weight decay pulling the pre-trained weights towards zero.
    pub fn finetune() -> TrainConfig {
        TrainConfig { steps: 200, lr: 3e-4, warmup: 20, weight_decay: 0.0, ..TrainConfig::default() }
    }

    pub fn validate(&self, model: &ModelConfig) -> Result<(), String> {
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(format!("learning rate must be a positive number, got {}", self.lr));
        }
        if self.steps == 0 {
            return Err("steps must be at least 1".into());
        }
        if self.batch_size == 0 || self.seq_len == 0 {
            return Err("batch and block must be at least 1".into());
        }
        if let Some(lora) = &self.lora {
            lora.validate(model)?;
        }
        if self.seq_len > model.block_size {
            return Err(format!("block {} is longer than the model's {} positions", self.seq_len, model.block_size));
        }
        Ok(())
    }

    /// Learning rate at `step` (0-based): linear warm-up to `lr`, then a cosine to `lr / 10` at
    /// the last step.
    pub fn lr_at(&self, step: usize) -> f32 {
        let peak = self.lr;
        if step < self.warmup {
            return peak * (step + 1) as f32 / self.warmup as f32;
        }
        let floor = peak * 0.1;
        let span = self.steps.saturating_sub(self.warmup).saturating_sub(1).max(1);
        let progress = ((step - self.warmup) as f32 / span as f32).min(1.0);
        floor + 0.5 * (peak - floor) * (1.0 + (std::f32::consts::PI * progress).cos())
    }
}

/// How a run checks and reports itself, beside the recipe: the settings every front end (the
/// `kiln` command line, the page) starts from, declared once here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// The share of the tokens, at the end, held out for validation.
    pub val_fraction: f32,
    /// Evaluate on the validation part every N steps.
    pub eval_every: usize,
    /// Validation batches per evaluation.
    pub eval_batches: usize,
    /// Read the loss back every N steps (the only GPU sync of a training step).
    pub log_every: usize,
    /// Print a sample every N steps (0: only at the end).
    pub sample_every: usize,
    /// Write a checkpoint every N steps (0: only at the end).
    pub checkpoint_every: usize,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            val_fraction: 0.1,
            eval_every: 100,
            eval_batches: 20,
            log_every: 10,
            sample_every: 100,
            checkpoint_every: 0,
        }
    }
}

impl RunSettings {
    /// Fine-tuning's: the validation set is small, so evaluate more often.
    pub fn finetune() -> RunSettings {
        RunSettings { val_fraction: 0.1, eval_every: 50, sample_every: 100, ..RunSettings::default() }
    }
}

/// The page's Fine-tune tab scores a task three ways (zero-shot, few-shot, fine-tuned): the
/// solved examples before each question of its few-shot column, and how many test examples it
/// scores (the first N: an interval of about +-15 points, about a minute on a software adapter).
pub const FEW_SHOTS: usize = 2;
pub const TASK_TEST_EXAMPLES: usize = 40;
/// The LoRA rank the page offers first (`kiln finetune --lora R` takes it as given).
pub const LORA_RANK: usize = 8;

/// The preset a software adapter (and the page) starts with.
pub const DEFAULT_PRESET: &str = "tiny";

/// Every default a front end shows, as one JSON object for the page: `train` (the recipe),
/// `run` (the run settings), `sample` (the sampler's options), `preset`, and `finetune` (its
/// recipe and run settings, and the Fine-tune tab's shots and test examples).
pub fn defaults_json() -> serde_json::Value {
    let s = crate::sample::SampleOptions::default();
    serde_json::json!({
        "train": TrainConfig::default(), "run": RunSettings::default(), "preset": DEFAULT_PRESET,
        "sample": {"temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p, "seed": s.seed,
                   "tokens": crate::sample::DEFAULT_SAMPLE_TOKENS},
        "finetune": {"train": TrainConfig::finetune(), "run": RunSettings::finetune(),
                     "shots": FEW_SHOTS, "test_examples": TASK_TEST_EXAMPLES, "lora_rank": LORA_RANK},
    })
}

/// A named model shape with the batch that suits it.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub name: &'static str,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    pub block_size: usize,
    pub batch_size: usize,
}

pub const PRESETS: &[Preset] = &[
    // Seconds per hundred steps on a software rasteriser; what CI trains.
    Preset { name: "tiny", n_layer: 2, n_head: 2, n_embd: 64, block_size: 64, batch_size: 16 },
    Preset { name: "small", n_layer: 4, n_head: 4, n_embd: 128, block_size: 128, batch_size: 32 },
    // nanoGPT's shakespeare-char shape.
    Preset { name: "shakespeare", n_layer: 6, n_head: 6, n_embd: 384, block_size: 256, batch_size: 64 },
    // GPT-2 small (124M).
    Preset { name: "gpt2", n_layer: 12, n_head: 12, n_embd: 768, block_size: 1024, batch_size: 8 },
];

pub fn preset(name: &str) -> Result<Preset, String> {
    PRESETS.iter().find(|p| p.name == name).copied().ok_or_else(|| {
        let names: Vec<_> = PRESETS.iter().map(|p| p.name).collect();
        format!("unknown preset '{}': choose one of {}", name, names.join(", "))
    })
}
