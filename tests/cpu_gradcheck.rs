//! Checks the CPU oracle against itself and against arithmetic written out independently:
//! every backward against central finite differences of its forward, the whole `CpuGpt` the same
//! way and against a separate f64 forward, the loss against -log softmax, AdamW against a
//! two-step hand computation. No GPU; no stored answers.
//!
//! Shapes are deliberately awkward: B*T = 10 rows, C = 12 or 48, one head, T = 1.

use kiln::config::ModelConfig;
use kiln::cpu::*;
use kiln::model::param_table;

/// How a gradient check differentiates numerically, and how close it must come.
/// A gradient passes when |analytic - numeric| <= rtol * max(|analytic|, |numeric|) + atol.
struct Tol {
    eps: f32,
    rtol: f64,
    atol: f64,
}

/// For objectives computed by the f32 oracle itself. Rounding in an f32 forward (~1e-7 of an
/// objective of size ~10) divided by 2 * eps puts up to ~5e-4 of noise in the numeric gradient;
/// the worst check here uses 30% of this tolerance. A larger eps lowers the noise but lets
/// truncation error (~eps^2) take its place: at 1e-2 the whole-model check gets no tighter.
const F32: Tol = Tol { eps: 1e-3, rtol: 5e-3, atol: 5e-4 };

/// For the whole model with the loss recomputed by the independent f64 forward: no f32 noise in
/// the numeric gradient, so what is left is the f32 backward's own rounding and truncation. The
/// worst check here uses 21% of this tolerance, 25 times tighter than `F32`.
const F64: Tol = Tol { eps: 1e-3, rtol: 2e-4, atol: 2e-6 };

fn uniform(rng: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| lo + (hi - lo) * rng.next_f32()).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// Compares `analytic`, the gradient of `objective` at `x`, with central differences at the
/// indices `at`. The step actually taken is measured in f32 (x + eps is rounded), so the
/// difference quotient divides by the true step.
fn check_at(name: &str, tol: &Tol, x: &[f32], analytic: &[f32], at: &[usize], objective: impl Fn(&[f32]) -> f64) {
    assert_eq!(x.len(), analytic.len(), "{name}: gradient has the wrong length");
    // The check furthest over its tolerance, if any; a NaN on either side counts as infinitely far.
    let mut worst: Option<(f64, usize, f64, f64)> = None;
    let mut xp = x.to_vec();
    for &i in at {
        let (up, down) = (x[i] + tol.eps, x[i] - tol.eps);
        xp[i] = up;
        let f_up = objective(&xp);
        xp[i] = down;
        let f_down = objective(&xp);
        xp[i] = x[i];
        let numeric = (f_up - f_down) / (up as f64 - down as f64);
        let a = analytic[i] as f64;
        let excess = (a - numeric).abs() - (tol.rtol * a.abs().max(numeric.abs()) + tol.atol);
        let excess = if excess.is_nan() { f64::INFINITY } else { excess };
        if excess > 0.0 && worst.is_none_or(|w| excess > w.0) {
            worst = Some((excess, i, a, numeric));
        }
    }
    if let Some((excess, i, a, numeric)) = worst {
        panic!("{name}[{i}]: analytic {a:.6e} vs numeric {numeric:.6e} (over tolerance by {excess:.2e})");
    }
}

fn check(name: &str, x: &[f32], analytic: &[f32], objective: impl Fn(&[f32]) -> f64) {
    let all: Vec<usize> = (0..x.len()).collect();
    check_at(name, &F32, x, analytic, &all, objective);
}

/// Forwards write (=) their outputs, so outputs start as NaN: a forward that reads or adds to
/// what was there, or leaves an entry unwritten, poisons the result.
fn nan(n: usize) -> Vec<f32> {
    vec![f32::NAN; n]
}

/// Backwards accumulate, so each gradient buffer starts with these random values and the test
/// subtracts them again: a backward that overwrites instead of adding fails.
fn prior(rng: &mut Rng, n: usize) -> Vec<f32> {
    uniform(rng, n, -1.0, 1.0)
}

fn minus(after: &[f32], before: &[f32]) -> Vec<f32> {
    after.iter().zip(before).map(|(a, b)| a - b).collect()
}

