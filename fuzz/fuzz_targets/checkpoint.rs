//! A checkpoint folder's five files, one of them replaced by the input (see common.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
#[path = "common.rs"]
mod common;

#[global_allocator]
static ALLOC: common::Bounded = common::Bounded;

fuzz_target!(|data: &[u8]| {
    static SEED: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    let seed = SEED.get_or_init(|| common::seed().to_files());
    let files = common::replace_one(seed, data);
    let size = files.iter().map(|f| f.1.len()).sum();
    let read = |n: &str| files.iter().find(|f| f.0 == n).map(|f| f.1.clone());
    let _ = common::bounded(size, || kiln::checkpoint::Checkpoint::from_files(read));
});
