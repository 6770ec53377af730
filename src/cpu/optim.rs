//! The optimiser's arithmetic on the CPU: global gradient norm, clipping scale, one AdamW step.
//!
//! These follow PyTorch (`torch.nn.utils.clip_grad_norm_` and `torch.optim.AdamW`, single-tensor
//! path) operation for operation, so a run can be compared with nanoGPT. Hyperparameters arrive as
//! f32 rather than Python's f64, so agreement is to float rounding, not bit for bit.
//! Not here: the learning-rate schedule (`TrainConfig::lr_at`) and which tensors decay
//! (`ParamSpec::decays`).

/// sqrt of the sum of squares over every gradient, as if they were one long vector. Summed in f64:
/// a large model has millions of terms, and the norm decides whether a step is clipped.
pub fn global_grad_norm(grads: &[&[f32]]) -> f32 {
    let mut sum = 0.0f64;
    for g in grads {
        for &x in g.iter() {
            sum += x as f64 * x as f64;
        }
    }
    sum.sqrt() as f32
}

/// The factor `clip_grad_norm_` multiplies every gradient by: max_norm / (norm + 1e-6), but only
/// when that is below 1; otherwise 1.0 (no clipping). The 1e-6 is PyTorch's guard against 0.
pub fn clip_scale(norm: f32, max_norm: f32) -> f32 {
    (max_norm / (norm + 1e-6)).min(1.0)
}

/// Whether a step may update the weights: its loss and gradient norm are both finite. A step
/// that fails this changes nothing (not the weights, not the moments) and is counted as skipped.
pub fn step_is_finite(loss: f32, grad_norm: f32) -> bool {
    loss.is_finite() && grad_norm.is_finite()
}

/// One AdamW step on one tensor; `step` counts from 1. `grad_scale` is the clipping factor from
/// `clip_scale` (1.0 for none); `wd` is 0 for tensors that do not decay.
///
/// PyTorch's order and formula, which differ from the textbook one in two places:
///   p  = p * (1 - lr*wd)                           decoupled decay, applied *before* the update
///   m  = lerp(m, g, 1 - beta1)                     = beta1 m + (1 - beta1) g
///   v  = beta2 v + (1 - beta2) g^2
///   p -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
/// so eps is added to the *bias-corrected* sqrt(v), and the decay uses the pre-update p.
#[allow(clippy::too_many_arguments)]
pub fn adamw_update(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    wd: f32,
    step: u32,
    grad_scale: f32,
) {
    // PyTorch computes these scalars in Python floats (f64) and rounds them once.
    let bias_c1 = 1.0 - (beta1 as f64).powi(step as i32);
    let bias_c2 = 1.0 - (beta2 as f64).powi(step as i32);
    let step_size = (lr as f64 / bias_c1) as f32;
    let bias_c2_sqrt = bias_c2.sqrt() as f32;
    let decay = 1.0 - lr * wd;
    for i in 0..p.len() {
        let gi = g[i] * grad_scale;
        p[i] *= decay;
        m[i] = lerp(m[i], gi, 1.0 - beta1);
        v[i] = beta2 * v[i] + (1.0 - beta2) * gi * gi;
        let denom = v[i].sqrt() / bias_c2_sqrt + eps;
        p[i] -= step_size * m[i] / denom;
    }
}

/// `torch.lerp(start, end, w)`: start + w (end - start), computed from whichever end is nearer
/// so the result is exact at w = 0 and w = 1.
fn lerp(start: f32, end: f32, w: f32) -> f32 {
    if w.abs() < 0.5 {
        start + w * (end - start)
    } else {
        end - (end - start) * (1.0 - w)
    }
}