#[test]
fn encoder_backward_matches_finite_differences() {
    let (b, t, c, v, max_t) = (2, 5, 12, 7, 6);
    let mut rng = Rng::new(1);
    // Repeated tokens, so rows of dwte receive several contributions.
    let tokens: Vec<u32> = vec![3, 1, 3, 0, 6, 6, 6, 2, 3, 1];
    let wte = uniform(&mut rng, v * c, -1.0, 1.0);
    let wpe = uniform(&mut rng, max_t * c, -1.0, 1.0);
    let r = uniform(&mut rng, b * t * c, -1.0, 1.0);
    let forward = |wte: &[f32], wpe: &[f32]| {
        let mut out = nan(b * t * c);
        encoder_forward(&mut out, &tokens, wte, wpe, b, t, c);
        dot(&out, &r)
    };
    let (dwte0, dwpe0) = (prior(&mut rng, v * c), prior(&mut rng, max_t * c));
    let (mut dwte, mut dwpe) = (dwte0.clone(), dwpe0.clone());
    encoder_backward(&mut dwte, &mut dwpe, &r, &tokens, b, t, c);
    check("dwte", &wte, &minus(&dwte, &dwte0), |x| forward(x, &wpe));
    check("dwpe", &wpe, &minus(&dwpe, &dwpe0), |x| forward(&wte, x));
}

#[test]
fn layernorm_backward_matches_finite_differences() {
    for (n, c) in [(10, 12), (1, 48), (3, 1)] {
        let mut rng = Rng::new(2);
        // An offset mean and uneven spread, so the mean and variance paths both matter.
        let inp = uniform(&mut rng, n * c, -1.0, 2.0);
        let weight = uniform(&mut rng, c, 0.5, 1.5);
        let bias = uniform(&mut rng, c, -0.5, 0.5);
        let r = uniform(&mut rng, n * c, -1.0, 1.0);
        let forward = |inp: &[f32], weight: &[f32], bias: &[f32]| {
            let (mut out, mut mean, mut rstd) = (nan(n * c), nan(n), nan(n));
            layernorm_forward(&mut out, &mut mean, &mut rstd, inp, weight, bias, n, c);
            (dot(&out, &r), mean, rstd)
        };
        let (_, mean, rstd) = forward(&inp, &weight, &bias);
        let (di0, dw0, db0) = (prior(&mut rng, n * c), prior(&mut rng, c), prior(&mut rng, c));
        let (mut di, mut dw, mut db) = (di0.clone(), dw0.clone(), db0.clone());
        layernorm_backward(&mut di, &mut dw, &mut db, &r, &inp, &weight, &mean, &rstd, n, c);
        check("dinp", &inp, &minus(&di, &di0), |x| forward(x, &weight, &bias).0);
        check("dweight", &weight, &minus(&dw, &dw0), |x| forward(&inp, x, &bias).0);
        check("dbias", &bias, &minus(&db, &db0), |x| forward(&inp, &weight, x).0);
    }
}

#[test]
fn layernorm_forward_normalises_each_row() {
    let (n, c) = (3, 48);
    let mut rng = Rng::new(3);
    let inp = uniform(&mut rng, n * c, 5.0, 9.0);
    let (mut out, mut mean, mut rstd) = (nan(n * c), nan(n), nan(n));
    layernorm_forward(&mut out, &mut mean, &mut rstd, &inp, &vec![1.0; c], &vec![0.0; c], n, c);
    for row in 0..n {
        let x = &inp[row * c..(row + 1) * c];
        let m = x.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
        let var = x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / c as f64;
        assert!((mean[row] as f64 - m).abs() < 1e-5, "mean of row {row}");
        let want = 1.0 / (var + 1e-5).sqrt();
        assert!((rstd[row] as f64 - want).abs() < 1e-5 * want, "rstd of row {row}");
        let o = &out[row * c..(row + 1) * c];
        let om = o.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
        let ov = o.iter().map(|&v| (v as f64 - om).powi(2)).sum::<f64>() / c as f64;
        assert!(om.abs() < 1e-5 && (ov - var / (var + 1e-5)).abs() < 1e-4, "row {row}: {om} {ov}");
    }
}

