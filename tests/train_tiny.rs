//! The engine learns: the tiny shape on the embedded Shakespeare starts near ln(vocabulary)
//! and its validation loss falls well under 3 within a few hundred steps.

mod common;
use kiln::config::{ModelConfig, TrainConfig};
use kiln::data::Dataset;
use kiln::tokenizer::Tokenizer;
use kiln::train::Trainer;

#[test]
fn tiny_model_learns_shakespeare() {
    let Some(gpu) = common::gpu() else { return };
    let text = kiln::corpus::DEFAULT_CORPUS;
    let tok = Tokenizer::char_level(text).unwrap();
    let cfg = ModelConfig { vocab_size: tok.vocab_size(), n_layer: 2, n_head: 2, n_embd: 64, block_size: 64 };
    let train = TrainConfig {
        batch_size: 16,
        seq_len: 64,
        steps: 250,
        lr: 1e-3,
        warmup: 30,
        seed: 1337,
        ..TrainConfig::default()
    };
    let data = Dataset::new(tok.encode(text).unwrap(), 0.1, 64).unwrap();
    let params = kiln::cpu::init_params(&cfg, 1337);
    let mut trainer = Trainer::new(&gpu, cfg, train, data.into(), &params, 10).unwrap();

    let first_val = pollster::block_on(trainer.evaluate(&gpu)).unwrap().unwrap();
    let uniform = (cfg.vocab_size as f32).ln();
    assert!((first_val - uniform).abs() < 0.3, "untrained loss {first_val} should be near ln(V) = {uniform}");
    let first = pollster::block_on(trainer.step(&gpu, true)).unwrap().unwrap();
    while !trainer.done() {
        pollster::block_on(trainer.step(&gpu, false)).unwrap();
    }
    let last_val = pollster::block_on(trainer.evaluate(&gpu)).unwrap().unwrap();
    eprintln!(
        "tiny: first step loss {first:.3}, validation {first_val:.3} -> {last_val:.3} after {} steps",
        trainer.step
    );
    assert!(last_val < 2.8, "validation loss {last_val} should be well under 3 after {} steps", trainer.step);
}
