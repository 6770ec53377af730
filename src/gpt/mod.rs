//! GPT-2 on the GPU: every buffer the model needs, and its forward, loss, backward and AdamW
//! programs, recorded once and replayed each step.
//!
//! Legend: B batch, T time, C channels, NH heads, V vocabulary, L layers, N = B*T rows.
//! A training step is one command encoder and one submit; the loss is read back only when asked.
//! Gradients are written, not accumulated, by each step (one writer per value, no float atomics),
//! so results are the same run after run on one device.

use crate::config::{ModelConfig, TrainConfig};
use crate::gpu::{grid_1d, Gpu, GpuTensor, Kernel, Kernels, Program};
use crate::model::{block_params, ln_f, param_table, ParamSpec, WPE, WTE};
use crate::plan::MemoryPlan;

mod backward;

/// Activations of one transformer block, kept for the backward pass.
struct BlockActs {
    ln1: GpuTensor,       // (N, C)
    ln1_mean: GpuTensor,  // (N)
    ln1_rstd: GpuTensor,  // (N)
    qkv: GpuTensor,       // (N, 3C)
    atty: GpuTensor,      // (N, C)
    att: GpuTensor,       // (B, NH, T, T)
    residual2: GpuTensor, // (N, C)
    ln2: GpuTensor,       // (N, C)
    ln2_mean: GpuTensor,  // (N)
    ln2_rstd: GpuTensor,  // (N)
    fch: GpuTensor,       // (N, 4C)
    fch_gelu: GpuTensor,  // (N, 4C)
    residual3: GpuTensor, // (N, C)
}

/// Buffers shared by all layers: inputs, outputs and the backward pass's scratch.
struct Shared {
    tokens: GpuTensor,    // (N)
    targets: GpuTensor,   // (N)
    buckets: GpuTensor,   // (1 + N + N+1 + N), see encoder_backward_wte.wgsl
    encoded: GpuTensor,   // (N, C)
    proj: GpuTensor,      // (N, C): attention or MLP projection before the residual add
    lnf: GpuTensor,       // (N, C)
    lnf_mean: GpuTensor,  // (N)
    lnf_rstd: GpuTensor,  // (N)
    logits: GpuTensor,    // (N, V); holds dlogits after the loss kernel
    losses: GpuTensor,    // (N)
    loss: GpuTensor,      // (1)
    eval_sum: GpuTensor,  // (1)
    dresidual: GpuTensor, // (N, C)
    dln: GpuTensor,       // (N, C)
    datty: GpuTensor,     // (N, C)
    dqkv: GpuTensor,      // (N, 3C)
    dpreatt: GpuTensor,   // (B, NH, T, T)
    dfch_gelu: GpuTensor, // (N, 4C)
    dfch: GpuTensor,      // (N, 4C)
    partials: GpuTensor,  // (slots): grad-norm partial sums
    norm: GpuTensor,      // (2): global grad norm, clip scale
    no_bias: GpuTensor,   // (1): bound where a matmul has no bias
}

pub struct GpuGpt {
    pub cfg: ModelConfig,
    /// Batch rows and sequence length the programs were recorded for.
    pub b: usize,
    pub t: usize,
    pub table: Vec<ParamSpec>,
    pub params: Vec<GpuTensor>,
    pub grads: Vec<GpuTensor>,
    pub adam_m: Vec<GpuTensor>,
    pub adam_v: Vec<GpuTensor>,
    kernels: std::rc::Rc<Kernels>,
    step_uniform: wgpu::Buffer,
    blocks: Vec<BlockActs>,
    s: Shared,
    forward: Program,
    loss: Program,
    eval: Program,
    backward: Program,
    optimizer: Program,
    loss_staging: wgpu::Buffer,
    /// Queue submits and bytes read back so far, for benchmarks: (submits, bytes).
    pub traffic: std::cell::Cell<(u64, u64)>,
}