#[test]
fn matmul_backward_matches_finite_differences() {
    for (n, c, oc, with_bias) in [(10, 12, 36, true), (1, 48, 12, true), (3, 5, 7, false)] {
        let mut rng = Rng::new(4);
        let inp = uniform(&mut rng, n * c, -1.0, 1.0);
        let weight = uniform(&mut rng, c * oc, -1.0, 1.0);
        let bias = uniform(&mut rng, oc, -1.0, 1.0);
        let r = uniform(&mut rng, n * oc, -1.0, 1.0);
        let forward = |inp: &[f32], weight: &[f32], bias: &[f32]| {
            let mut out = nan(n * oc);
            matmul_forward(&mut out, inp, weight, with_bias.then_some(bias), n, c, oc);
            dot(&out, &r)
        };
        let (di0, dw0, db0) = (prior(&mut rng, n * c), prior(&mut rng, c * oc), prior(&mut rng, oc));
        let (mut di, mut dw, mut db) = (di0.clone(), dw0.clone(), db0.clone());
        let dbias = if with_bias { Some(&mut db[..]) } else { None };
        matmul_backward(&mut di, &mut dw, dbias, &r, &inp, &weight, n, c, oc);
        check("dinp", &inp, &minus(&di, &di0), |x| forward(x, &weight, &bias));
        check("dweight", &weight, &minus(&dw, &dw0), |x| forward(&inp, x, &bias));
        if with_bias {
            check("dbias", &bias, &minus(&db, &db0), |x| forward(&inp, &weight, x));
        } else {
            assert_eq!(db, db0, "no bias: dbias must be untouched");
        }
    }
}

#[test]
fn lm_head_backward_matches_finite_differences() {
    let (n, c, v) = (10, 12, 11);
    let mut rng = Rng::new(5);
    let inp = uniform(&mut rng, n * c, -1.0, 1.0);
    let wte = uniform(&mut rng, v * c, -1.0, 1.0);
    let r = uniform(&mut rng, n * v, -1.0, 1.0);
    let forward = |inp: &[f32], wte: &[f32]| {
        let mut logits = nan(n * v);
        lm_head_forward(&mut logits, inp, wte, n, c, v);
        dot(&logits, &r)
    };
    let (di0, dw0) = (prior(&mut rng, n * c), prior(&mut rng, v * c));
    let (mut di, mut dw) = (di0.clone(), dw0.clone());
    lm_head_backward(&mut di, &mut dw, &r, &inp, &wte, n, c, v);
    check("dinp", &inp, &minus(&di, &di0), |x| forward(x, &wte));
    check("dwte", &wte, &minus(&dw, &dw0), |x| forward(&inp, x));
}

#[test]
fn attention_backward_matches_finite_differences() {
    for (b, t, c, nh) in [(2, 5, 12, 3), (2, 5, 12, 1), (1, 1, 8, 1), (3, 4, 48, 4)] {
        let mut rng = Rng::new(6);
        // Spread wide enough that the softmax is far from uniform.
        let inp = uniform(&mut rng, b * t * 3 * c, -2.0, 2.0);
        let r = uniform(&mut rng, b * t * c, -1.0, 1.0);
        let forward = |inp: &[f32]| {
            let (mut out, mut att) = (nan(b * t * c), nan(b * nh * t * t));
            attention_forward(&mut out, &mut att, inp, b, t, c, nh);
            (dot(&out, &r), att)
        };
        let (_, att) = forward(&inp);
        let di0 = prior(&mut rng, inp.len());
        let mut di = di0.clone();
        attention_backward(&mut di, &r, &inp, &att, b, t, c, nh);
        check(&format!("dinp (B={b} T={t} C={c} NH={nh})"), &inp, &minus(&di, &di0), |x| forward(x).0);
    }
}

#[test]
fn attention_is_causal_and_normalised() {
    let (b, t, c, nh) = (2, 5, 12, 3);
    let hs = c / nh;
    let mut rng = Rng::new(7);
    let inp = uniform(&mut rng, b * t * 3 * c, -2.0, 2.0);
    let (mut out, mut att) = (nan(b * t * c), nan(b * nh * t * t));
    attention_forward(&mut out, &mut att, &inp, b, t, c, nh);
    for (i, row) in att.chunks(t).enumerate() {
        let ti = i % t;
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6, "row {i} sums to {sum}");
        assert!(row[ti + 1..].iter().all(|&p| p == 0.0), "row {i} sees the future");
    }
    // The first position attends only to itself, so its output is its own v, head by head.
    for bi in 0..b {
        for i in 0..c {
            let v = inp[bi * t * 3 * c + 2 * c + i];
            assert!((out[bi * t * c + i] - v).abs() < 1e-6, "b {bi} channel {i} (head {})", i / hs);
        }
    }
}

