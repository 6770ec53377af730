//! Hostile files against the loaders, on the stable toolchain: a seeded mutation fuzzer (flipped
//! and inserted bytes, truncations, inflated length fields and numbers) over a valid checkpoint's
//! files (config.json, model.safetensors, tokenizer.json, training_state.json,
//! optimizer.safetensors), the packed `.kiln` file and a task file. Every input must end in Ok or
//! a clean error: no panic, and no single allocation larger than the input justifies (a counting
//! allocator watches). cargo-fuzz needs a nightly toolchain, which this project's machines cannot
//! fetch; this runs in the test command instead, a few thousand inputs per loader.

use kiln::checkpoint::{Checkpoint, TrainState};
use kiln::config::{ModelConfig, TrainConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, remembering the largest single allocation since the last reset.
struct Counting;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 17
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random change to `bytes`.
fn mutate(bytes: &[u8], rng: &mut Lcg) -> Vec<u8> {
    let mut b = bytes.to_vec();
    match rng.below(7) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(b.len());
                if let Some(x) = b.get_mut(i) {
                    *x ^= 1 << rng.below(8);
                }
            }
        }
        1 => b.truncate(rng.below(b.len())),
        2 => {
            let i = rng.below(b.len() + 1);
            let junk: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
            b.splice(i..i, junk);
        }
        3 if b.len() >= 8 => {
            // A safetensors header length (or any leading length) claiming far more than is there.
            let claims = [u64::MAX, 1 << 40, (b.len() as u64) * 2, 100_000_000_000];
            b[..8].copy_from_slice(&claims[rng.below(claims.len())].to_le_bytes());
        }
        4 => {
            // A number somewhere in JSON text made huge, negative or fractional.
            let digits: Vec<usize> = (0..b.len()).filter(|&i| b[i].is_ascii_digit()).collect();
            if !digits.is_empty() {
                let i = digits[rng.below(digits.len())];
                let with = ["4000000000", "99999999999999999999", "-1", "0", "1e30", "0.5"][rng.below(6)];
                b.splice(i..i + 1, with.bytes());
            }
        }
        5 => {
            let (i, j) = (rng.below(b.len()), rng.below(b.len()));
            let (i, j) = (i.min(j), i.max(j));
            let chunk = b[i..j].to_vec();
            b.splice(i..i, chunk);
        }
        _ => b = Vec::new(),
    }
    b
}

/// A valid checkpoint of a tiny model, with its training state.
fn seed() -> Checkpoint {
    let cfg = ModelConfig { vocab_size: 13, n_layer: 2, n_head: 2, n_embd: 8, block_size: 6 };
    let text = "abcdefghij kl";
    let tok = kiln::tokenizer::Tokenizer::char_level(text).unwrap();
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

/// Runs `load` on `input`; fails on a panic or an allocation beyond `limit` bytes.
fn check<T>(what: &str, size: usize, load: impl FnOnce() -> Result<T, String>) {
    let limit = 64 * size + (16 << 20);
    // The panic hook is global: one check at a time across the tests.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The loader's panic, if any, is kept (not printed) and reported below.
    static PANIC: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());
    std::panic::set_hook(Box::new(|info| *PANIC.lock().unwrap() = info.to_string()));
    LARGEST.store(0, Ordering::Relaxed);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(load));
    let largest = LARGEST.load(Ordering::Relaxed);
    let _ = std::panic::take_hook(); // back to the default hook
    assert!(outcome.is_ok(), "{what}: the loader panicked: {}", PANIC.lock().unwrap());
    assert!(largest <= limit, "{what}: an allocation of {largest} bytes for {size} bytes of input");
}

#[test]
fn checkpoint_files_never_panic_or_overallocate() {
    let files: HashMap<&str, Vec<u8>> = seed().to_files().into_iter().collect();
    let names: Vec<&str> = files.keys().copied().collect();
    let mut rng = Lcg(2026);
    for round in 0..10000 {
        let target = names[round % names.len()];
        let mut bad = files.clone();
        let mutated = mutate(&files[target], &mut rng);
        bad.insert(target, mutated);
        let size: usize = bad.values().map(Vec::len).sum();
        check(&format!("round {round}, {target}"), size, || Checkpoint::from_files(|n| bad.get(n).cloned()));
    }
}

#[test]
fn packed_checkpoints_never_panic_or_overallocate() {
    let packed = seed().to_packed();
    let mut rng = Lcg(7);
    for round in 0..6000 {
        let bad = mutate(&packed, &mut rng);
        check(&format!("packed round {round}"), bad.len(), || Checkpoint::from_packed(&bad));
    }
}

#[test]
fn task_files_never_panic() {
    let good = concat!(
        "{\"prompt\": \"To be\\nPlace:\", \"completion\": \" A room.\"}\n",
        "{\"prompt\": \"Or not\\nGenre:\", \"completion\": \" comedy\", \"choices\": [\" comedy\", \" tragedy\"], \"answer\": 0}\n",
    );
    let mut rng = Lcg(9);
    for round in 0..10000 {
        let bad = mutate(good.as_bytes(), &mut rng);
        let text = String::from_utf8_lossy(&bad).into_owned();
        check(&format!("task round {round}"), bad.len(), || kiln::task::parse_examples(&text, "task.jsonl"));
    }
}

#[test]
fn the_fuzzer_does_change_things() {
    let mut rng = Lcg(1);
    let x = b"{\"a\": 12345678, \"b\": [1, 2, 3]}".to_vec();
    let changed = (0..100).filter(|_| mutate(&x, &mut rng) != x).count();
    assert!(changed > 80, "only {changed} of 100 mutations changed the input");
}

#[test]
fn what_the_fuzzer_found_stays_fixed() {
    // Round 630 of the first run: a tokenizer.json broken inside its decoder made the tokenizers
    // crate panic (an `expect` in its decoder deserializer) instead of erring.
    let good = seed().tokenizer_json;
    let at = good.find("\"decoder\"").expect("the seed has a decoder entry");
    for broken in [
        "\"decoder\": {\"type\": \"Fuse\",, ",
        "\"decoder\": {\"type\": [",
        "\"decoder\": {\"type\": \"Nope\"}, \"x\": ",
    ] {
        let bytes = format!("{}{broken}{}", &good[..at], &good[at..]).into_bytes();
        let mut files: HashMap<&str, Vec<u8>> = seed().to_files().into_iter().collect();
        files.insert("tokenizer.json", bytes.clone());
        check(&format!("decoder {broken}"), bytes.len(), || kiln::tokenizer::Tokenizer::from_json(&bytes));
        let err = Checkpoint::from_files(|n| files.get(n).cloned()).err().expect("refused");
        assert!(err.contains("tokenizer"), "{err}");
    }
}
