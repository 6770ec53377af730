//! Shared helpers for the tests: the GPU (or a SKIP), seeded data, and tolerant comparisons.

#![allow(dead_code)]

use kiln::gpu::Gpu;

/// The GPU, or None with a SKIP line. Under REQUIRE_GPU=1 a missing adapter fails the test.
pub fn gpu() -> Option<Gpu> {
    match pollster::block_on(Gpu::new()) {
        Ok(g) => Some(g),
        Err(e) => {
            if std::env::var("REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("REQUIRE_GPU=1 but {e}");
            }
            eprintln!("SKIP: {e}");
            None
        }
    }
}

/// Deterministic values in [-scale, scale).
pub fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut rng = kiln::cpu::Rng::new(seed);
    (0..n).map(|_| (rng.next_f32() * 2.0 - 1.0) * scale).collect()
}

pub fn random_tokens(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut rng = kiln::cpu::Rng::new(seed);
    (0..n).map(|_| (rng.next_u64() % vocab as u64) as u32).collect()
}

/// Largest |a - b| / (atol + rtol |b|) over both slices; <= 1 means within tolerance.
pub fn worst(a: &[f32], b: &[f32], rtol: f32, atol: f32) -> (f32, usize) {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let mut worst = (0.0f32, 0usize);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let r = if x.is_finite() { (x - y).abs() / (atol + rtol * y.abs()) } else { f32::INFINITY };
        if r > worst.0 {
            worst = (r, i);
        }
    }
    worst
}

/// Fails, naming the first worst element, unless `got` matches `want` within tolerance.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) {
    let (r, i) = worst(got, want, rtol, atol);
    assert!(
        r <= 1.0,
        "{what}: element {i} is {} but should be {} (error {r:.2}x the tolerance rtol={rtol}, atol={atol})",
        got[i],
        want[i]
    );
}

/// Largest relative error of `got` against `want`, normalised by the largest |want|.
pub fn max_rel_error(got: &[f32], want: &[f32]) -> f32 {
    let scale = want.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-30);
    got.iter().zip(want).fold(0.0f32, |m, (a, b)| m.max((a - b).abs())) / scale
}

/// tests/fixtures/gpt2_tiny (a 2-layer GPT-2 with GPT-2's vocabulary, as transformers saved it)
/// with GPT-2's tokenizer from .tools/gpt2-tokenizer (`bash scripts/gpt2-tokenizer.sh`).
pub fn gpt2_tiny() -> kiln::checkpoint::Checkpoint {
    let root = env!("CARGO_MANIFEST_DIR");
    let tools = format!("{root}/.tools/gpt2-tokenizer");
    let mut files = std::collections::HashMap::new();
    for (name, path) in [
        ("config.json", format!("{root}/tests/fixtures/gpt2_tiny/config.json")),
        ("model.safetensors", format!("{root}/tests/fixtures/gpt2_tiny/model.safetensors")),
        ("vocab.json", format!("{tools}/vocab.json")),
        ("merges.txt", format!("{tools}/merges.txt")),
    ] {
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("cannot read {path}: {e} (run `bash scripts/gpt2-tokenizer.sh`)"));
        files.insert(name.to_string(), bytes);
    }
    let names: Vec<String> = files.keys().cloned().collect();
    kiln::checkpoint::Checkpoint::from_folder("gpt2_tiny", &names, |n| files.get(n).cloned()).unwrap()
}
