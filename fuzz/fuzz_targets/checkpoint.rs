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
    let _ = common::load_folder(SEED.get_or_init(|| common::seed().to_files()), data, |read| {
        kiln::checkpoint::Checkpoint::from_files(read)
    });
});
