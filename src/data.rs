//! The token stream, its train/validation split, and the seeded batch sampler.
//!
//! Validation is the last `val_fraction` of the stream; training batches are random windows of
//! T+1 tokens from the rest (input = first T, target = last T). Evaluation windows come from a
//! fixed seed so every evaluation of a run sees the same text.

use crate::cpu::Rng;

pub struct Dataset {
    pub tokens: Vec<u32>,
    /// Index where validation starts.
    pub split: usize,
}

impl Dataset {
    /// Splits `tokens`; both parts must hold at least one window of `t + 1` tokens.
    pub fn new(tokens: Vec<u32>, val_fraction: f32, t: usize) -> Result<Dataset, String> {
        if !(0.0..1.0).contains(&val_fraction) {
            return Err(format!("the validation fraction must be in [0, 1), got {val_fraction}"));
        }
        let val = ((tokens.len() as f64) * val_fraction as f64).round() as usize;
        let split = tokens.len() - val;
        if split < t + 1 {
            return Err(format!(
                "the corpus is too short: {} training tokens, but one block of {} needs {}",
                split,
                t,
                t + 1
            ));
        }
        if val > 0 && val < t + 1 {
            return Err(format!(
                "the corpus is too short: its validation part has {val} tokens, fewer than one block of {t} plus one; use a longer corpus, a shorter block or a larger --val-fraction"
            ));
        }
        Ok(Dataset { tokens, split })
    }

    pub fn train(&self) -> &[u32] {
        &self.tokens[..self.split]
    }

    pub fn val(&self) -> &[u32] {
        &self.tokens[self.split..]
    }
}

/// Seeded random windows: `b` rows of `t` inputs and their `t` next-token targets.
pub fn sample_batch(rng: &mut Rng, part: &[u32], b: usize, t: usize) -> (Vec<u32>, Vec<u32>) {
    let mut inputs = Vec::with_capacity(b * t);
    let mut targets = Vec::with_capacity(b * t);
    let starts = (part.len() - t) as u64; // windows of t + 1 tokens fit at [0, starts)
    for _ in 0..b {
        let s = (rng.next_u64() % starts) as usize;
        inputs.extend_from_slice(&part[s..s + t]);
        targets.extend_from_slice(&part[s + 1..s + t + 1]);
    }
    (inputs, targets)
}

/// The same `count` validation batches every time they are asked for.
pub fn eval_batches(part: &[u32], count: usize, b: usize, t: usize, seed: u64) -> Vec<(Vec<u32>, Vec<u32>)> {
    let mut rng = Rng::new(seed ^ 0x5EED_E7A1);
    (0..count).map(|_| sample_batch(&mut rng, part, b, t)).collect()
}
