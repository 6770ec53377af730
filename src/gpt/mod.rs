//! GPT-2 on the GPU for a fixed batch shape: the weights (shared, table-driven), the
//! activations, for training the gradients and AdamW moments, and the forward, loss, backward
//! and AdamW programs, recorded once and replayed each step.
//!
//! Legend: B batch, T time, C channels, NH heads, V vocabulary, L layers, N = B*T rows.
//! A training step is one command encoder and one submit; the loss is read back only when asked.
//! Gradients are written, not accumulated, by each step (one writer per value, no float atomics),
//! so results are the same run after run on one device. The logits exist one vocabulary chunk
//! at a time (see `Layout`); an evaluation-only model keeps one block's activations, not L.

use crate::config::{ModelConfig, TrainConfig};
use crate::gpu::params::*;
use crate::gpu::{Gpu, GpuTensor, Grid, Kernel, Kernels, Program};
use std::rc::Rc;

mod adapters;
mod arena;
pub(crate) mod attention;
mod backward;
mod forward;
mod layout;
mod weights;

pub use adapters::GpuLora;
pub use arena::{pack, ArenaSpan, Packing};
pub use attention::is_flash as attention_is_flash;
pub use attention::{flash_consts, flash_invocations, flash_tiles};
pub(crate) use forward::{block_forward, embed, final_norm, Attention, Rec};
pub use layout::{Layout, VocabChunk};
pub use weights::{GpuWeights, Split};

/// What a model is built for: training keeps every layer's activations, the backward scratch,
/// gradients and moments; evaluation keeps none of that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// Marks a target that does not count in the loss (prompt tokens, padding), like PyTorch's -100.
pub const IGNORE: u32 = u32::MAX;

/// Activations of one transformer block. In evaluation every block shares one set.
#[derive(Clone)]
pub(crate) struct BlockActs<T> {
    pub ln1: T,       // (N, C)
    pub ln1_mean: T,  // (N)
    pub ln1_rstd: T,  // (N)
    pub qkv: T,       // (N, 3C)
    pub atty: T,      // (N, C)
    pub att: T,       // (B, NH, T): log-sum-exp of each row's scores, or (B, NH, T, T), see attention.rs
    pub residual2: T, // (N, C)
    pub ln2: T,       // (N, C)
    pub ln2_mean: T,  // (N)
    pub ln2_rstd: T,  // (N)
    pub fch: T,       // (N, 4C)
    pub fch_gelu: T,  // (N, 4C)
    pub residual3: T, // (N, C)
}

/// Buffers shared by all layers: inputs, the head's outputs and the loss.
pub(crate) struct Shared<T> {
    pub tokens: T,   // (N)
    pub targets: T,  // (N), IGNORE where the target does not count
    pub encoded: T,  // (N, C)
    pub lnf: T,      // (N, C)
    pub lnf_mean: T, // (N)
    pub lnf_rstd: T, // (N)
    pub logits: T,   // (N, widest vocabulary chunk); holds dlogits in the backward pass
    pub stats: T,    // (N, 3): softmax max, sum and target logit per row
    pub losses: T,   // (N): each row's loss
    pub loss: T,     // (2): mean loss, dloss
    pub eval_sum: T, // (2): summed loss and count over evaluation batches
    pub no_bias: T,  // (1)
}

/// The backward pass's scratch, training only.
pub(crate) struct Scratch<T> {
    pub buckets: T,   // (1 + N + N+1 + N), see encoder_backward_wte.wgsl
    pub dresidual: T, // (N, C)
    pub dln: T,       // (N, C)
    pub datty: T,     // (N, C)
    pub dqkv: T,      // (N, 3C)
    pub dpreatt: T,   // (B, NH, T) deltas, or (B, NH, T, T) score gradients, see attention.rs
    pub dfch_gelu: T, // (N, 4C)
    pub dfch: T,      // (N, 4C)
    pub partials: T,  // (slots): grad-norm partial sums
    pub split: T,     // (N, C) words: partial products of weight gradients split over K
    pub norm: T,      // (4): global grad norm, clip scale, skip this step, steps skipped so far
}

