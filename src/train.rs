//! Training: one `Trainer` owns the model on the GPU, the data and the sampler's state, and
//! advances one step at a time, so a terminal loop and a browser worker drive it the same way.
//!
//! No clocks here (the core runs in a browser too): front ends time the steps themselves.

use crate::checkpoint::{Checkpoint, TrainState};
use crate::config::{ModelConfig, TrainConfig};
use crate::cpu::Rng;
use crate::data::{eval_batches, sample_batch, Dataset};
use crate::gpt::{GpuGpt, GpuWeights};
use crate::gpu::Gpu;
use crate::lora::LoraRun;
use crate::sample::Generator;
use crate::task::TaskData;
use std::rc::Rc;

/// What a run learns from: a token stream (pre-training) or a task's prompt/completion rows
/// (fine-tuning, where only completion tokens count).
pub enum TrainData {
    Text(Dataset),
    Task(TaskData),
}

impl From<Dataset> for TrainData {
    fn from(d: Dataset) -> TrainData {
        TrainData::Text(d)
    }
}

impl TrainData {
    /// Tokens that count in the loss: (training, validation).
    pub fn token_counts(&self) -> (usize, usize) {
        match self {
            TrainData::Text(d) => (d.train().len(), d.val().len()),
            TrainData::Task(t) => t.counted(),
        }
    }

    fn batch(&self, rng: &mut Rng, b: usize, t: usize) -> (Vec<u32>, Vec<u32>) {
        match self {
            TrainData::Text(d) => sample_batch(rng, d.train(), b, t),
            TrainData::Task(task) => task.sample_batch(rng, b, t),
        }
    }

    fn eval_batches(&self, count: usize, b: usize, t: usize, seed: u64) -> Vec<(Vec<u32>, Vec<u32>)> {
        match self {
            TrainData::Text(d) if d.val().is_empty() => Vec::new(),
            TrainData::Text(d) => eval_batches(d.val(), count, b, t, seed),
            // A task's validation set is small and fixed: all of it, every time.
            TrainData::Task(task) => task.eval_batches(b, t),
        }
    }
}

pub struct Trainer {
    pub model: GpuGpt,
    pub train: TrainConfig,
    pub data: TrainData,
    /// The batch sampler's generator: its state is the data position of a run.
    pub rng: Rng,
    /// Steps completed so far.
    pub step: usize,
    eval: Vec<(Vec<u32>, Vec<u32>)>,
    /// Watches the skipped steps at each log step; `diverged` holds its verdict.
    skips: SkipWatch,
    diverged: Option<String>,
}

impl Trainer {
    /// Puts `params` (one Vec per parameter tensor) on the GPU and prepares `eval_batches`
    /// fixed validation batches.
    pub fn new(
        gpu: &Gpu,
        cfg: ModelConfig,
        train: TrainConfig,
        data: TrainData,
        params: &[Vec<f32>],
        eval_count: usize,
    ) -> Result<Trainer, String> {
        cfg.validate()?;
        train.validate(&cfg)?;
        let model = GpuGpt::new(gpu, cfg, params, train.batch_size, train.seq_len, &train)?;
        let eval = data.eval_batches(eval_count, train.batch_size, train.seq_len, train.seed);
        let rng = Rng::new(train.seed);
        Ok(Trainer { model, train, data, rng, step: 0, eval, skips: SkipWatch::new(0), diverged: None })
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
    pub async fn step(&mut self, gpu: &Gpu, read_loss: bool) -> Result<Option<f32>, String> {
        let (b, t) = (self.train.batch_size, self.train.seq_len);
        let (inputs, targets) = self.data.batch(&mut self.rng, b, t);
        self.model.upload_batch(gpu, &inputs, &targets);
        let lr = self.lr();
        self.step += 1;
        let loss = self.model.train_step(gpu, self.step, lr, &self.train, read_loss).await?;
        if loss.is_some() {
            self.diverged = self.skips.observe(self.step, self.skipped_steps(), self.train.lr).err();
        }
        Ok(loss)
    }

    /// Err with the message to stop on once every step for `SKIPPED_IN_A_ROW_LIMIT` steps or
    /// more was skipped (as of the last step that read its loss back): the run has diverged.
    pub fn diverged(&self) -> Result<(), String> {
        self.diverged.clone().map_or(Ok(()), Err)
    }

    /// Steps so far whose update was skipped (their loss or gradient norm was not finite), as
    /// of the last step that read its loss back.
    pub fn skipped_steps(&self) -> u64 {
        self.model.skipped_steps()
    }

    /// Mean loss over the fixed validation batches; None without a validation part.
    pub async fn evaluate(&self, gpu: &Gpu) -> Result<Option<f32>, String> {
        if self.eval.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.model.eval_loss(gpu, &self.eval).await?))
    }
}

