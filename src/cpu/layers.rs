//! The pointwise and row-wise layers of GPT-2 on the CPU: embeddings, LayerNorm, linear layers
//! (including the tied LM head), GELU and the residual add, each as a forward/backward pair.
//!
//! Plain loops, f32 throughout like the GPU kernels. Every backward *accumulates* (`+=`) into its
//! gradient buffers, because GPT-2 reuses tensors (the residual stream feeds two branches, `wte`
//! is both the embedding and the LM head); callers zero the buffers once per step.
//!
//! Legend: B batch, T time, C channels, V vocabulary, N = B*T rows, OC output channels.

use crate::config::LAYER_NORM_EPS;

/// out[b,t,:] = wte[tokens[b,t], :] + wpe[t, :]
pub fn encoder_forward(
    out: &mut [f32], // (B, T, C)
    tokens: &[u32],  // (B, T)
    wte: &[f32],     // (V, C)
    wpe: &[f32],     // (maxT, C)
    b: usize,
    t: usize,
    c: usize,
) {
    for bi in 0..b {
        for ti in 0..t {
            let row = bi * t + ti;
            let tok = tokens[row] as usize;
            let o = &mut out[row * c..(row + 1) * c];
            let e = &wte[tok * c..(tok + 1) * c];
            let p = &wpe[ti * c..(ti + 1) * c];
            for i in 0..c {
                o[i] = e[i] + p[i];
            }
        }
    }
}

/// The forward is a sum, so each output row's gradient flows unchanged to the token's row of
/// `wte` and the position's row of `wpe`. Repeated tokens add up.
pub fn encoder_backward(
    dwte: &mut [f32], // (V, C) +=
    dwpe: &mut [f32], // (maxT, C) +=
    dout: &[f32],     // (B, T, C)
    tokens: &[u32],   // (B, T)
    b: usize,
    t: usize,
    c: usize,
) {
    for bi in 0..b {
        for ti in 0..t {
            let row = bi * t + ti;
            let tok = tokens[row] as usize;
            let d = &dout[row * c..(row + 1) * c];
            for i in 0..c {
                dwte[tok * c + i] += d[i];
                dwpe[ti * c + i] += d[i];
            }
        }
    }
}

/// out = (x - mean) * rstd * weight + bias over each row of C, with the biased variance
/// (divide by C, as PyTorch's LayerNorm) and rstd = 1 / sqrt(var + eps). Saves mean and rstd
/// for the backward.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward(
    out: &mut [f32],  // (N, C)
    mean: &mut [f32], // (N)
    rstd: &mut [f32], // (N)
    inp: &[f32],      // (N, C)
    weight: &[f32],   // (C)
    bias: &[f32],     // (C)
    n: usize,
    c: usize,
) {
    for r in 0..n {
        let x = &inp[r * c..(r + 1) * c];
        let m = x.iter().sum::<f32>() / c as f32;
        // Two passes (mean first, then squared deviations) rather than E[x^2] - E[x]^2, which
        // cancels badly when the mean is large compared with the spread.
        let var = x.iter().map(|&xi| (xi - m) * (xi - m)).sum::<f32>() / c as f32;
        let s = 1.0 / (var + LAYER_NORM_EPS).sqrt();
        let o = &mut out[r * c..(r + 1) * c];
        for i in 0..c {
            o[i] = (x[i] - m) * s * weight[i] + bias[i];
        }
        mean[r] = m;
        rstd[r] = s;
    }
}