pub(crate) struct Acts<T> {
    pub blocks: Vec<BlockActs<T>>,
    pub s: Shared<T>,
    pub scratch: Option<Scratch<T>>,
}

/// Describes (and, with a GPU allocator, allocates) every activation buffer of a model: the one
/// list that both allocation and the memory plan read. `alloc(label, words)`.
pub(crate) fn describe_acts<T: Clone>(
    alloc: &mut impl FnMut(&str, usize) -> T,
    cfg: &ModelConfig,
    b: usize,
    t: usize,
    mode: Mode,
    layout: &Layout,
) -> Acts<T> {
    let (c, n) = (cfg.n_embd, b * t);
    let blocks = match mode {
        Mode::Train => (0..cfg.n_layer).map(|_| block_acts(alloc, cfg, b, t)).collect(),
        Mode::Eval => vec![block_acts(alloc, cfg, b, t); cfg.n_layer],
    };
    let s = Shared {
        tokens: alloc("tokens", n),
        targets: alloc("targets", n),
        encoded: alloc("encoded", n * c),
        lnf: alloc("lnf", n * c),
        lnf_mean: alloc("lnf_mean", n),
        lnf_rstd: alloc("lnf_rstd", n),
        logits: alloc("logits chunk", n * layout.widest_chunk(cfg.vocab_size, c, n)),
        stats: alloc("softmax stats", n * 3),
        losses: alloc("losses", n),
        loss: alloc("loss", 2),
        eval_sum: alloc("eval_sum", 2),
        no_bias: alloc("no_bias", 1),
    };
    let nh = cfg.n_head;
    let scratch = (mode == Mode::Train).then(|| Scratch {
        buckets: alloc("buckets", 3 * n + 2),
        dresidual: alloc("dresidual", n * c),
        dln: alloc("dln", n * c),
        datty: alloc("datty", n * c),
        dqkv: alloc("dqkv", n * 3 * c),
        dpreatt: alloc("attention scratch", attention::kept_words(b, nh, t, c / nh).1),
        dfch_gelu: alloc("dfch_gelu", n * 4 * c),
        dfch: alloc("dfch", n * 4 * c),
        partials: alloc("grad_norm_partials", grad_norm_partials(cfg, layout)),
        split: alloc("split-K partials", crate::gpu::split_scratch_words(n, c)),
        norm: alloc("grad_norm", 4),
    });
    Acts { blocks, s, scratch }
}

pub(crate) fn block_acts<T>(
    alloc: &mut impl FnMut(&str, usize) -> T,
    cfg: &ModelConfig,
    b: usize,
    t: usize,
) -> BlockActs<T> {
    let (c, nh, n) = (cfg.n_embd, cfg.n_head, b * t);
    let (kept, _) = attention::kept_words(b, nh, t, c / nh);
    BlockActs {
        ln1: alloc("ln1", n * c),
        ln1_mean: alloc("ln1_mean", n),
        ln1_rstd: alloc("ln1_rstd", n),
        qkv: alloc("qkv", n * 3 * c),
        atty: alloc("atty", n * c),
        att: alloc("att", kept),
        residual2: alloc("residual2", n * c),
        ln2: alloc("ln2", n * c),
        ln2_mean: alloc("ln2_mean", n),
        ln2_rstd: alloc("ln2_rstd", n),
        fch: alloc("fch", n * 4 * c),
        fch_gelu: alloc("fch_gelu", n * 4 * c),
        residual3: alloc("residual3", n * c),
    }
}

/// Gradients and AdamW moments of what trains (every weight, or only the LoRA adapters),
/// training only.
pub(crate) struct TrainBufs {
    pub grads: GpuWeights,
    pub m: GpuWeights,
    pub v: GpuWeights,
    step_uniform: wgpu::Buffer,
    backward: Program,
    optimizer: Program,
}

