//! Numerical faults, injected: a learning rate so large that one update throws the weights to
//! about 1e30, after which every loss and gradient norm is not finite. Each such step must be
//! skipped on the GPU (weights and AdamW moments bit for bit as they were), counted, and a run of
//! them must end the training with a message; weights that are not finite never reach a
//! checkpoint.

mod common;
use kiln::config::{ModelConfig, TrainConfig};
use kiln::data::Dataset;
use kiln::train::{SkipWatch, Trainer, SKIPPED_IN_A_ROW_LIMIT};

fn trainer(gpu: &kiln::gpu::Gpu, lr: f32) -> Trainer {
    let cfg = ModelConfig { vocab_size: 13, n_layer: 2, n_head: 2, n_embd: 16, block_size: 8 };
    let train = TrainConfig { batch_size: 3, seq_len: 8, steps: 50, lr, warmup: 0, seed: 7, ..TrainConfig::default() };
    let data = Dataset::new(common::random_tokens(400, 13, 3), 0.1, 8).unwrap();
    Trainer::new(gpu, cfg, train, data.into(), &kiln::cpu::init_params(&cfg, 7), 2).unwrap()
}

#[test]
fn non_finite_steps_change_nothing_and_are_counted() {
    let Some(gpu) = common::gpu() else { return };
    let mut t = trainer(&gpu, 1e30);
    let first = pollster::block_on(t.step(&gpu, true)).unwrap().unwrap();
    assert!(first.is_finite(), "the first loss is computed from sane weights: {first}");
    assert_eq!(t.skipped_steps(), 0);
    let weights = pollster::block_on(t.model.read_params(&gpu)).unwrap();
    let moments = pollster::block_on(t.model.read_adam_state(&gpu)).unwrap();
    assert!(weights.iter().flatten().any(|x| x.abs() > 1e29), "the injected fault: weights near 1e30");

    // Every later step sees a non-finite loss or gradient norm: none may touch anything.
    for _ in 0..2 {
        let _ = pollster::block_on(t.step(&gpu, false)).unwrap();
    }
    let loss = pollster::block_on(t.step(&gpu, true)).unwrap().unwrap();
    assert!(!loss.is_finite(), "the fault did not make the loss non-finite: {loss}");
    assert_eq!(t.skipped_steps(), 3, "steps 2, 3 and 4 were skipped");
    let bits = |v: &[Vec<f32>]| v.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&pollster::block_on(t.model.read_params(&gpu)).unwrap()), bits(&weights), "weights changed");
    let after = pollster::block_on(t.model.read_adam_state(&gpu)).unwrap();
    assert_eq!(bits(&after.0), bits(&moments.0), "first moments changed");
    assert_eq!(bits(&after.1), bits(&moments.1), "second moments changed");
}

#[test]
fn finite_steps_are_not_skipped() {
    let Some(gpu) = common::gpu() else { return };
    let mut t = trainer(&gpu, 1e-3);
    let before = pollster::block_on(t.model.read_params(&gpu)).unwrap();
    for _ in 0..3 {
        let _ = pollster::block_on(t.step(&gpu, true)).unwrap();
    }
    assert_eq!(t.skipped_steps(), 0);
    assert_ne!(pollster::block_on(t.model.read_params(&gpu)).unwrap(), before, "a sane step updates the weights");
}

#[test]
fn weights_that_are_not_finite_never_reach_a_checkpoint() {
    let Some(gpu) = common::gpu() else { return };
    let mut t = trainer(&gpu, 1e-3);
    let _ = pollster::block_on(t.step(&gpu, true)).unwrap();
    assert!(pollster::block_on(t.checkpoint(&gpu, String::new(), serde_json::json!({}))).is_ok());
    // Poison one weight directly, as a fault outside the optimiser would.
    let mut params = pollster::block_on(t.model.read_params(&gpu)).unwrap();
    params[0][5] = f32::NAN;
    t.model.weights.write(&gpu, &params);
    let err = pollster::block_on(t.checkpoint(&gpu, String::new(), serde_json::json!({}))).err().expect("refused");
    assert!(err.contains("no checkpoint was written"), "{err}");
}

#[test]
fn a_run_of_skipped_steps_stops_the_run_and_isolated_ones_do_not() {
    // Log every 5 steps: one skipped step here and there is tolerated...
    let mut w = SkipWatch::new(0);
    for (step, total) in [(5, 1), (10, 1), (15, 2), (20, 6)] {
        assert!(w.observe(step, total, 1e-3).is_ok(), "step {step}");
    }
    // ...every step of two log intervals in a row is not.
    assert!(w.observe(25, 11, 1e-3).is_ok(), "5 in a row");
    let err = w.observe(30, 16, 1e-3).unwrap_err();
    assert!(err.contains("last 10 steps") && err.contains("lower --lr"), "{err}");
    assert_eq!(SKIPPED_IN_A_ROW_LIMIT, 10);
    // A resumed run counts from its own step.
    let mut w = SkipWatch::new(100);
    assert!(w.observe(110, 10, 1e-3).is_err());
}