/// Forward, per row: norm = (x - mean) * rstd, out = norm * w + b.
/// With dnorm = dout * w, the gradient through the mean and the variance is
///   dx = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)),
/// and dw += dout * norm, db += dout, summed over rows.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    dinp: &mut [f32],    // (N, C) +=
    dweight: &mut [f32], // (C) +=
    dbias: &mut [f32],   // (C) +=
    dout: &[f32],        // (N, C)
    inp: &[f32],         // (N, C)
    weight: &[f32],      // (C)
    mean: &[f32],        // (N)
    rstd: &[f32],        // (N)
    n: usize,
    c: usize,
) {
    for r in 0..n {
        let x = &inp[r * c..(r + 1) * c];
        let d = &dout[r * c..(r + 1) * c];
        let (m, s) = (mean[r], rstd[r]);
        // The two row means the formula needs.
        let mut dnorm_mean = 0.0f32;
        let mut dnorm_norm_mean = 0.0f32;
        for i in 0..c {
            let norm = (x[i] - m) * s;
            let dnorm = d[i] * weight[i];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean /= c as f32;
        dnorm_norm_mean /= c as f32;
        let dx = &mut dinp[r * c..(r + 1) * c];
        for i in 0..c {
            let norm = (x[i] - m) * s;
            let dnorm = d[i] * weight[i];
            dbias[i] += d[i];
            dweight[i] += norm * d[i];
            dx[i] += s * (dnorm - dnorm_mean - norm * dnorm_norm_mean);
        }
    }
}

/// out = inp @ weight + bias, with weight in Hugging Face's Conv1D layout (C, OC): (in, out).
pub fn matmul_forward(
    out: &mut [f32],      // (N, OC)
    inp: &[f32],          // (N, C)
    weight: &[f32],       // (C, OC)
    bias: Option<&[f32]>, // (OC)
    n: usize,
    c: usize,
    oc: usize,
) {
    for r in 0..n {
        let o = &mut out[r * oc..(r + 1) * oc];
        match bias {
            Some(bias) => o.copy_from_slice(&bias[..oc]),
            None => o.fill(0.0),
        }
        // Loop over k outside j so the inner loop walks a row of weight contiguously.
        for k in 0..c {
            let a = inp[r * c + k];
            let w = &weight[k * oc..(k + 1) * oc];
            for j in 0..oc {
                o[j] += a * w[j];
            }
        }
    }
}

/// Forward: out[r,j] = sum_k inp[r,k] w[k,j] + bias[j]. So
///   dinp[r,k] += sum_j dout[r,j] w[k,j],  dweight[k,j] += sum_r inp[r,k] dout[r,j],
///   dbias[j] += sum_r dout[r,j].
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward(
    dinp: &mut [f32],          // (N, C) +=
    dweight: &mut [f32],       // (C, OC) +=
    dbias: Option<&mut [f32]>, // (OC) +=
    dout: &[f32],              // (N, OC)
    inp: &[f32],               // (N, C)
    weight: &[f32],            // (C, OC)
    n: usize,
    c: usize,
    oc: usize,
) {
    for r in 0..n {
        let d = &dout[r * oc..(r + 1) * oc];
        for k in 0..c {
            let w = &weight[k * oc..(k + 1) * oc];
            let mut sum = 0.0f32;
            for j in 0..oc {
                sum += d[j] * w[j];
            }
            dinp[r * c + k] += sum;
            let a = inp[r * c + k];
            let dw = &mut dweight[k * oc..(k + 1) * oc];
            for j in 0..oc {
                dw[j] += a * d[j];
            }
        }
    }
    if let Some(dbias) = dbias {
        for r in 0..n {
            for j in 0..oc {
                dbias[j] += dout[r * oc + j];
            }
        }
    }
}

/// The sum of a product split over K: out (=, or += with `accumulate`) the partial products
/// (S, COUNT) added in order s = 0..S (the order matmul_split_sum.wgsl adds them in).
pub fn matmul_split_sum(out: &mut [f32], partials: &[f32], accumulate: bool) {
    let count = out.len();
    for (i, o) in out.iter_mut().enumerate() {
        let sum = partials.iter().skip(i).step_by(count).fold(0.0f32, |s, &x| s + x);
        *o = if accumulate { *o + sum } else { sum };
    }
}

/// The tied LM head: logits = inp @ wte^T. Unlike `matmul_forward`, the weight is the token
/// embedding table (V, C), so each logit is a dot product of two contiguous rows; no bias.
pub fn lm_head_forward(
    logits: &mut [f32], // (N, V)
    inp: &[f32],        // (N, C)
    wte: &[f32],        // (V, C)
    n: usize,
    c: usize,
    v: usize,
) {
    for r in 0..n {
        let x = &inp[r * c..(r + 1) * c];
        for vi in 0..v {
            let e = &wte[vi * c..(vi + 1) * c];
            let mut sum = 0.0f32;
            for i in 0..c {
                sum += x[i] * e[i];
            }
            logits[r * v + vi] = sum;
        }
    }
}

/// Forward: logits[r,v] = sum_i inp[r,i] wte[v,i]. So
///   dinp[r,i] += sum_v dlogits[r,v] wte[v,i],  dwte[v,i] += sum_r dlogits[r,v] inp[r,i].
/// `dwte` is shared with `encoder_backward`: both add into it.
#[allow(clippy::too_many_arguments)]
pub fn lm_head_backward(
    dinp: &mut [f32], // (N, C) +=
    dwte: &mut [f32], // (V, C) +=
    dlogits: &[f32],  // (N, V)
    inp: &[f32],      // (N, C)
    wte: &[f32],      // (V, C)
    n: usize,
    c: usize,
    v: usize,
) {
    for r in 0..n {
        let x = &inp[r * c..(r + 1) * c];
        for vi in 0..v {
            let g = dlogits[r * v + vi];
            let e = &wte[vi * c..(vi + 1) * c];
            let de = &mut dwte[vi * c..(vi + 1) * c];
            let dx = &mut dinp[r * c..(r + 1) * c];
            for i in 0..c {
                dx[i] += g * e[i];
                de[i] += g * x[i];
            }
        }
    }
}

/// sqrt(2 / pi), the constant of GELU's tanh approximation.
const GELU_SCALE: f32 = 0.797_884_6;
const GELU_CUBIC: f32 = 0.044715;

/// GELU, tanh approximation (GPT-2's `gelu_new`): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
pub fn gelu_forward(out: &mut [f32], inp: &[f32]) {
    for (o, &x) in out.iter_mut().zip(inp) {
        let u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
        *o = 0.5 * x * (1.0 + u.tanh());
    }
}

/// With u = s (x + a x^3): d/dx [0.5 x (1 + tanh u)]
///   = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) s (1 + 3 a x^2).
pub fn gelu_backward(dinp: &mut [f32], inp: &[f32], dout: &[f32]) {
    for ((dx, &x), &d) in dinp.iter_mut().zip(inp).zip(dout) {
        let u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
        let th = u.tanh();
        let du = GELU_SCALE * (1.0 + 3.0 * GELU_CUBIC * x * x);
        let grad = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du;
        *dx += grad * d;
    }
}

/// out = inp1 + inp2. Its backward is the identity into both inputs, so it has no function of
/// its own: callers add the incoming gradient to both branches.
pub fn residual_forward(out: &mut [f32], inp1: &[f32], inp2: &[f32]) {
    for ((o, &a), &b) in out.iter_mut().zip(inp1).zip(inp2) {
        *o = a + b;
    }
}