impl GpuGpt {
    /// Uploads `params` (one Vec per `param_table` entry) and records every program for batches
    /// of `b` rows of `t` tokens. Fails with a one-line reason when the shape does not fit the
    /// adapter's limits.
    pub fn new(
        gpu: &Gpu,
        cfg: ModelConfig,
        params: &[Vec<f32>],
        b: usize,
        t: usize,
        train: &TrainConfig,
    ) -> Result<GpuGpt, String> {
        cfg.validate()?;
        MemoryPlan::new(&cfg, b, t).check(&gpu.limits)?;
        let table = param_table(&cfg);
        if params.len() != table.len() {
            return Err(format!("expected {} parameter tensors, got {}", table.len(), params.len()));
        }
        for (spec, p) in table.iter().zip(params) {
            if p.len() != spec.numel() {
                return Err(format!("{} has {} values, expected {:?}", spec.name, p.len(), spec.shape));
            }
        }
        let dev = |name: &str, prefix: &str, len: usize| GpuTensor::zeros(gpu, &format!("{prefix}{name}"), len);
        let gparams: Vec<_> = table.iter().zip(params).map(|(s, p)| GpuTensor::from_f32(gpu, &s.name, p)).collect();
        let grads: Vec<_> = table.iter().map(|s| dev(&s.name, "d", s.numel())).collect();
        let adam_m: Vec<_> = table.iter().map(|s| dev(&s.name, "m.", s.numel())).collect();
        let adam_v: Vec<_> = table.iter().map(|s| dev(&s.name, "v.", s.numel())).collect();

        let (c, v, nh, n) = (cfg.n_embd, cfg.vocab_size, cfg.n_head, b * t);
        let z = |label: &str, len: usize| GpuTensor::zeros(gpu, label, len);
        let blocks = (0..cfg.n_layer)
            .map(|_| BlockActs {
                ln1: z("ln1", n * c),
                ln1_mean: z("ln1_mean", n),
                ln1_rstd: z("ln1_rstd", n),
                qkv: z("qkv", n * 3 * c),
                atty: z("atty", n * c),
                att: z("att", b * nh * t * t),
                residual2: z("residual2", n * c),
                ln2: z("ln2", n * c),
                ln2_mean: z("ln2_mean", n),
                ln2_rstd: z("ln2_rstd", n),
                fch: z("fch", n * 4 * c),
                fch_gelu: z("fch_gelu", n * 4 * c),
                residual3: z("residual3", n * c),
            })
            .collect();
        let slots = grad_norm_slots(&table);
        let s = Shared {
            tokens: z("tokens", n),
            targets: z("targets", n),
            buckets: z("buckets", 3 * n + 2),
            encoded: z("encoded", n * c),
            proj: z("proj", n * c),
            lnf: z("lnf", n * c),
            lnf_mean: z("lnf_mean", n),
            lnf_rstd: z("lnf_rstd", n),
            logits: z("logits", n * v),
            losses: z("losses", n),
            loss: z("loss", 1),
            eval_sum: z("eval_sum", 1),
            dresidual: z("dresidual", n * c),
            dln: z("dln", n * c),
            datty: z("datty", n * c),
            dqkv: z("dqkv", n * 3 * c),
            dpreatt: z("dpreatt", b * nh * t * t),
            dfch_gelu: z("dfch_gelu", n * 4 * c),
            dfch: z("dfch", n * 4 * c),
            partials: z("grad_norm_partials", slots.iter().map(|(_, g)| *g as usize).sum()),
            norm: z("grad_norm", 2),
            no_bias: z("no_bias", 1),
        };
        let step_uniform = crate::gpu::uniform(gpu, "adamw step", &[0; 4]);
        let loss_staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("loss read-back"),
            size: 4,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut model = GpuGpt {
            cfg,
            b,
            t,
            table,
            params: gparams,
            grads,
            adam_m,
            adam_v,
            kernels: gpu.kernels(),
            step_uniform,
            blocks,
            s,
            forward: Program::default(),
            loss: Program::default(),
            eval: Program::default(),
            backward: Program::default(),
            optimizer: Program::default(),
            loss_staging,
            traffic: std::cell::Cell::new((0, 0)),
        };
        model.forward = model.record_forward(gpu);
        model.loss = model.record_loss(gpu, false);
        model.eval = model.record_loss(gpu, true);
        model.backward = model.record_backward(gpu);
        model.optimizer = model.record_optimizer(gpu, train, &slots);
        Ok(model)
    }

    /// Number of positions in one batch.
    pub fn rows(&self) -> usize {
        self.b * self.t
    }