impl Trainer {
    /// Continues a run from its saved state: parameters, AdamW moments, step and data position.
    pub fn resume(
        gpu: &Gpu,
        cfg: ModelConfig,
        state: &TrainState,
        data: TrainData,
        params: &[Vec<f32>],
        eval_count: usize,
    ) -> Result<Trainer, String> {
        let mut trainer = Trainer::new(gpu, cfg, state.train.clone(), data, params, eval_count)?;
        let count = trainer.model.trainable().table.len();
        if state.adam_m.len() != count || state.adam_v.len() != count {
            return Err("the optimizer state does not match the model".into());
        }
        trainer.model.write_adam_state(gpu, &state.adam_m, &state.adam_v)?;
        trainer.rng = Rng::new(state.rng_state);
        trainer.step = state.step;
        trainer.skips = SkipWatch::new(state.step);
        Ok(trainer)
    }

    /// Everything needed to sample from this model or continue this run (a LoRA run: the
    /// model with its adapters merged, no state). Sync point: reads the parameters and moments
    /// back.
    pub async fn checkpoint(
        &self,
        gpu: &Gpu,
        tokenizer_json: String,
        run: serde_json::Value,
    ) -> Result<Checkpoint, String> {
        let params = self.model.read_params(gpu).await?;
        self.check_finite(&params)?;
        if let (Some(lora), Some(adapters)) = (self.train.lora, self.model.read_adapters(gpu).await?) {
            // A LoRA run as a plain model: the adapters merged in; its state is saved by
            // `lora_checkpoint`.
            let params = crate::lora::merge(&self.model.cfg, &lora, &params, &adapters);
            return Ok(Checkpoint { cfg: self.model.cfg, params, tokenizer_json, state: None });
        }
        let (adam_m, adam_v) = self.model.read_adam_state(gpu).await?;
        let state =
            TrainState { train: self.train.clone(), step: self.step, rng_state: self.rng.state(), adam_m, adam_v, run };
        Ok(Checkpoint { cfg: self.model.cfg, params, tokenizer_json, state: Some(state) })
    }

    /// A LoRA run's state: the adapters (PEFT's files), their moments and the run's position;
    /// `base` names the frozen base model. Sync point.
    pub async fn lora_checkpoint(
        &self,
        gpu: &Gpu,
        tokenizer_json: String,
        run: serde_json::Value,
        base: String,
    ) -> Result<LoraRun, String> {
        let lora = self.train.lora.ok_or("this run trains no adapters")?;
        let adapters = self.model.read_adapters(gpu).await?.ok_or("this run trains no adapters")?;
        self.check_finite(&adapters)?;
        let (adam_m, adam_v) = self.model.read_adam_state(gpu).await?;
        let state =
            TrainState { train: self.train.clone(), step: self.step, rng_state: self.rng.state(), adam_m, adam_v, run };
        Ok(LoraRun { cfg: self.model.cfg, lora, adapters, tokenizer_json, base, state: Some(state) })
    }

    /// Refuses to save weights that are not all finite, so that no checkpoint holds them and the
    /// last good one stays in place.
    fn check_finite(&self, tensors: &[Vec<f32>]) -> Result<(), String> {
        match tensors.iter().flatten().find(|x| !x.is_finite()) {
            Some(x) => Err(format!(
                "the weights hold {x} at step {}: no checkpoint was written, the last one is intact; lower --lr",
                self.step
            )),
            None => Ok(()),
        }
    }

    /// A generator that reads this model's live parameters.
    pub fn generator(&self, gpu: &Gpu) -> Generator {
        Generator::new(gpu, self.model.weights.clone())
    }