pub struct GpuGpt {
    pub cfg: ModelConfig,
    /// Batch rows and sequence length the programs were recorded for.
    pub b: usize,
    pub t: usize,
    pub mode: Mode,
    pub weights: Rc<GpuWeights>,
    kernels: Rc<Kernels>,
    acts: Acts<GpuTensor>,
    chunks: Vec<VocabChunk>,
    train: Option<TrainBufs>,
    /// LoRA adapters, when they are what trains (the weights are then frozen).
    pub lora: Option<GpuLora>,
    forward: Program,
    loss: Program,
    eval: Program,
    /// Read-back of a log step: the loss and dloss (`loss`), then, when training, `norm`.
    loss_staging: wgpu::Buffer,
    /// Steps whose update was skipped (loss or gradient norm not finite), as of the last step
    /// that read its loss back.
    skipped: std::cell::Cell<u64>,
    /// Queue submits and bytes read back so far, for benchmarks: (submits, bytes).
    pub traffic: std::cell::Cell<(u64, u64)>,
}

impl GpuGpt {
    /// A training model: uploads `params` (one Vec per `param_table` entry) and records every
    /// program for batches of `b` rows of `t` tokens. Fails with a one-line reason when the
    /// shape does not fit the adapter's limits.
    pub fn new(
        gpu: &Gpu,
        cfg: ModelConfig,
        params: &[Vec<f32>],
        b: usize,
        t: usize,
        train: &TrainConfig,
    ) -> Result<GpuGpt, String> {
        GpuGpt::build(gpu, cfg, params, b, t, Some(train), Layout::for_limits(&gpu.limits))
    }

    /// A forward-only model for evaluation: no gradients, moments or backward scratch, and one
    /// block's activations shared by all layers.
    pub fn for_eval(gpu: &Gpu, cfg: ModelConfig, params: &[Vec<f32>], b: usize, t: usize) -> Result<GpuGpt, String> {
        GpuGpt::build(gpu, cfg, params, b, t, None, Layout::for_limits(&gpu.limits))
    }

    /// Either model under an explicit `layout` (tests use small ones to split tensors and
    /// chunk the vocabulary on small models). `train` None builds an evaluation model.
    pub fn build(
        gpu: &Gpu,
        cfg: ModelConfig,
        params: &[Vec<f32>],
        b: usize,
        t: usize,
        train: Option<&TrainConfig>,
        layout: Layout,
    ) -> Result<GpuGpt, String> {
        cfg.validate()?;
        let mode = if train.is_some() { Mode::Train } else { Mode::Eval };
        crate::plan::MemoryPlan::new(&cfg, b, t, mode, &layout).check(&gpu.limits)?;
        let weights = Rc::new(GpuWeights::upload(gpu, cfg, layout, params)?);
        GpuGpt::on_weights(gpu, weights, b, t, train)
    }

    /// A model over weights already on the GPU (shared with a generator, say).
    pub fn on_weights(
        gpu: &Gpu,
        weights: Rc<GpuWeights>,
        b: usize,
        t: usize,
        train: Option<&TrainConfig>,
    ) -> Result<GpuGpt, String> {
        let (cfg, layout) = (weights.cfg, weights.layout);
        let mode = if train.is_some() { Mode::Train } else { Mode::Eval };
        crate::plan::MemoryPlan::new(&cfg, b, t, mode, &layout).check(&gpu.limits)?;
        let acts = describe_acts(&mut |label: &str, len| GpuTensor::zeros(gpu, label, len), &cfg, b, t, mode, &layout);
        let loss_staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("loss read-back"),
            size: 8 + 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut model = GpuGpt {
            cfg,
            b,
            t,
            mode,
            weights,
            kernels: gpu.kernels(),
            acts,
            chunks: layout.vocab_chunks(cfg.vocab_size, cfg.n_embd, b * t),
            train: None,
            lora: None,
            forward: Program::default(),
            loss: Program::default(),
            eval: Program::default(),
            loss_staging,
            skipped: std::cell::Cell::new(0),
            traffic: std::cell::Cell::new((0, 0)),
        };
        if let Some(lora) = train.and_then(|t| t.lora.map(|l| (l, t.seed))) {
            let (l, seed) = lora;
            let init = crate::lora::init_adapters(&cfg, &l, seed);
            model.lora = Some(GpuLora::new(gpu, cfg, layout, l, &init, b * t)?);
        }
        model.forward = model.record_forward(gpu);
        model.loss = model.record_loss(gpu, false);
        model.eval = model.record_loss(gpu, true);
        if let Some(train) = train {
            let table = model.trainable().table.clone();
            let zeros = |prefix| GpuWeights::zeros_table(gpu, cfg, table.clone(), layout, prefix);
            let (grads, m, v) = (zeros("d"), zeros("m."), zeros("v."));
            let step_uniform = crate::gpu::uniform(gpu, "adamw step", &[0; 4]);
            let backward = model.record_backward(gpu, &grads);
            let optimizer = model.record_optimizer(gpu, train, &grads, &m, &v, &step_uniform);
            model.train = Some(TrainBufs { grads, m, v, step_uniform, backward, optimizer });
        }
        Ok(model)
    }

