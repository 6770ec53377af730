//! Hostile files against the loaders, on the stable toolchain: a seeded mutation fuzzer (flipped
//! and inserted bytes, truncations, inflated length fields and numbers) over a valid checkpoint's
//! files (config.json, model.safetensors, tokenizer.json, training_state.json,
//! optimizer.safetensors), the packed `.kiln` file, a task file and a LoRA adapter folder. Every
//! input must end in Ok or
//! a clean error: no panic, and no single allocation larger than the input justifies (a counting
//! allocator watches). The coverage-guided pass is cargo-fuzz's (scripts/fuzz.sh, fuzz/): this
//! one is seeded and repeatable, and it keeps the corpus both start from (tests/fuzz/corpus).

use kiln::checkpoint::Checkpoint;
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

/// The seed checkpoint and LoRA run, shared with the cargo-fuzz targets.
#[path = "../fuzz/fuzz_targets/common.rs"]
mod seeds;
use seeds::seed;

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

/// Mutation rounds: the suite's short pass, times $KILN_FUZZ_SCALE for a long run.
fn rounds(short: usize) -> usize {
    short * std::env::var("KILN_FUZZ_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

/// At most this many inputs are kept per loader and file: the corpus stays small in the repo.
const KEEP_PER_FILE: usize = 8;

/// FNV-1a, to name kept inputs by their content.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// Fuzzes one loader over a set of named files (one file changed per round): first every input
/// kept in `tests/fuzz/corpus/<loader>/<file>/`, then `short` rounds (see `rounds`) of mutations
/// of the seed or of a kept input. With KILN_FUZZ_KEEP=1 an input whose outcome (the error
/// message, digits masked) no earlier input had is added to the corpus: a long run's
/// interesting inputs, replayed by every short one. Returns how many kept inputs it replayed.
fn fuzz(
    loader: &str,
    seed: HashMap<&str, Vec<u8>>,
    short: usize,
    rng_seed: u64,
    load: impl Fn(&HashMap<&str, Vec<u8>>) -> Result<(), String>,
) -> usize {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus").join(loader);
    let keep = std::env::var("KILN_FUZZ_KEEP").as_deref() == Ok("1");
    let mut names: Vec<&str> = seed.keys().copied().collect();
    names.sort();
    let mut kept: Vec<(&str, Vec<u8>)> = Vec::new();
    for &name in &names {
        let Ok(entries) = std::fs::read_dir(root.join(name)) else { continue };
        let mut paths: Vec<_> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        paths.sort();
        kept.extend(paths.iter().map(|p| (name, std::fs::read(p).unwrap())));
    }
    let replayed = kept.len();
    let mut seen = std::collections::HashSet::new();
    let mut outcome = |files: &HashMap<&str, Vec<u8>>, what: &str| {
        let size: usize = files.values().map(Vec::len).sum();
        let mut result = Ok(());
        check(what, size, || {
            result = load(files);
            Ok(())
        });
        // A coarse outcome: the message's first words, less names and numbers (which vary with
        // every input and would make each one look new).
        let key = match result {
            Ok(()) => "ok".to_string(),
            Err(e) => {
                let plain = |w: &&str| !w.contains(|c: char| c.is_ascii_digit() || "`'\"".contains(c));
                e.split_whitespace().filter(plain).take(7).collect::<Vec<_>>().join(" ")
            }
        };
        seen.insert(key)
    };
    for (i, (name, bytes)) in kept.iter().enumerate() {
        let mut files = seed.clone();
        files.insert(name, bytes.clone());
        outcome(&files, &format!("{loader}: kept input {i} ({name})"));
    }
    let mut rng = Lcg(rng_seed);
    for round in 0..rounds(short) {
        let (name, from) = match rng.below(2) {
            0 if !kept.is_empty() => {
                let (name, bytes) = &kept[rng.below(kept.len())];
                (*name, bytes.clone())
            }
            _ => {
                let name = names[round % names.len()];
                (name, seed[name].clone())
            }
        };
        let mut files = seed.clone();
        let mutated = mutate(&from, &mut rng);
        files.insert(name, mutated.clone());
        let new = outcome(&files, &format!("{loader}: round {round}, {name}"));
        let dir = root.join(name);
        if new && keep && std::fs::read_dir(&dir).map_or(0, |d| d.count()) < KEEP_PER_FILE {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{:016x}", fnv(&mutated))), &mutated).unwrap();
        }
    }
    replayed
}

#[test]
fn checkpoint_files_never_panic_or_overallocate() {
    let files: HashMap<&str, Vec<u8>> = seed().to_files().into_iter().collect();
    fuzz("checkpoint", files, 10000, 2026, |f| Checkpoint::from_files(|n| f.get(n).cloned()).map(drop));
}

#[test]
fn packed_checkpoints_never_panic_or_overallocate() {
    let files = HashMap::from([("model.kiln", seed().to_packed())]);
    fuzz("packed", files, 6000, 7, |f| Checkpoint::from_packed(&f["model.kiln"]).map(drop));
}

#[test]
fn task_files_never_panic() {
    let good = concat!(
        "{\"prompt\": \"To be\\nPlace:\", \"completion\": \" A room.\"}\n",
        "{\"prompt\": \"Or not\\nGenre:\", \"completion\": \" comedy\", \"choices\": [\" comedy\", \" tragedy\"], \"answer\": 0}\n",
    );
    let files = HashMap::from([("task.jsonl", good.as_bytes().to_vec())]);
    fuzz("task", files, 10000, 9, |f| {
        kiln::task::parse_examples(&String::from_utf8_lossy(&f["task.jsonl"]), "task.jsonl").map(drop)
    });
}

/// A LoRA run's folder as Kiln writes it (PEFT's adapter_model.safetensors and
/// adapter_config.json, with config.json, tokenizer.json and the training state).
#[test]
fn lora_adapter_files_never_panic_or_overallocate() {
    let files: HashMap<&str, Vec<u8>> = seeds::lora_seed().into_iter().collect();
    assert!(kiln::lora::LoraRun::from_files(|n| files.get(n).cloned()).is_ok(), "the seed itself loads");
    fuzz("lora", files, 8000, 31, |f| kiln::lora::LoraRun::from_files(|n| f.get(n).cloned()).map(drop));
}

/// The kept corpus is there and replayed: a test that fuzzes only fresh mutations would not
/// notice it had gone.
#[test]
fn the_kept_corpus_is_replayed() {
    let files: HashMap<&str, Vec<u8>> = seed().to_files().into_iter().collect();
    let replayed = fuzz("checkpoint", files, 0, 1, |f| Checkpoint::from_files(|n| f.get(n).cloned()).map(drop));
    assert!(replayed >= 20, "only {replayed} kept checkpoint inputs in tests/fuzz/corpus/checkpoint");
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
