//! The page's packed `.kiln` file.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;

#[global_allocator]
static ALLOC: common::Bounded = common::Bounded;

fuzz_target!(|data: &[u8]| {
    let _ = common::bounded(data.len(), || kiln::checkpoint::Checkpoint::from_packed(data));
});
