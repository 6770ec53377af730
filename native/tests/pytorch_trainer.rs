//! The PyTorch round trip of `examples/pytorch_trainer`: a tiny checkpoint made by `kiln train`
//! is continued for a few steps on the CPU with transformers' Trainer
//! (`continue_training.py`), and the result comes back into Kiln: `kiln eval` reads it, finds a
//! lower loss than before and agrees with PyTorch on it, and `kiln sample` and `kiln train
//! --init` take it. Skipped, saying why, where PyTorch or transformers is not installed (even
//! under REQUIRE_GPU=1: that is about PyTorch, not the GPU); without a GPU adapter it skips as
//! the other GPU tests do.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln")).args(args).env("XDG_RUNTIME_DIR", "/tmp").output().expect("kiln runs")
}

/// `python3` with the environment of a reproducible, offline CPU run.
fn python(args: &[&str]) -> std::io::Result<Output> {
    Command::new("python3")
        .args(args)
        .env("CUDA_VISIBLE_DEVICES", "")
        .env("TOKENIZERS_PARALLELISM", "false")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("PYTHONUNBUFFERED", "1")
        .output()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("native/ has a parent").to_path_buf()
}

fn gpu_available() -> bool {
    let ok = kiln(&["info"]).status.success();
    if !ok {
        assert!(std::env::var("REQUIRE_GPU").as_deref() != Ok("1"), "REQUIRE_GPU=1 but kiln info finds no adapter");
        eprintln!("SKIP: no GPU adapter");
    }
    ok
}

/// A scratch folder under the system's temporary folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("kiln-pytorch-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[track_caller]
fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The last JSON object on stdout whose "event" is `event`.
fn json_event(out: &Output, event: &str) -> serde_json::Value {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == event)
        .unwrap_or_else(|| panic!("no '{event}' line on stdout:\n{}", String::from_utf8_lossy(&out.stdout)))
}

/// `kiln eval --json`'s loss, checked to be finite.
fn kiln_eval_loss(checkpoint: &Path, text: &Path) -> f64 {
    let out = kiln(&["eval", "--checkpoint", checkpoint.to_str().unwrap(), "--data", text.to_str().unwrap(), "--json"]);
    assert_ok(&out, &format!("kiln eval --checkpoint {}", checkpoint.display()));
    let loss = json_event(&out, "eval")["loss"].as_f64().expect("eval's loss is a number");
    assert!(loss.is_finite(), "kiln eval gave a loss of {loss}");
    loss
}

#[test]
fn kiln_checkpoint_continues_in_pytorch_trainer_and_comes_back() {
    match python(&["-c", "import torch, transformers"]) {
        Ok(out) if out.status.success() => {}
        _ => {
            eprintln!("SKIP: PyTorch/transformers not installed (pip install torch transformers)");
            return;
        }
    }
    if !gpu_available() {
        return;
    }
    let started = std::time::Instant::now();
    let root = repo_root();
    let scratch = Scratch::new("roundtrip");
    let dir = &scratch.0;

    // The first 20 KB of Shakespeare.
    let corpus = std::fs::read_to_string(root.join("data/shakespeare.txt")).expect("data/shakespeare.txt");
    let mut end = 20_000.min(corpus.len());
    while !corpus.is_char_boundary(end) {
        end -= 1;
    }
    let text = dir.join("text.txt");
    std::fs::write(&text, &corpus[..end]).unwrap();
    let t = text.to_str().unwrap();

    // A tiny Kiln checkpoint.
    let run = dir.join("kiln_run");
    let train = kiln(&[
        "train",
        "--data",
        t,
        "--steps",
        "2",
        "--layers",
        "1",
        "--heads",
        "2",
        "--embd",
        "32",
        "--block",
        "32",
        "--batch",
        "2",
        "--eval-every",
        "1000",
        "--sample-every",
        "0",
        "--json",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert_ok(&train, "kiln train");
    let kiln_before = kiln_eval_loss(&run, &text);

    // Five steps of transformers' Trainer on the CPU.
    let script = root.join("examples/pytorch_trainer/continue_training.py");
    let torch_out = dir.join("torch_out");
    let cont = python(&[
        script.to_str().unwrap(),
        "--checkpoint",
        run.to_str().unwrap(),
        "--data",
        t,
        "--out",
        torch_out.to_str().unwrap(),
        "--steps",
        "5",
        "--batch",
        "8",
        "--warmup",
        "0",
        "--log-every",
        "1",
        "--cpu",
        "--json",
        "--disable_tqdm",
        "true",
    ])
    .expect("python3 runs");
    assert_ok(&cont, "continue_training.py");
    let end = json_event(&cont, "end");
    let (before, after) = (end["val_loss_before"].as_f64().unwrap(), end["val_loss_after"].as_f64().unwrap());
    eprintln!(
        "PyTorch Trainer: validation loss {before:.4} -> {after:.4} in {} steps (mean training loss {:.4})",
        end["steps"],
        end["train_loss"].as_f64().unwrap_or(f64::NAN)
    );
    assert_eq!(end["steps"], 5, "{end}");
    assert!(before.is_finite() && after.is_finite() && after < before, "Trainer's loss did not fall: {end}");
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(torch_out.join(f).is_file(), "the continued folder lacks {f}");
    }
    for f in ["training_state.json", "optimizer.safetensors"] {
        assert!(!torch_out.join(f).exists(), "the continued folder has a stale {f}");
    }

    // Back in Kiln: it loads, the trained weights are there (lower loss than the input
    // checkpoint's), and Kiln's loss is PyTorch's on the same folder.
    let kiln_after = kiln_eval_loss(&torch_out, &text);
    eprintln!("kiln eval: loss {kiln_before:.4} (Kiln checkpoint) -> {kiln_after:.4} (after PyTorch)");
    assert!(kiln_after < kiln_before - 0.01, "the continued checkpoint's loss {kiln_after} is not below {kiln_before}");
    let check = python(&[
        root.join("scripts/check_transformers.py").to_str().unwrap(),
        torch_out.to_str().unwrap(),
        "--data",
        t,
        "--compare",
        &kiln_after.to_string(),
    ])
    .expect("python3 runs");
    assert_ok(&check, "check_transformers.py --compare (Kiln's loss vs transformers' on the continued folder)");

    let sample = kiln(&["sample", "--checkpoint", torch_out.to_str().unwrap(), "--prompt", "ROMEO:", "--tokens", "10"]);
    assert_ok(&sample, "kiln sample");
    assert!(String::from_utf8_lossy(&sample.stdout).starts_with("ROMEO:"));
    let back = dir.join("back");
    let again = kiln(&[
        "train",
        "--init",
        torch_out.to_str().unwrap(),
        "--data",
        t,
        "--steps",
        "2",
        "--batch",
        "2",
        "--eval-every",
        "1000",
        "--sample-every",
        "0",
        "--json",
        "--out",
        back.to_str().unwrap(),
    ]);
    assert_ok(&again, "kiln train --init (the continued folder)");
    eprintln!("round trip in {:.1}s", started.elapsed().as_secs_f64());
}