    /// Number of positions in one batch.
    pub fn rows(&self) -> usize {
        self.b * self.t
    }

    /// What the optimiser updates: the adapters when training LoRA, else the weights.
    pub fn trainable(&self) -> &GpuWeights {
        self.lora.as_ref().map_or(&*self.weights, |l| &l.weights)
    }

    /// The adapters' tensors, read back (None without LoRA). Sync point.
    pub async fn read_adapters(&self, gpu: &Gpu) -> Result<Option<Vec<Vec<f32>>>, String> {
        match &self.lora {
            Some(l) => Ok(Some(l.weights.read(gpu).await?)),
            None => Ok(None),
        }
    }

    /// Replaces the adapters' values (resuming a LoRA run, or tests).
    pub fn write_adapters(&self, gpu: &Gpu, adapters: &[Vec<f32>]) -> Result<(), String> {
        let l = self.lora.as_ref().ok_or("this model trains no adapters")?;
        if adapters.len() != l.weights.tensors.len() {
            return Err("the adapters do not match the model".into());
        }
        l.weights.write(gpu, adapters);
        Ok(())
    }

    fn trainer(&self) -> Result<&TrainBufs, String> {
        self.train.as_ref().ok_or_else(|| "this model was built for evaluation only".to_string())
    }

    /// Writes one batch of inputs and targets, each (B, T) (a target of `IGNORE` does not
    /// count), and, when training, the token buckets the embedding backward needs. Queued: it
    /// lands before the next submit.
    pub fn upload_batch(&self, gpu: &Gpu, tokens: &[u32], targets: &[u32]) {
        assert_eq!(tokens.len(), self.rows());
        assert_eq!(targets.len(), self.rows());
        self.acts.s.tokens.write_u32(gpu, tokens);
        self.acts.s.targets.write_u32(gpu, targets);
        if let Some(scratch) = &self.acts.scratch {
            scratch.buckets.write_u32(gpu, &token_buckets(tokens));
        }
    }

    /// One training step on the uploaded batch: forward, loss, backward, clipping and AdamW,
    /// one encoder and one submit. `step` counts from 1. Returns the batch loss only when
    /// `read_loss` is set; that read-back is the step's only sync point.
    pub async fn train_step(
        &self,
        gpu: &Gpu,
        step: usize,
        lr: f32,
        train: &TrainConfig,
        read_loss: bool,
    ) -> Result<Option<f32>, String> {
        let tb = self.trainer()?;
        let bc1 = 1.0 - (train.beta1 as f64).powi(step as i32);
        let bc2 = 1.0 - (train.beta2 as f64).powi(step as i32);
        let words = [lr.to_bits(), (bc1 as f32).to_bits(), (bc2 as f32).to_bits(), 0];
        gpu.queue.write_buffer(&tb.step_uniform, 0, bytemuck::cast_slice(&words));
        self.submit(gpu, &[&self.forward, &self.loss, &tb.backward, &tb.optimizer], read_loss).await
    }