#[test]
fn gelu_backward_matches_finite_differences() {
    let mut rng = Rng::new(8);
    let inp = uniform(&mut rng, 37, -4.0, 4.0);
    let r = uniform(&mut rng, 37, -1.0, 1.0);
    let forward = |inp: &[f32]| {
        let mut out = nan(inp.len());
        gelu_forward(&mut out, inp);
        dot(&out, &r)
    };
    let di0 = prior(&mut rng, 37);
    let mut di = di0.clone();
    gelu_backward(&mut di, &inp, &r);
    check("dinp", &inp, &minus(&di, &di0), forward);
    // Spot values of the tanh form, computed in f64.
    let mut out = [0.0f32; 3];
    gelu_forward(&mut out, &[-1.0, 0.0, 2.0]);
    for (o, x) in out.iter().zip([-1.0f64, 0.0, 2.0]) {
        let want = 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh());
        assert!((*o as f64 - want).abs() < 1e-6, "gelu({x}) = {o}, want {want}");
    }
}

#[test]
fn residual_forward_adds() {
    let mut out = [0.0f32; 3];
    residual_forward(&mut out, &[1.0, -2.0, 0.5], &[0.25, 2.0, 4.0]);
    assert_eq!(out, [1.25, 0.0, 4.5]);
}

#[test]
fn crossentropy_is_minus_log_softmax_and_its_gradient() {
    let (n, v) = (10, 11);
    let mut rng = Rng::new(9);
    let mut logits = uniform(&mut rng, n * v, -3.0, 3.0);
    // One row far from zero: a naive exp would overflow.
    for x in &mut logits[..v] {
        *x += 1000.0;
    }
    let targets: Vec<u32> = (0..n as u32).map(|i| (i * 7) % v as u32).collect();
    let dloss = 1.0 / n as f32;
    let (mut losses, mut dlogits) = (nan(n), nan(n * v));
    crossentropy_softmax(&mut losses, &mut dlogits, &logits, &targets, n, v, dloss);
    for r in 0..n {
        let x: Vec<f64> = logits[r * v..(r + 1) * v].iter().map(|&l| l as f64).collect();
        let max = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = x.iter().map(|l| (l - max).exp()).sum();
        let want = -((x[targets[r] as usize] - max).exp() / z).ln();
        assert!((losses[r] as f64 - want).abs() < 1e-5 * want.max(1.0), "row {r}: {} vs {want}", losses[r]);
    }
    // dlogits is written, not added: the NaN prefill must be gone. The objective is the mean loss.
    let mean_loss = |logits: &[f32]| {
        let (mut l, mut d) = (vec![0.0; n], vec![0.0; n * v]);
        crossentropy_softmax(&mut l, &mut d, logits, &targets, n, v, dloss);
        l.iter().map(|&x| x as f64).sum::<f64>() * dloss as f64
    };
    // The shifted row is skipped: at 1000, an f32 step of 1e-3 is not representable.
    let rows: Vec<usize> = (v..n * v).collect();
    check_at("dlogits", &F32, &logits, &dlogits, &rows, mean_loss);
    for row in dlogits.chunks(v) {
        assert!(row.iter().sum::<f32>().abs() < 1e-6, "each row of dlogits sums to 0");
    }
}

#[test]
fn grad_norm_and_clip_scale() {
    assert_eq!(global_grad_norm(&[&[3.0], &[], &[0.0, 4.0]]), 5.0);
    assert_eq!(global_grad_norm(&[]), 0.0);
    assert_eq!(clip_scale(0.5, 1.0), 1.0);
    assert_eq!(clip_scale(0.0, 1.0), 1.0);
    assert_eq!(clip_scale(4.0, 1.0), 1.0 / (4.0 + 1e-6));
    // Exactly at the limit, PyTorch's 1e-6 makes the factor just under 1.
    assert!(clip_scale(1.0, 1.0) < 1.0);
}