    /// Writes one batch of inputs and targets, each (B, T), and the token buckets the embedding
    /// backward needs. Queued: it lands before the next submit.
    pub fn upload_batch(&self, gpu: &Gpu, tokens: &[u32], targets: &[u32]) {
        assert_eq!(tokens.len(), self.rows());
        assert_eq!(targets.len(), self.rows());
        self.s.tokens.write_u32(gpu, tokens);
        self.s.targets.write_u32(gpu, targets);
        self.s.buckets.write_u32(gpu, &token_buckets(tokens));
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
    ) -> Option<f32> {
        let bc1 = 1.0 - (train.beta1 as f64).powi(step as i32);
        let bc2 = 1.0 - (train.beta2 as f64).powi(step as i32);
        let words = [lr.to_bits(), (bc1 as f32).to_bits(), (bc2 as f32).to_bits(), 0];
        gpu.queue.write_buffer(&self.step_uniform, 0, bytemuck::cast_slice(&words));
        self.submit(gpu, &[&self.forward, &self.loss, &self.backward, &self.optimizer], read_loss).await
    }

    /// Forward, loss and backward without an optimiser step: gradients land in `grads`.
    pub async fn forward_backward(&self, gpu: &Gpu) -> f32 {
        self.submit(gpu, &[&self.forward, &self.loss, &self.backward], true).await.unwrap_or(f32::NAN)
    }

    /// Forward only: the logits of the uploaded batch land in the logits buffer.
    pub async fn forward_logits(&self, gpu: &Gpu) -> Vec<f32> {
        self.submit(gpu, &[&self.forward], false).await;
        self.s.logits.read_f32(gpu).await
    }

    /// Mean loss over several batches, read back once at the end.
    pub async fn eval_loss(&self, gpu: &Gpu, batches: &[(Vec<u32>, Vec<u32>)]) -> f32 {
        if batches.is_empty() {
            return f32::NAN;
        }
        gpu.queue.write_buffer(&self.s.eval_sum.buffer, 0, bytemuck::cast_slice(&[0f32]));
        for (tokens, targets) in batches {
            self.upload_batch(gpu, tokens, targets);
            self.submit(gpu, &[&self.forward, &self.eval], false).await;
        }
        // Sync point: the summed loss of every batch.
        self.s.eval_sum.read_f32(gpu).await[0] / batches.len() as f32
    }

