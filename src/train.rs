//! Training: one `Trainer` owns the model on the GPU, the data and the sampler's state, and
//! advances one step at a time, so a terminal loop and a browser worker drive it the same way.
//!
//! No clocks here (the core runs in a browser too): front ends time the steps themselves.

use crate::checkpoint::{Checkpoint, TrainState};
use crate::config::{ModelConfig, TrainConfig};
use crate::cpu::Rng;
use crate::data::{eval_batches, sample_batch, Dataset};
use crate::gpt::GpuGpt;
use crate::gpu::Gpu;
use crate::sample::Generator;

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
    pub fn new(
        gpu: &Gpu,
        cfg: ModelConfig,
        train: TrainConfig,
        data: Dataset,
        params: &[Vec<f32>],
        eval_count: usize,
    ) -> Result<Trainer, String> {
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

impl Trainer {
    /// Continues a run from its saved state: parameters, AdamW moments, step and data position.
    pub fn resume(
        gpu: &Gpu,
        cfg: ModelConfig,
        state: &TrainState,
        data: Dataset,
        params: &[Vec<f32>],
        eval_count: usize,
    ) -> Result<Trainer, String> {
        let mut trainer = Trainer::new(gpu, cfg, state.train.clone(), data, params, eval_count)?;
        if state.adam_m.len() != trainer.model.params.len() || state.adam_v.len() != trainer.model.params.len() {
            return Err("the optimizer state does not match the model".into());
        }
        trainer.model.write_adam_state(gpu, &state.adam_m, &state.adam_v);
        trainer.rng = Rng::new(state.rng_state);
        trainer.step = state.step;
        Ok(trainer)
    }

    /// Everything needed to sample from this model or continue this run. Sync point: reads
    /// the parameters and moments back.
    pub async fn checkpoint(&self, gpu: &Gpu, tokenizer_json: String, run: serde_json::Value) -> Checkpoint {
        let params = self.model.read_params(gpu).await;
        let (adam_m, adam_v) = self.model.read_adam_state(gpu).await;
        let state =
            TrainState { train: self.train.clone(), step: self.step, rng_state: self.rng.state(), adam_m, adam_v, run };
        Checkpoint { cfg: self.model.cfg, params, tokenizer_json, state: Some(state) }
    }

    /// A generator that reads this model's live parameters.
    pub fn generator(&self, gpu: &Gpu) -> Generator {
        let buffers: Vec<_> = self.model.params.iter().map(|t| t.buffer.clone()).collect();
        Generator::new(gpu, self.model.cfg, &buffers)
    }
}

/// Mean loss of `params` over all of `tokens`: windows of T + 1 tokens starting every T tokens
/// (T the block size), each predicting its last T tokens; a tail shorter than a window is left
/// out. Returns the loss and the number of windows.
pub async fn text_loss(
    gpu: &Gpu,
    cfg: ModelConfig,
    params: &[Vec<f32>],
    tokens: &[u32],
    batch: usize,
) -> Result<(f32, usize), String> {
    let t = cfg.block_size;
    let windows: Vec<(Vec<u32>, Vec<u32>)> = (0..)
        .map(|i| i * t)
        .take_while(|s| s + t < tokens.len())
        .map(|s| (tokens[s..s + t].to_vec(), tokens[s + 1..s + t + 1].to_vec()))
        .collect();
    if windows.is_empty() {
        return Err(format!("the text has {} tokens, fewer than one block of {} plus one", tokens.len(), t));
    }
    let batch = batch.clamp(1, windows.len());
    let train = TrainConfig::default();
    let mut sum = 0.0f64;
    let full = windows.len() / batch * batch;
    let join = |ws: &[(Vec<u32>, Vec<u32>)]| {
        (ws.iter().flat_map(|w| w.0.clone()).collect(), ws.iter().flat_map(|w| w.1.clone()).collect())
    };
    if full > 0 {
        let model = GpuGpt::new(gpu, cfg, params, batch, t, &train)?;
        let batches: Vec<_> = windows[..full].chunks(batch).map(join).collect();
        sum += model.eval_loss(gpu, &batches).await as f64 * full as f64;
    }
    if full < windows.len() {
        let rest = &windows[full..];
        let model = GpuGpt::new(gpu, cfg, params, rest.len(), t, &train)?;
        sum += model.eval_loss(gpu, &[join(rest)]).await as f64 * rest.len() as f64;
    }
    Ok(((sum / windows.len() as f64) as f32, windows.len()))
}