#[test]
fn adamw_matches_two_steps_by_hand() {
    // Torch's single-tensor AdamW, written out in f64 for one scalar.
    fn by_hand(p0: f64, grads: [f64; 2], scale: f64, lr: f64, wd: f64, eps: f64) -> f64 {
        let (b1, b2) = (0.9f64, 0.95f64);
        let (mut p, mut m, mut v) = (p0, 0.0, 0.0);
        for (i, g) in grads.into_iter().enumerate() {
            let step = (i + 1) as i32;
            let g = g * scale;
            p *= 1.0 - lr * wd;
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            let denom = v.sqrt() / (1.0 - b2.powi(step)).sqrt() + eps;
            p -= lr / (1.0 - b1.powi(step)) * m / denom;
        }
        p
    }
    let p0 = [0.5f32, -1.5];
    // [step][element]
    let grads = [[0.3f32, -0.7], [-0.2, 0.05]];
    // eps = 0.01 is large on purpose: adding it before or after bias correction then differs
    // by far more than the tolerance, so the placement is tested.
    for (lr, wd, eps, scale) in [(0.1f32, 0.1f32, 1e-8f32, 1.0f32), (0.05, 0.0, 0.01, 0.4)] {
        let (mut p, mut m, mut v) = (p0.to_vec(), vec![0.0; 2], vec![0.0; 2]);
        for (step, g) in grads.iter().enumerate() {
            adamw_update(&mut p, g, &mut m, &mut v, lr, 0.9, 0.95, eps, wd, step as u32 + 1, scale);
        }
        for i in 0..2 {
            let g = [grads[0][i] as f64, grads[1][i] as f64];
            let want = by_hand(p0[i] as f64, g, scale as f64, lr as f64, wd as f64, eps as f64);
            assert!((p[i] as f64 - want).abs() < 1e-6, "lr {lr} wd {wd}: p[{i}] {} vs {want}", p[i]);
        }
    }
}

#[test]
fn rng_is_seeded_and_roughly_standard() {
    let (mut a, mut b) = (Rng::new(42), Rng::new(42));
    assert_eq!((0..5).map(|_| a.next_u64()).collect::<Vec<_>>(), (0..5).map(|_| b.next_u64()).collect::<Vec<_>>());
    assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    let mut rng = Rng::new(7);
    assert!((0..10_000).map(|_| rng.next_f32()).all(|u| (0.0..1.0).contains(&u)));
    let z: Vec<f64> = (0..20_000).map(|_| rng.normal() as f64).collect();
    let mean = z.iter().sum::<f64>() / z.len() as f64;
    let var = z.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / z.len() as f64;
    // Standard errors are about 0.007 for the mean and 0.01 for the variance.
    assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.05, "mean {mean}, variance {var}");
}

/// GPT-2's forward written again in f64 with nothing shared with `kiln::cpu`: straight from
/// the definitions, slow and obvious, so the oracle's forward has something to be wrong against.
mod reference {
    use kiln::config::ModelConfig;
    use kiln::model::{block_params, ln_f, WPE, WTE};

    type Rows = Vec<Vec<f64>>; // (N, width)

    fn layernorm(x: &Rows, w: &[f32], b: &[f32]) -> Rows {
        x.iter()
            .map(|row| {
                let c = row.len() as f64;
                let mean = row.iter().sum::<f64>() / c;
                let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / c;
                let rstd = 1.0 / (var + 1e-5).sqrt();
                row.iter().enumerate().map(|(i, v)| (v - mean) * rstd * w[i] as f64 + b[i] as f64).collect()
            })
            .collect()
    }

    /// y = x @ W + b with W stored (in, out).
    fn linear(x: &Rows, w: &[f32], b: &[f32]) -> Rows {
        let out = b.len();
        let column =
            |row: &Vec<f64>, j: usize| -> f64 { row.iter().enumerate().map(|(k, v)| v * w[k * out + j] as f64).sum() };
        x.iter().map(|row| (0..out).map(|j| b[j] as f64 + column(row, j)).collect()).collect()
    }

    fn gelu(x: f64) -> f64 {
        0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
    }