    /// Steps so far whose update was skipped because their loss or gradient norm was not
    /// finite (nothing of them reached the weights or the AdamW moments), as of the last step
    /// that read its loss back.
    pub fn skipped_steps(&self) -> u64 {
        self.skipped.get()
    }

    /// Forward, loss and backward without an optimiser step: gradients land in `grads`.
    pub async fn forward_backward(&self, gpu: &Gpu) -> Result<f32, String> {
        let tb = self.trainer()?;
        let loss = self.submit(gpu, &[&self.forward, &self.loss, &tb.backward], true).await?;
        loss.ok_or_else(|| "no loss was read back".into())
    }

    /// The loss of the uploaded batch and each row's loss (0 where the target is ignored).
    /// Sync point.
    pub async fn row_losses(&self, gpu: &Gpu) -> Result<(f32, Vec<f32>), String> {
        let loss = self.submit(gpu, &[&self.forward, &self.loss], true).await?.unwrap_or(f32::NAN);
        Ok((loss, self.acts.s.losses.read_f32(gpu).await?))
    }

    /// All (N, V) logits of the uploaded batch, gathered chunk by chunk (one read-back each):
    /// for tests and small models, never the training path.
    pub async fn logits(&self, gpu: &Gpu) -> Result<Vec<f32>, String> {
        let (n, v) = (self.rows(), self.cfg.vocab_size);
        self.submit(gpu, &[&self.forward], false).await?;
        let mut out = vec![0.0; n * v];
        for chunk in &self.chunks {
            let mut r = Rec::new(gpu, &self.kernels, self.acts.s.no_bias.bind());
            forward::lm_head_chunk(&mut r, &self.weights, &self.acts.s.logits, &self.acts.s.lnf, chunk, n);
            r.prog.submit(gpu);
            let part = self.acts.s.logits.read_f32(gpu).await?;
            for row in 0..n {
                let src = &part[row * chunk.width..(row + 1) * chunk.width];
                out[row * v + chunk.v0..row * v + chunk.v0 + chunk.width].copy_from_slice(src);
            }
        }
        Ok(out)
    }

    /// Mean loss over several batches of (inputs, targets), over the targets that count; read
    /// back once at the end.
    pub async fn eval_loss(&self, gpu: &Gpu, batches: &[(Vec<u32>, Vec<u32>)]) -> Result<f32, String> {
        let (sum, count) = self.eval_sum(gpu, batches).await?;
        Ok(if count > 0.0 { (sum / count) as f32 } else { f32::NAN })
    }

    /// Summed loss and the number of targets that count, over several batches. Sync point.
    pub async fn eval_sum(&self, gpu: &Gpu, batches: &[(Vec<u32>, Vec<u32>)]) -> Result<(f64, f64), String> {
        self.acts.s.eval_sum.write_f32(gpu, &[0.0; 2]);
        for (i, (tokens, targets)) in batches.iter().enumerate() {
            self.upload_batch(gpu, tokens, targets);
            self.submit(gpu, &[&self.forward, &self.eval], false).await?;
            // Sync point every few batches: natively, a submission's resources are released only
            // when the device is polled, so a long text would otherwise grow memory without end
            // (in a browser this poll does nothing; the browser releases them itself).
            if i % 8 == 7 {
                gpu.wait();
            }
        }
        // Sync point: the summed loss of every batch.
        let s = self.acts.s.eval_sum.read_f32(gpu).await?;
        Ok((s[0] as f64, s[1] as f64))
    }

