//! A LoRA run's folder (PEFT's adapter_model.safetensors and adapter_config.json beside
//! config.json, tokenizer.json and the training state), one file replaced by the input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
#[path = "common.rs"]
mod common;

#[global_allocator]
static ALLOC: common::Bounded = common::Bounded;

fuzz_target!(|data: &[u8]| {
    static SEED: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    let _ =
        common::load_folder(SEED.get_or_init(common::lora_seed), data, |read| kiln::lora::LoraRun::from_files(read));
});
