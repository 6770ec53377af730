//! Softmax and cross-entropy fused into one pass over each row of logits, on the CPU.
//!
//! Fused because the gradient of cross-entropy through softmax is simply (softmax - one-hot):
//! the probabilities never need to be stored. Not here: the mean over rows, which the caller
//! takes from `losses` and expresses through `dloss`.
//!
//! Legend: N = B*T rows, V vocabulary.

/// losses[r] = -log softmax(logits[r])[targets[r]] = logsumexp(logits[r]) - logits[r][target].
/// dlogits[r] = (softmax(logits[r]) - onehot(targets[r])) * dloss, written (=, not +=): nothing
/// else contributes to the logits' gradient. dloss is the same for every row (1/N for a mean).
#[allow(clippy::too_many_arguments)]
pub fn crossentropy_softmax(
    losses: &mut [f32],  // (N)
    dlogits: &mut [f32], // (N, V)
    logits: &[f32],      // (N, V)
    targets: &[u32],     // (N)
    n: usize,
    v: usize,
    dloss: f32,
) {
    for r in 0..n {
        let x = &logits[r * v..(r + 1) * v];
        let target = targets[r] as usize;
        assert!(target < v, "target {target} is outside the vocabulary of {v}");
        // Subtract the row's maximum so exp cannot overflow; it cancels in the ratio.
        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for &xi in x {
            sum += (xi - max).exp();
        }
        // log softmax[target] = x[target] - max - ln(sum), computed without forming the
        // probability, so a tiny probability does not round to 0 and give an infinite loss.
        losses[r] = -(x[target] - max - sum.ln());
        let d = &mut dlogits[r * v..(r + 1) * v];
        for i in 0..v {
            let p = (x[i] - max).exp() / sum;
            let onehot = if i == target { 1.0 } else { 0.0 };
            d[i] = (p - onehot) * dloss;
        }
    }
}
