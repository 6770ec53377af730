//! Shared by the fuzz targets and tests/fuzz_loaders.rs (which includes this file): a valid tiny
//! checkpoint and LoRA run to change one file of, and for the targets an allocator that aborts
//! (a crash libFuzzer keeps) on any single allocation larger than the input justifies: 64 times
//! its size plus 16 MiB, the limit tests/fuzz_loaders.rs checks too.
#![allow(dead_code)] // each target uses part of it

use kiln::checkpoint::{Checkpoint, TrainState};
use kiln::config::{ModelConfig, TrainConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Bounded;
pub static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > LIMIT.load(Ordering::Relaxed) {
            std::process::abort();
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > LIMIT.load(Ordering::Relaxed) {
            std::process::abort();
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `load` with the allocation limit set for an input of `size` bytes.
pub fn bounded<T>(size: usize, load: impl FnOnce() -> T) -> T {
    LIMIT.store(64 * size + (16 << 20), Ordering::Relaxed);
    let out = load();
    LIMIT.store(usize::MAX, Ordering::Relaxed);
    out
}

/// The tiny checkpoint of tests/fuzz_loaders.rs, with its training state.
pub fn seed() -> Checkpoint {
    let cfg = ModelConfig { vocab_size: 13, n_layer: 2, n_head: 2, n_embd: 8, block_size: 6 };
    let tok = kiln::tokenizer::Tokenizer::char_level("abcdefghij kl").unwrap();
    let state = TrainState {
        train: TrainConfig::default(),
        step: 3,
        rng_state: 5,
        adam_m: kiln::cpu::init_params(&cfg, 6),
        adam_v: kiln::cpu::init_params(&cfg, 7),
        run: serde_json::json!({}),
    };
    Checkpoint { cfg, params: kiln::cpu::init_params(&cfg, 5), tokenizer_json: tok.to_json(), state: Some(state) }
}

/// The files of a LoRA run on `seed()`'s model (PEFT's adapter_model.safetensors and
/// adapter_config.json beside config.json, tokenizer.json and the training state).
pub fn lora_seed() -> Vec<(&'static str, Vec<u8>)> {
    let base = seed();
    let lora = kiln::lora::LoraConfig { rank: 2, alpha: 4.0 };
    let state = TrainState {
        train: TrainConfig::default(),
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

/// The input's first byte names the file it replaces (its index in `names`, sorted, modulo
/// their count); the rest is that file's new content.
pub fn replace_one(files: &[(&'static str, Vec<u8>)], data: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut files = files.to_vec();
    files.sort_by_key(|f| f.0);
    if let Some((&which, rest)) = data.split_first() {
        let i = which as usize % files.len();
        files[i].1 = rest.to_vec();
    }
    files
}

/// Loads the folder `seed` with one file replaced as `replace_one` says, under the allocation
/// limit for the whole folder's size.
pub fn load_folder<T>(
    seed: &[(&'static str, Vec<u8>)],
    data: &[u8],
    load: impl FnOnce(&dyn Fn(&str) -> Option<Vec<u8>>) -> T,
) -> T {
    let files = replace_one(seed, data);
    let size = files.iter().map(|f| f.1.len()).sum();
    let read = |n: &str| files.iter().find(|f| f.0 == n).map(|f| f.1.clone());
    bounded(size, || load(&read))
}
