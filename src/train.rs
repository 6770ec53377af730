//! Training: one `Trainer` owns the model on the GPU, the data and the sampler's state, and
//! advances one step at a time, so a terminal loop and a browser worker drive it the same way.
//!
//! No clocks here (the core runs in a browser too): front ends time the steps themselves.

use crate::config::{ModelConfig, TrainConfig};
use crate::cpu::Rng;
use crate::data::{eval_batches, sample_batch, Dataset};
use crate::gpt::GpuGpt;
use crate::gpu::Gpu;

pub struct Trainer {
    pub model: GpuGpt,
    pub train: TrainConfig,
    pub data: Dataset,
    /// The batch sampler's generator: its state is the data position of a run.
    pub rng: Rng,
    /// Steps completed so far.
    pub step: usize,
    eval: Vec<(Vec<u32>, Vec<u32>)>,
}

impl Trainer {
    /// Puts `params` (one Vec per parameter tensor) on the GPU and prepares `eval_batches`
    /// fixed validation batches.
    pub fn new(gpu: &Gpu, cfg: ModelConfig, train: TrainConfig, data: Dataset, params: &[Vec<f32>], eval_count: usize)
        -> Result<Trainer, String> {
        cfg.validate()?;
        train.validate(&cfg)?;
        let model = GpuGpt::new(gpu, cfg, params, train.batch_size, train.seq_len, &train)?;
        let eval = if data.val().is_empty() {
            Vec::new()
        } else {
            eval_batches(data.val(), eval_count, train.batch_size, train.seq_len, train.seed)
        };
        let rng = Rng::new(train.seed);
        Ok(Trainer { model, train, data, rng, step: 0, eval })
    }

    pub fn done(&self) -> bool {
        self.step >= self.train.steps
    }

    /// Tokens consumed by one step.
    pub fn tokens_per_step(&self) -> usize {
        self.train.batch_size * self.train.seq_len
    }

    pub fn lr(&self) -> f32 {
        self.train.lr_at(self.step)
    }

    /// One optimiser step on a fresh random batch. The loss comes back only when `read_loss`
    /// is set (a log step): otherwise nothing waits for the GPU.
    pub async fn step(&mut self, gpu: &Gpu, read_loss: bool) -> Option<f32> {
        let (b, t) = (self.train.batch_size, self.train.seq_len);
        let (inputs, targets) = sample_batch(&mut self.rng, self.data.train(), b, t);
        self.model.upload_batch(gpu, &inputs, &targets);
        let lr = self.lr();
        self.step += 1;
        self.model.train_step(gpu, self.step, lr, &self.train, read_loss).await
    }

    /// Mean loss over the fixed validation batches; None without a validation part.
    pub async fn evaluate(&self, gpu: &Gpu) -> Option<f32> {
        if self.eval.is_empty() {
            return None;
        }
        Some(self.model.eval_loss(gpu, &self.eval).await)
    }
}
