//! Causal multi-head self-attention on the CPU, forward and backward.
//!
//! The input is the fused output of `c_attn`, (B, T, 3C): q in channels 0..C, k in C..2C, v in
//! 2C..3C; head h owns channels h*hs..(h+1)*hs of each. The output (B, T, C) puts head h back at
//! channels h*hs.., which is what `c_proj` expects (PyTorch's transpose + view, without copies).
//! Not here: the two projections around attention, which are plain `matmul_*` calls.
//!
//! Legend: B batch, T time, C channels, NH heads, hs = C / NH head size.

/// For each (b, h, t): scores s[t2] = q_t . k_t2 / sqrt(hs) for t2 <= t (causal), probabilities
/// p = softmax(s), out_t = sum_t2 p[t2] v_t2. `att` keeps p for the backward, with zeros where
/// t2 > t so the buffer means the same thing whoever wrote it.
pub fn attention_forward(
    out: &mut [f32], // (B, T, C)
    att: &mut [f32], // (B, NH, T, T)
    inp: &[f32],     // (B, T, 3C)
    b: usize,
    t: usize,
    c: usize,
    nh: usize,
) {
    let hs = c / nh;
    let scale = 1.0 / (hs as f32).sqrt();
    let c3 = 3 * c;
    for bi in 0..b {
        for h in 0..nh {
            for ti in 0..t {
                let q = &inp[(bi * t + ti) * c3 + h * hs..][..hs];
                let row = &mut att[((bi * nh + h) * t + ti) * t..][..t];

                // Scores, remembering the largest so the exponentials cannot overflow.
                let mut max = f32::NEG_INFINITY;
                for t2 in 0..=ti {
                    let k = &inp[(bi * t + t2) * c3 + c + h * hs..][..hs];
                    let mut dot = 0.0f32;
                    for i in 0..hs {
                        dot += q[i] * k[i];
                    }
                    row[t2] = dot * scale;
                    max = max.max(row[t2]);
                }
                let mut sum = 0.0f32;
                for s in &mut row[..=ti] {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                for s in &mut row[..=ti] {
                    *s /= sum;
                }
                // The masked future: probability exactly 0.
                row[ti + 1..].fill(0.0);

                let o = &mut out[(bi * t + ti) * c + h * hs..][..hs];
                o.fill(0.0);
                for t2 in 0..=ti {
                    let v = &inp[(bi * t + t2) * c3 + 2 * c + h * hs..][..hs];
                    let p = row[t2];
                    for i in 0..hs {
                        o[i] += p * v[i];
                    }
                }
            }
        }
    }
}

/// Undoes the forward above for one (b, h, t), with g = dout_t:
///   dp[t2] = g . v_t2                          and  dv_t2 += p[t2] g
///   ds[t2] = p[t2] (dp[t2] - sum_t3 p[t3] dp[t3])   (softmax backward)
///   dq_t  += sum_t2 ds[t2] k_t2 / sqrt(hs)      and  dk_t2 += ds[t2] q_t / sqrt(hs)
/// Only the saved probabilities are needed, not the scores.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    dinp: &mut [f32], // (B, T, 3C) +=
    dout: &[f32],     // (B, T, C)
    inp: &[f32],      // (B, T, 3C)
    att: &[f32],      // (B, NH, T, T)
    b: usize,
    t: usize,
    c: usize,
    nh: usize,
) {
    let hs = c / nh;
    let scale = 1.0 / (hs as f32).sqrt();
    let c3 = 3 * c;
    // dp for one row, reused; only entries 0..=t are used.
    let mut dp = vec![0.0f32; t];
    for bi in 0..b {
        for h in 0..nh {
            for ti in 0..t {
                let p = &att[((bi * nh + h) * t + ti) * t..][..t];
                let g = &dout[(bi * t + ti) * c + h * hs..][..hs];
                let q_at = (bi * t + ti) * c3 + h * hs;

                // Through out_t = sum_t2 p[t2] v_t2.
                for t2 in 0..=ti {
                    let v_at = (bi * t + t2) * c3 + 2 * c + h * hs;
                    let mut dot = 0.0f32;
                    for i in 0..hs {
                        dot += g[i] * inp[v_at + i];
                        dinp[v_at + i] += p[t2] * g[i];
                    }
                    dp[t2] = dot;
                }

                // Through the softmax: sum_t3 p[t3] dp[t3] is shared by the whole row.
                let mut pdp = 0.0f32;
                for t2 in 0..=ti {
                    pdp += p[t2] * dp[t2];
                }

                // Through the scores s[t2] = q_t . k_t2 * scale.
                for t2 in 0..=ti {
                    let ds = p[t2] * (dp[t2] - pdp) * scale;
                    let k_at = (bi * t + t2) * c3 + c + h * hs;
                    for i in 0..hs {
                        dinp[q_at + i] += ds * inp[k_at + i];
                        dinp[k_at + i] += ds * inp[q_at + i];
                    }
                }
            }
        }
    }
}