    async fn submit(&self, gpu: &Gpu, programs: &[&Program], read_loss: bool) -> Option<f32> {
        let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("step") });
        if programs.iter().any(|p| std::ptr::eq(*p, &self.backward)) {
            // The layernorm backward kernels add into the residual gradient: start it at zero.
            encoder.clear_buffer(&self.s.dresidual.buffer, 0, None);
        }
        {
            let mut pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("step"), timestamp_writes: None });
            for p in programs {
                p.record(&self.kernels, &mut pass);
            }
        }
        if read_loss {
            encoder.copy_buffer_to_buffer(&self.s.loss.buffer, 0, &self.loss_staging, 0, 4);
        }
        gpu.queue.submit([encoder.finish()]);
        let (submits, bytes) = self.traffic.get();
        self.traffic.set((submits + 1, bytes + if read_loss { 4 } else { 0 }));
        if !read_loss {
            return None;
        }
        // Sync point: the loss of this step.
        let bytes = crate::gpu::map_and_read(gpu, &self.loss_staging).await;
        bytemuck::try_from_bytes::<f32>(&bytes).ok().copied()
    }

    /// One training step with every kernel timed (timestamp queries); None where the adapter
    /// has none. With `optimizer` the parameters are updated, as in a real step; without it the
    /// model is left as it was (only gradients change).
    pub async fn profile_step(&self, gpu: &Gpu, optimizer: bool) -> Option<Vec<(crate::gpu::Kernel, f64)>> {
        let all = [&self.forward, &self.loss, &self.backward, &self.optimizer];
        let programs = if optimizer { &all[..] } else { &all[..3] };
        crate::gpu::profile(gpu, &self.kernels, programs, |e| e.clear_buffer(&self.s.dresidual.buffer, 0, None)).await
    }

    pub async fn read_params(&self, gpu: &Gpu) -> Vec<Vec<f32>> {
        read_all(gpu, &self.params).await
    }

    pub async fn read_grads(&self, gpu: &Gpu) -> Vec<Vec<f32>> {
        read_all(gpu, &self.grads).await
    }

    pub async fn read_adam_state(&self, gpu: &Gpu) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        (read_all(gpu, &self.adam_m).await, read_all(gpu, &self.adam_v).await)
    }

    /// Restores AdamW moments saved by `read_adam_state` (resuming a run).
    pub fn write_adam_state(&self, gpu: &Gpu, m: &[Vec<f32>], v: &[Vec<f32>]) {
        for (t, d) in self.adam_m.iter().zip(m) {
            t.write_f32(gpu, d);
        }
        for (t, d) in self.adam_v.iter().zip(v) {
            t.write_f32(gpu, d);
        }
    }

    fn record_forward(&self, gpu: &Gpu) -> Program {
        let (cfg, s, k) = (&self.cfg, &self.s, &self.kernels);
        let (b, t, c, nh, n, v) = (self.b, self.t, cfg.n_embd, cfg.n_head, self.rows(), cfg.vocab_size);
        let p = |i: usize| &self.params[i].buffer;
        let mut prog = Program::default();
        let u = |x: usize| x as u32;
        prog.push(k.dispatch(
            gpu,
            Kernel::EncoderForward,
            &[u(b), u(t), u(c)],
            &[&s.encoded.buffer, &s.tokens.buffer, p(WTE), p(WPE)],
            grid_1d((n * c).div_ceil(256)),
        ));
        for (l, a) in self.blocks.iter().enumerate() {
            let w = block_params(l);
            let res_in = if l == 0 { &s.encoded } else { &self.blocks[l - 1].residual3 };
            prog.push(k.dispatch(
                gpu,
                Kernel::LayernormForward,
                &[u(n), u(c)],
                &[&a.ln1.buffer, &a.ln1_mean.buffer, &a.ln1_rstd.buffer, &res_in.buffer, p(w.ln_1_w), p(w.ln_1_b)],
                grid_1d(n),
            ));
            prog.push(self.matmul(gpu, &a.qkv, &a.ln1, p(w.c_attn_w), Some(p(w.c_attn_b)), n, 3 * c, c, false, false));
            prog.push(k.dispatch(
                gpu,
                Kernel::AttentionForward,
                &[u(b), u(t), u(c), u(nh)],
                &[&a.atty.buffer, &a.att.buffer, &a.qkv.buffer],
                grid_1d((b * nh * t).div_ceil(64)),
            ));
            prog.push(self.matmul(
                gpu,
                &s.proj,
                &a.atty,
                p(w.attn_proj_w),
                Some(p(w.attn_proj_b)),
                n,
                c,
                c,
                false,
                false,
            ));
            prog.push(k.dispatch(
                gpu,
                Kernel::ResidualForward,
                &[u(n * c)],
                &[&a.residual2.buffer, &res_in.buffer, &s.proj.buffer],
                grid_1d((n * c).div_ceil(256)),
            ));
            prog.push(k.dispatch(
                gpu,
                Kernel::LayernormForward,
                &[u(n), u(c)],
                &[&a.ln2.buffer, &a.ln2_mean.buffer, &a.ln2_rstd.buffer, &a.residual2.buffer, p(w.ln_2_w), p(w.ln_2_b)],
                grid_1d(n),
            ));
            prog.push(self.matmul(gpu, &a.fch, &a.ln2, p(w.c_fc_w), Some(p(w.c_fc_b)), n, 4 * c, c, false, false));
            prog.push(k.dispatch(
                gpu,
                Kernel::GeluForward,
                &[u(n * 4 * c)],
                &[&a.fch_gelu.buffer, &a.fch.buffer],
                grid_1d((n * 4 * c).div_ceil(256)),
            ));
            prog.push(self.matmul(
                gpu,
                &s.proj,
                &a.fch_gelu,
                p(w.mlp_proj_w),
                Some(p(w.mlp_proj_b)),
                n,
                c,
                4 * c,
                false,
                false,
            ));
            prog.push(k.dispatch(
                gpu,
                Kernel::ResidualForward,
                &[u(n * c)],
                &[&a.residual3.buffer, &a.residual2.buffer, &s.proj.buffer],
                grid_1d((n * c).div_ceil(256)),
            ));
        }
        let last = &self.blocks[cfg.n_layer - 1].residual3;
        let f = ln_f(cfg);
        prog.push(k.dispatch(
            gpu,
            Kernel::LayernormForward,
            &[u(n), u(c)],
            &[&s.lnf.buffer, &s.lnf_mean.buffer, &s.lnf_rstd.buffer, &last.buffer, p(f), p(f + 1)],
            grid_1d(n),
        ));
        // The LM head is tied to the token embedding: logits = lnf @ wte^T.
        prog.push(self.matmul(gpu, &s.logits, &s.lnf, p(WTE), None, n, v, c, false, true));
        prog
    }

    /// Loss kernels after the forward pass: the mean loss into `loss`, or added into `eval_sum`.
    fn record_loss(&self, gpu: &Gpu, accumulate: bool) -> Program {
        let (s, k, n, v) = (&self.s, &self.kernels, self.rows(), self.cfg.vocab_size);
        let mut prog = Program::default();
        let dloss = 1.0 / n as f32;
        prog.push(k.dispatch(
            gpu,
            Kernel::CrossentropySoftmax,
            &[n as u32, v as u32, dloss.to_bits()],
            &[&s.losses.buffer, &s.logits.buffer, &s.targets.buffer],
            grid_1d(n),
        ));
        let out = if accumulate { &s.eval_sum } else { &s.loss };
        prog.push(k.dispatch(
            gpu,
            Kernel::MeanLoss,
            &[n as u32, accumulate as u32],
            &[&out.buffer, &s.losses.buffer],
            [1, 1, 1],
        ));
        prog
    }

    fn record_optimizer(&self, gpu: &Gpu, train: &TrainConfig, slots: &[(u32, u32)]) -> Program {
        let (s, k) = (&self.s, &self.kernels);
        let mut prog = Program::default();
        for (g, (slot, groups)) in self.grads.iter().zip(slots) {
            prog.push(k.dispatch(
                gpu,
                Kernel::GradNormPartial,
                &[g.len as u32, *slot],
                &[&s.partials.buffer, &g.buffer],
                [*groups, 1, 1],
            ));
        }
        prog.push(k.dispatch(
            gpu,
            Kernel::GradNormFinalize,
            &[s.partials.len as u32, train.grad_clip.to_bits()],
            &[&s.norm.buffer, &s.partials.buffer],
            [1, 1, 1],
        ));
        for (i, spec) in self.table.iter().enumerate() {
            let wd = if spec.decays() { train.weight_decay } else { 0.0 };
            let params =
                [spec.numel() as u32, wd.to_bits(), train.beta1.to_bits(), train.beta2.to_bits(), train.eps.to_bits()];
            prog.push(k.dispatch(
                gpu,
                Kernel::AdamwUpdate,
                &params,
                &[
                    &self.step_uniform,
                    &self.params[i].buffer,
                    &self.grads[i].buffer,
                    &self.adam_m[i].buffer,
                    &self.adam_v[i].buffer,
                    &s.norm.buffer,
                ],
                grid_1d(spec.numel().div_ceil(256)),
            ));
        }
        prog
    }

    /// out (M, N) = op(a) @ op(b) (+ bias); see matmul.wgsl for the layouts.
    #[allow(clippy::too_many_arguments)]
    fn matmul(
        &self,
        gpu: &Gpu,
        out: &GpuTensor,
        a: &GpuTensor,
        b: &wgpu::Buffer,
        bias: Option<&wgpu::Buffer>,
        m: usize,
        n: usize,
        k: usize,
        trans_a: bool,
        trans_b: bool,
    ) -> crate::gpu::Dispatch {
        let params = [m as u32, n as u32, k as u32, trans_a as u32, trans_b as u32, bias.is_some() as u32];
        let bias = bias.unwrap_or(&self.s.no_bias.buffer);
        self.kernels.dispatch(
            gpu,
            Kernel::Matmul,
            &params,
            &[&out.buffer, &a.buffer, b, bias],
            [n.div_ceil(64) as u32, m.div_ceil(64) as u32, 1],
        )
    }

    fn bias_backward(
        &self,
        gpu: &Gpu,
        dbias: &GpuTensor,
        dout: &GpuTensor,
        n: usize,
        oc: usize,
    ) -> crate::gpu::Dispatch {
        self.kernels.dispatch(
            gpu,
            Kernel::MatmulBackwardBias,
            &[n as u32, oc as u32],
            &[&dbias.buffer, &dout.buffer],
            [oc.div_ceil(64) as u32, 1, 1],
        )
    }
}

/// For each gradient tensor: its first slot in the partials buffer and its workgroup count.
fn grad_norm_slots(table: &[ParamSpec]) -> Vec<(u32, u32)> {
    let mut next = 0u32;
    table
        .iter()
        .map(|spec| {
            let groups = spec.numel().div_ceil(256 * 16).clamp(1, 256) as u32;
            let slot = next;
            next += groups;
            (slot, groups)
        })
        .collect()
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

async fn read_all(gpu: &Gpu, tensors: &[GpuTensor]) -> Vec<Vec<f32>> {
    let mut out = Vec::with_capacity(tensors.len());
    for t in tensors {
        out.push(t.read_f32(gpu).await);
    }
    out
}
