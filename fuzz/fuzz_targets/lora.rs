//! A LoRA run's folder (PEFT's adapter_model.safetensors and adapter_config.json beside
//! config.json, tokenizer.json and the training state), one file replaced by the input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
#[path = "common.rs"]
mod common;

#[global_allocator]
static ALLOC: common::Bounded = common::Bounded;

fn seed() -> Vec<(&'static str, Vec<u8>)> {
    let base = common::seed();
    let lora = kiln::lora::LoraConfig { rank: 2, alpha: 4.0 };
    let state = kiln::checkpoint::TrainState {
        train: kiln::config::TrainConfig::default(),
        step: 3,
        rng_state: 5,
        adam_m: kiln::lora::init_adapters(&base.cfg, &lora, 4),
        adam_v: kiln::lora::init_adapters(&base.cfg, &lora, 5),
        run: serde_json::json!({}),
    };
    let adapters = kiln::lora::init_adapters(&base.cfg, &lora, 3);
    let run = kiln::lora::LoraRun {
        cfg: base.cfg,
        lora,
        adapters,
        tokenizer_json: base.tokenizer_json,
        base: "runs/base".into(),
        state: Some(state),
    };
    run.to_files()
}

fuzz_target!(|data: &[u8]| {
    static SEED: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    let files = common::replace_one(SEED.get_or_init(seed), data);
    let size = files.iter().map(|f| f.1.len()).sum();
    let read = |n: &str| files.iter().find(|f| f.0 == n).map(|f| f.1.clone());
    let _ = common::bounded(size, || kiln::lora::LoraRun::from_files(read));
});
