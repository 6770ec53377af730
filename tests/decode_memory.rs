//! Decoding holds its memory flat over many tokens. In a file of its own: it measures the
//! process's resident memory, which tests running beside it in one binary would disturb.

mod common;
use kiln::config::ModelConfig;
use kiln::gpt::{GpuWeights, Layout};
use kiln::sample::{Generator, SampleOptions};
use std::rc::Rc;

/// Resident memory of this process in KiB (Linux), or None elsewhere.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Decoding holds its memory flat: lavapipe once compiled attention_decode again at every
/// dispatch (its loop bounds came from the uniform) and kept each copy; at this shape (heads of
/// 32; heads of 16 did not show it) 1,500 tokens took 217 MB to 1,162 MB.
#[test]
fn decoding_many_tokens_holds_memory_flat() {
    let Some(gpu) = common::gpu() else { return };
    let cfg = ModelConfig { vocab_size: 29, n_layer: 2, n_head: 2, n_embd: 64, block_size: 64 };
    let weights = Rc::new(
        GpuWeights::upload(&gpu, cfg, Layout::for_limits(&gpu.limits), &kiln::cpu::init_params(&cfg, 3)).unwrap(),
    );
    let mut gen = Generator::new(&gpu, weights);
    let opts = SampleOptions::default();
    pollster::block_on(gen.generate(&gpu, &[1, 2, 3], 200, &opts, |_| true)).unwrap();
    let Some(before) = rss_kib() else { return };
    pollster::block_on(gen.generate(&gpu, &[1, 2, 3], 1500, &opts, |_| true)).unwrap();
    let after = rss_kib().unwrap();
    assert!(after < before + 32 * 1024, "1,500 tokens took resident memory from {before} KiB to {after} KiB");
}