    async fn submit(&self, gpu: &Gpu, programs: &[&Program], read_loss: bool) -> Result<Option<f32>, String> {
        let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("step") });
        for p in programs {
            p.encode(&mut encoder);
        }
        if read_loss {
            self.acts.s.loss.copy_out(&mut encoder, &self.loss_staging, 0, 8);
            if let Some(scratch) = &self.acts.scratch {
                scratch.norm.copy_out(&mut encoder, &self.loss_staging, 8, 16);
            }
        }
        gpu.queue.submit([encoder.finish()]);
        let (submits, bytes) = self.traffic.get();
        self.traffic.set((submits + 1, bytes + if read_loss { self.loss_staging.size() } else { 0 }));
        if !read_loss {
            return Ok(None);
        }
        // Sync point: the loss of this step.
        let bytes = crate::gpu::map_and_read(gpu, &self.loss_staging).await?;
        let words: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        if self.acts.scratch.is_some() {
            self.skipped.set(words.get(5).copied().unwrap_or(0.0) as u64);
        }
        Ok(words.first().copied())
    }

    /// One training step with every kernel timed (timestamp queries); None where the adapter
    /// has none. With `optimizer` the parameters are updated, as in a real step; without it the
    /// model is left as it was (only gradients change).
    pub async fn profile_step(&self, gpu: &Gpu, optimizer: bool) -> Result<Option<Vec<(Kernel, f64)>>, String> {
        let tb = self.trainer()?;
        let all = [&self.forward, &self.loss, &tb.backward, &tb.optimizer];
        let programs = if optimizer { &all[..] } else { &all[..3] };
        crate::gpu::profile(gpu, programs).await
    }

    /// The kernels the backward pass launches, in order (which products were split, say).
    pub fn backward_kernels(&self) -> Result<Vec<Kernel>, String> {
        Ok(self.trainer()?.backward.dispatches.iter().map(|d| d.kernel).collect())
    }

    pub async fn read_params(&self, gpu: &Gpu) -> Result<Vec<Vec<f32>>, String> {
        self.weights.read(gpu).await
    }

    pub async fn read_grads(&self, gpu: &Gpu) -> Result<Vec<Vec<f32>>, String> {
        self.trainer()?.grads.read(gpu).await
    }

    pub async fn read_adam_state(&self, gpu: &Gpu) -> Result<(Vec<Vec<f32>>, Vec<Vec<f32>>), String> {
        let tb = self.trainer()?;
        Ok((tb.m.read(gpu).await?, tb.v.read(gpu).await?))
    }

    /// Restores AdamW moments saved by `read_adam_state` (resuming a run).
    pub fn write_adam_state(&self, gpu: &Gpu, m: &[Vec<f32>], v: &[Vec<f32>]) -> Result<(), String> {
        let tb = self.trainer()?;
        tb.m.write(gpu, m);
        tb.v.write(gpu, v);
        Ok(())
    }

    fn rec<'a>(&'a self, gpu: &'a Gpu) -> Rec<'a> {
        Rec::new(gpu, &self.kernels, self.acts.s.no_bias.bind())
    }

    /// Embeddings, every block, the final norm and the LM head's softmax statistics, chunk by
    /// chunk (the last chunk's logits stay in `logits` for the backward pass).
    fn record_forward(&self, gpu: &Gpu) -> Program {
        let (s, w, n) = (&self.acts.s, &*self.weights, self.rows());
        let mut r = self.rec(gpu);
        embed(&mut r, w, &s.encoded, &s.tokens, self.b, self.t);
        let attention = Attention::Full { b: self.b, t: self.t };
        for (l, a) in self.acts.blocks.iter().enumerate() {
            let input = if l == 0 { &s.encoded } else { &self.acts.blocks[l - 1].residual3 };
            block_forward(&mut r, w, l, input, a, n, &attention, self.lora.as_ref());
        }
        let last = &self.acts.blocks[self.cfg.n_layer - 1].residual3;
        final_norm(&mut r, w, (&s.lnf, &s.lnf_mean, &s.lnf_rstd), last, n);
        for (i, chunk) in self.chunks.iter().enumerate() {
            forward::lm_head_chunk(&mut r, w, &s.logits, &s.lnf, chunk, n);
            forward::classifier_stats(&mut r, &s.stats, &s.logits, &s.targets, chunk, i == 0, n);
        }
        r.prog
    }

    /// Each row's loss from the softmax statistics, and their mean into `loss`, or added into
    /// `eval_sum` with the count.
    fn record_loss(&self, gpu: &Gpu, accumulate: bool) -> Program {
        let (s, n) = (&self.acts.s, self.rows());
        let mut r = self.rec(gpu);
        let out = if accumulate { &s.eval_sum } else { &s.loss };
        let params = ClassifierLossParams { n: u(n), accumulate: accumulate as u32 };
        let bufs = [out.bind(), s.losses.bind(), s.stats.bind(), s.targets.bind()];
        r.push(Kernel::ClassifierLoss, params, &bufs, Grid::Tiles([1, 1, 1]));
        r.prog
    }

    fn record_optimizer(
        &self,
        gpu: &Gpu,
        train: &TrainConfig,
        grads: &GpuWeights,
        m: &GpuWeights,
        v: &GpuWeights,
        step_uniform: &wgpu::Buffer,
    ) -> Program {
        let scratch = self.acts.scratch.as_ref().expect("training buffers");
        let mut r = self.rec(gpu);
        let params_w = self.trainable();
        // One partial sum per workgroup, each arena with its own run of slots, so every slot
        // has one writer and grad_norm_finalize adds them in a fixed order.
        let per_arena = (scratch.partials.len / grads.arenas.len()).min(NORM_GROUPS_MAX);
        for (k, (g, span)) in grads.arenas.iter().enumerate() {
            let groups = span.words.div_ceil(256 * 16).clamp(1, per_arena);
            let params = GradNormPartialParams { numel: u(span.words), slot: u(k * per_arena) };
            r.push(
                Kernel::GradNormPartial,
                params,
                &[scratch.partials.bind(), g.bind()],
                Grid::Tiles([u(groups), 1, 1]),
            );
        }
        let params = GradNormFinalizeParams { count: u(scratch.partials.len), max_norm: train.grad_clip };
        r.push(
            Kernel::GradNormFinalize,
            params,
            &[scratch.norm.bind(), scratch.partials.bind(), self.acts.s.loss.bind()],
            Grid::Tiles([1, 1, 1]),
        );
        // One AdamW dispatch per arena, over every tensor in it.
        for (k, (p, span)) in params_w.arenas.iter().enumerate() {
            let params = AdamwParams {
                words: u(span.words),
                decayed: u(span.decayed),
                weight_decay: train.weight_decay,
                beta1: train.beta1,
                beta2: train.beta2,
                eps: train.eps,
            };
            let (g, mm, vv) = (&grads.arenas[k].0, &m.arenas[k].0, &v.arenas[k].0);
            let bufs = [step_uniform.into(), p.bind(), g.bind(), mm.bind(), vv.bind(), scratch.norm.bind()];
            r.push(Kernel::AdamwUpdate, params, &bufs, Grid::Threads(span.words / 4));
        }
        r.prog
    }
}

