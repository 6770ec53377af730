//! A task file (JSON lines).
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;

#[global_allocator]
static ALLOC: common::Bounded = common::Bounded;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = common::bounded(data.len(), || kiln::task::parse_examples(&text, "task.jsonl"));
});