    /// Causal attention over rows of (q | k | v) for one sequence of length t.
    fn attention(qkv: &[Vec<f64>], c: usize, nh: usize) -> Rows {
        let hs = c / nh;
        let mut y = vec![vec![0.0; c]; qkv.len()];
        for h in 0..nh {
            let ch = h * hs..(h + 1) * hs;
            for (t1, q) in qkv.iter().enumerate() {
                let scores: Vec<f64> = qkv[..=t1]
                    .iter()
                    .map(|k| ch.clone().map(|i| q[i] * k[c + i]).sum::<f64>() / (hs as f64).sqrt())
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                for (t2, s) in scores.iter().enumerate() {
                    let p = (s - max).exp() / z;
                    for i in ch.clone() {
                        y[t1][i] += p * qkv[t2][2 * c + i];
                    }
                }
            }
        }
        y
    }

    fn add(a: &Rows, b: &Rows) -> Rows {
        a.iter().zip(b).map(|(x, y)| x.iter().zip(y).map(|(u, v)| u + v).collect()).collect()
    }

    /// Returns the logits (B*T*V, flat) and the mean cross-entropy.
    pub fn forward(
        cfg: &ModelConfig,
        p: &[Vec<f32>],
        tokens: &[u32],
        targets: &[u32],
        b: usize,
        t: usize,
    ) -> (Vec<f64>, f64) {
        let (c, v) = (cfg.n_embd, cfg.vocab_size);
        let mut x: Rows = (0..b * t)
            .map(|r| {
                (0..c).map(|i| p[WTE][tokens[r] as usize * c + i] as f64 + p[WPE][(r % t) * c + i] as f64).collect()
            })
            .collect();
        for l in 0..cfg.n_layer {
            let bp = block_params(l);
            let h = layernorm(&x, &p[bp.ln_1_w], &p[bp.ln_1_b]);
            let qkv = linear(&h, &p[bp.c_attn_w], &p[bp.c_attn_b]);
            let y: Rows = qkv.chunks(t).flat_map(|seq| attention(seq, c, cfg.n_head)).collect();
            x = add(&x, &linear(&y, &p[bp.attn_proj_w], &p[bp.attn_proj_b]));
            let h = layernorm(&x, &p[bp.ln_2_w], &p[bp.ln_2_b]);
            let mut f = linear(&h, &p[bp.c_fc_w], &p[bp.c_fc_b]);
            f.iter_mut().flatten().for_each(|u| *u = gelu(*u));
            x = add(&x, &linear(&f, &p[bp.mlp_proj_w], &p[bp.mlp_proj_b]));
        }
        let lf = ln_f(cfg);
        let h = layernorm(&x, &p[lf], &p[lf + 1]);
        // Tied head: logits[r][j] = h[r] . wte[j].
        let logits: Rows = h
            .iter()
            .map(|row| (0..v).map(|j| (0..c).map(|i| row[i] * p[WTE][j * c + i] as f64).sum()).collect())
            .collect();
        let mut loss = 0.0;
        for (row, &target) in logits.iter().zip(targets) {
            let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + row.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
            loss += lse - row[target as usize];
        }
        (logits.into_iter().flatten().collect(), loss / (b * t) as f64)
    }
}

const TINY: ModelConfig = ModelConfig { vocab_size: 11, n_layer: 2, n_head: 2, n_embd: 8, block_size: 8 };

/// Parameters from `init_params`, then pushed well away from it: at init the biases are zero,
/// LayerNorm is the identity and the weights are tiny, which would hide mistakes in every one
/// of those paths.
fn tiny_params(seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed ^ 0xABCD);
    let mut params = init_params(&TINY, seed);
    for x in params.iter_mut().flatten() {
        *x += 0.3 * rng.normal();
    }
    params
}

fn tiny_batch() -> (Vec<u32>, Vec<u32>) {
    let tokens = vec![1, 4, 4, 10, 0, 7, 2, 9, 9, 3];
    let targets = vec![4, 4, 10, 0, 7, 2, 9, 9, 3, 5];
    (tokens, targets)
}