    /// The weights as the model computes with them now: the live ones, or with LoRA a copy with
    /// the adapters merged in (for samples and scores during a LoRA run). Sync point with LoRA.
    pub async fn current_weights(&self, gpu: &Gpu) -> Result<Rc<GpuWeights>, String> {
        let (Some(lora), Some(adapters)) = (self.train.lora, self.model.read_adapters(gpu).await?) else {
            return Ok(self.model.weights.clone());
        };
        let base = self.model.read_params(gpu).await?;
        let merged = crate::lora::merge(&self.model.cfg, &lora, &base, &adapters);
        Ok(Rc::new(GpuWeights::upload(gpu, self.model.cfg, self.model.weights.layout, &merged)?))
    }
}

/// A run stops when this many steps in a row had a non-finite loss or gradient norm: skipping
/// a rare bad batch is worth it, a run that produces nothing else has diverged.
pub const SKIPPED_IN_A_ROW_LIMIT: usize = 10;

/// Watches the count of skipped steps at each log step and says when a run has diverged. The
/// one rule for every front end (the CLI and the page).
#[derive(Default)]
pub struct SkipWatch {
    last_step: usize,
    last_total: u64,
    in_a_row: usize,
}

impl SkipWatch {
    /// Starts watching a run at `step` (a resumed run starts at its checkpoint's step).
    pub fn new(step: usize) -> SkipWatch {
        SkipWatch { last_step: step, ..SkipWatch::default() }
    }

    /// At a log step: `total` skipped steps so far in this process. Err with the message to stop
    /// on when every step since at least `SKIPPED_IN_A_ROW_LIMIT` steps ago was skipped.
    pub fn observe(&mut self, step: usize, total: u64, lr: f32) -> Result<(), String> {
        let (span, new) = (step.saturating_sub(self.last_step), total.saturating_sub(self.last_total) as usize);
        self.in_a_row = if new >= span && span > 0 { self.in_a_row + span } else { 0 };
        (self.last_step, self.last_total) = (step, total);
        if self.in_a_row >= SKIPPED_IN_A_ROW_LIMIT {
            return Err(format!(
                "the loss or gradient norm was not finite in each of the last {} steps (to step {step}; their updates \
                 were skipped, nothing reached the weights): the run has diverged; lower --lr (now {lr})",
                self.in_a_row
            ));
        }
        Ok(())
    }
}

/// Mean loss of `weights` over all of `tokens`: windows of T + 1 tokens starting every T tokens
/// (T the block size), each predicting its last T tokens; a tail shorter than a window is left
/// out. Forward-only models, `batch` windows at a time. Returns the loss and the number of
/// windows.
pub async fn text_loss(
    gpu: &Gpu,
    weights: Rc<GpuWeights>,
    tokens: &[u32],
    batch: usize,
) -> Result<(f32, usize), String> {
    let t = weights.cfg.block_size;
    let windows: Vec<(Vec<u32>, Vec<u32>)> = (0..)
        .map(|i| i * t)
        .take_while(|s| s + t < tokens.len())
        .map(|s| (tokens[s..s + t].to_vec(), tokens[s + 1..s + t + 1].to_vec()))
        .collect();
    if windows.is_empty() {
        return Err(format!("the text has {} tokens, fewer than one block of {} plus one", tokens.len(), t));
    }
    let batch = batch.clamp(1, windows.len());
    let (mut sum, mut count) = (0.0f64, 0.0f64);
    let full = windows.len() / batch * batch;
    let join = |ws: &[(Vec<u32>, Vec<u32>)]| {
        (ws.iter().flat_map(|w| w.0.clone()).collect(), ws.iter().flat_map(|w| w.1.clone()).collect())
    };
    let mut add = |(s, c): (f64, f64)| {
        sum += s;
        count += c;
    };
    if full > 0 {
        let model = GpuGpt::on_weights(gpu, weights.clone(), batch, t, None)?;
        let batches: Vec<_> = windows[..full].chunks(batch).map(join).collect();
        add(model.eval_sum(gpu, &batches).await?);
    }
    if full < windows.len() {
        let rest = &windows[full..];
        let model = GpuGpt::on_weights(gpu, weights, rest.len(), t, None)?;
        add(model.eval_sum(gpu, &[join(rest)]).await?);
    }
    Ok(((sum / count) as f32, windows.len()))
}
