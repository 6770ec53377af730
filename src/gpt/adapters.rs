//! LoRA adapters on the GPU: their tensors (trained; the base weights stay frozen), the
//! activations their backward pass needs, and the dispatches that add them to a projection and
//! undo that in the backward pass (see `crate::lora` for the formulas and layouts).
//!
//! Legend: N rows, IN and OUT a projection's sizes, R the rank, s = alpha / R.

use super::forward::Rec;
use super::{GpuWeights, Layout};
use crate::config::ModelConfig;
use crate::gpu::params::*;
use crate::gpu::{Gpu, GpuTensor};
use crate::lora::{adapter_table, targets, LoraConfig, Target};

pub struct GpuLora {
    pub cfg: LoraConfig,
    /// A then B of each target, in `lora::targets` order.
    pub weights: GpuWeights,
    pub targets: Vec<Target>,
    /// Per target: u = s * (x @ A^T), (N, R), kept for B's gradient.
    u: Vec<GpuTensor>,
    /// The backward pass's g = s * (dout @ B), (N, R), one buffer reused by every target.
    g: GpuTensor,
}

impl GpuLora {
    pub fn new(
        gpu: &Gpu,
        model: ModelConfig,
        layout: Layout,
        cfg: LoraConfig,
        adapters: &[Vec<f32>],
        n: usize,
    ) -> Result<GpuLora, String> {
        cfg.validate(&model)?;
        let table = adapter_table(&model, &cfg);
        let weights = GpuWeights::zeros_table(gpu, model, table, layout, "");
        if adapters.len() != weights.table.len() {
            return Err(format!("expected {} adapter tensors, got {}", weights.table.len(), adapters.len()));
        }
        weights.write(gpu, adapters);
        let targets = targets(&model);
        let u = targets.iter().map(|_| GpuTensor::zeros(gpu, "lora u", n * cfg.rank)).collect();
        let g = GpuTensor::zeros(gpu, "lora g", n * cfg.rank);
        Ok(GpuLora { cfg, weights, targets, u, g })
    }

    /// The target adapting base table entry `weight`.
    pub fn target(&self, weight: usize) -> Option<usize> {
        self.targets.iter().position(|t| t.weight == weight)
    }

    /// out (N, OUT) += s * (x @ A^T) @ B^T, after the base projection wrote `out`.
    pub(crate) fn forward(&self, r: &mut Rec, i: usize, out: &GpuTensor, x: &GpuTensor, n: usize) {
        let (t, rank) = (&self.targets[i], self.cfg.rank);
        let (a, b) = (self.weights.buf(2 * i), self.weights.buf(2 * i + 1));
        let p = MatmulParams {
            m: u(n),
            n: u(rank),
            k: u(t.in_f),
            trans_b: 1,
            scaled: 1,
            scale: self.cfg.scale(),
            ..Default::default()
        };
        r.matmul(p, self.u[i].bind(), x.bind(), a, None, None);
        let p = MatmulParams { m: u(n), n: u(t.out_f), k: u(rank), trans_b: 1, accumulate: 1, ..Default::default() };
        r.matmul(p, out.bind(), self.u[i].bind(), b, None, None);
    }

    /// Given dout: dB = dout^T @ u, g = s * (dout @ B), dA = g^T @ x (both written), and
    /// dx += g @ A after the base projection's backward wrote dx.
    pub(crate) fn backward(
        &self,
        r: &mut Rec,
        grads: &GpuWeights,
        i: usize,
        (dx, dout): (&GpuTensor, &GpuTensor),
        x: &GpuTensor,
        n: usize,
    ) {
        let (t, rank) = (&self.targets[i], self.cfg.rank);
        let (a, b) = (self.weights.buf(2 * i), self.weights.buf(2 * i + 1));
        let (da, db) = (grads.buf(2 * i), grads.buf(2 * i + 1));
        let p = MatmulParams { m: u(t.out_f), n: u(rank), k: u(n), trans_a: 1, ..Default::default() };
        r.matmul(p, db, dout.bind(), self.u[i].bind(), None, None);
        let p = MatmulParams {
            m: u(n),
            n: u(rank),
            k: u(t.out_f),
            scaled: 1,
            scale: self.cfg.scale(),
            ..Default::default()
        };
        r.matmul(p, self.g.bind(), dout.bind(), b, None, None);
        let p = MatmulParams { m: u(rank), n: u(t.in_f), k: u(n), trans_a: 1, ..Default::default() };
        r.matmul(p, da, self.g.bind(), x.bind(), None, None);
        let p = MatmulParams { m: u(n), n: u(t.in_f), k: u(rank), accumulate: 1, ..Default::default() };
        r.matmul(p, dx.bind(), self.g.bind(), a, None, None);
    }
}