#[test]
fn init_params_follows_the_table() {
    let cfg = ModelConfig { vocab_size: 50, n_layer: 2, n_head: 2, n_embd: 32, block_size: 16 };
    let params = init_params(&cfg, 1);
    assert_eq!(params, init_params(&cfg, 1), "same seed, same model");
    for (p, spec) in params.iter().zip(param_table(&cfg)) {
        assert_eq!(p.len(), spec.numel(), "{}", spec.name);
        let std = (p.iter().map(|&x| x as f64 * x as f64).sum::<f64>() / p.len() as f64).sqrt();
        match spec.init {
            kiln::model::Init::Zeros => assert!(p.iter().all(|&x| x == 0.0), "{}", spec.name),
            kiln::model::Init::Ones => assert!(p.iter().all(|&x| x == 1.0), "{}", spec.name),
            kiln::model::Init::Normal(s) => {
                assert!((std / s as f64 - 1.0).abs() < 0.15, "{}: std {std} vs {s}", spec.name)
            }
        }
    }
}

#[test]
fn gpt_forward_matches_an_independent_f64_forward() {
    let params = tiny_params(11);
    let (tokens, targets) = tiny_batch();
    // The usual batch, T = 1, and T = block_size (every position embedding in use).
    for (b, t) in [(2, 5), (3, 1), (1, 8)] {
        let (tokens, targets) = (&tokens[..b * t], &targets[..b * t]);
        let mut gpt = CpuGpt::new(TINY, params.clone());
        let (logits, loss) = gpt.forward(tokens, Some(targets), b, t);
        let (want_logits, want_loss) = reference::forward(&TINY, &params, tokens, targets, b, t);
        assert_eq!(logits.len(), b * t * TINY.vocab_size);
        for (i, (&l, &w)) in logits.iter().zip(&want_logits).enumerate() {
            let close = (l as f64 - w).abs() < 1e-5 * w.abs().max(1.0);
            assert!(close, "B={b} T={t} logit {i}: {l} vs {w}");
        }
        let loss = loss.expect("targets were given") as f64;
        let close = (loss - want_loss).abs() < 1e-5 * want_loss;
        assert!(close, "B={b} T={t}: loss {loss} vs {want_loss}");
        // Without targets: the same logits and no loss.
        let (again, none) = gpt.forward(tokens, None, b, t);
        assert!(none.is_none());
        assert_eq!(again, logits);
    }
}

#[test]
fn gpt_backward_matches_finite_differences() {
    let params = tiny_params(12);
    let (tokens, targets) = tiny_batch();
    let (b, t) = (2, 5);
    let mut gpt = CpuGpt::new(TINY, params.clone());
    gpt.forward(&tokens, Some(&targets), b, t);
    let grads = gpt.backward();
    let table = param_table(&TINY);
    assert_eq!(grads.len(), table.len());
    let mut rng = Rng::new(13);
    for (k, spec) in table.iter().enumerate() {
        assert_eq!(grads[k].len(), spec.numel(), "{}", spec.name);
        // The first and last entries plus a handful at random from every tensor.
        let len = spec.numel();
        let mut at = vec![0, len - 1];
        at.extend((0..6).map(|_| (rng.next_u64() % len as u64) as usize));
        let loss = |x: &[f32]| {
            let mut p = params.clone();
            p[k].copy_from_slice(x);
            let mut g = CpuGpt::new(TINY, p);
            g.forward(&tokens, Some(&targets), b, t).1.unwrap() as f64
        };
        check_at(&spec.name, &F32, &params[k], &grads[k], &at, loss);
    }
}

#[test]
fn gpt_backward_matches_f64_finite_differences_everywhere() {
    // Every parameter, with the loss from the f64 forward (shown equal to the oracle's above), so
    // the numeric side is free of f32 noise and the tolerance can be tight.
    let params = tiny_params(14);
    let (tokens, targets) = tiny_batch();
    let (b, t) = (2, 5);
    let mut gpt = CpuGpt::new(TINY, params.clone());
    gpt.forward(&tokens, Some(&targets), b, t);
    let grads = gpt.backward();
    for (k, spec) in param_table(&TINY).iter().enumerate() {
        let all: Vec<usize> = (0..spec.numel()).collect();
        let loss = |x: &[f32]| {
            let mut p = params.clone();
            p[k].copy_from_slice(x);
            reference::forward(&TINY, &p, &tokens, &targets, b, t).1
        };
        check_at(&spec.name, &F64, &params[k], &grads[k], &all, loss);
    }
}