/// The most partial sums of the grad norm one arena writes (a workgroup each).
const NORM_GROUPS_MAX: usize = 256;

/// Slots the grad-norm partial sums need: `NORM_GROUPS_MAX` for each arena of the weights
/// under the coarsest alignment an adapter may ask. LoRA adapters, packed apart, rarely need
/// more arenas; where they do, each arena takes fewer slots.
fn grad_norm_partials(cfg: &ModelConfig, layout: &Layout) -> usize {
    let arenas = pack(&crate::model::param_table(cfg), layout, arena::COARSEST_ALIGN_BYTES).arenas.len();
    NORM_GROUPS_MAX * arenas.max(1)
}

/// Groups positions by token for the embedding backward: `[count, token[N], offset[N+1],
/// position[N]]`, tokens ascending, positions ascending within each token.
pub fn token_buckets(tokens: &[u32]) -> Vec<u32> {
    let n = tokens.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by_key(|&i| (tokens[i as usize], i));
    let mut out = vec![0u32; 3 * n + 2];
    let mut count = 0usize;
    for (j, &pos) in order.iter().enumerate() {
        let tok = tokens[pos as usize];
        if j == 0 || tokens[order[j - 1] as usize] != tok {
            out[1 + count] = tok;
            out[1 + n + count] = j as u32;
            count += 1;
        }
        out[1 + n + n + 1 + j] = pos;
    }
    out[0] = count as u32;
    out[1 + n + count] = n as u32;
    out
}
