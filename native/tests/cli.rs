//! The `kiln` program end to end: bad input gets one line on stderr and exit status 2 with no
//! panic and nothing written; a run checkpoints, samples, evaluates and resumes exactly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln")).args(args).env("XDG_RUNTIME_DIR", "/tmp").output().expect("kiln runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Exit status 2, exactly one line on stderr that mentions `needle`, no panic.
#[track_caller]
fn assert_refused(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "expected exit 2, got {:?}; stderr: {err}", out.status);
    assert!(!err.contains("panicked"), "panicked: {err}");
    let lines: Vec<_> = err.lines().filter(|l| !l.contains("XDG_RUNTIME_DIR")).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {err}");
    assert!(lines[0].to_lowercase().contains(&needle.to_lowercase()), "'{}' does not mention '{needle}'", lines[0]);
}

fn gpu_available() -> bool {
    let ok = kiln(&["info"]).status.success();
    if !ok {
        assert!(std::env::var("REQUIRE_GPU").as_deref() != Ok("1"), "REQUIRE_GPU=1 but kiln info finds no adapter");
        eprintln!("SKIP: no GPU adapter");
    }
    ok
}

const TINY: &[&str] =
    &["--layers", "1", "--heads", "2", "--embd", "16", "--block", "16", "--batch", "4", "--eval-batches", "2"];

#[test]
fn bad_corpus_inputs_are_refused() {
    let dir = scratch("corpus");
    let out_dir = dir.join("run");
    let out = out_dir.to_str().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        (dir.join("missing.txt").to_str().unwrap().to_string(), "cannot read"),
        (write("empty.txt", b""), "empty"),
        (write("binary.txt", b"abc\0\x01\x02def"), "binary"),
        (write("latin1.txt", b"caf\xe9 au lait"), "UTF-8"),
        (write("short.txt", b"too short for a block"), "too short"),
    ];
    for (path, needle) in cases {
        assert_refused(&kiln(&[&["train", "--data", &path, "--out", out], TINY].concat()), needle);
        assert!(!out_dir.exists(), "a refused run left {out} behind");
    }
}

#[test]
fn bad_options_are_refused() {
    let dir = scratch("options");
    let out = dir.join("run");
    let o = out.to_str().unwrap();
    assert_refused(&kiln(&["train", "--preset", "huge", "--out", o]), "unknown preset");
    assert_refused(&kiln(&["train", "--heads", "3", "--embd", "16", "--out", o]), "divide");
    assert_refused(&kiln(&["train", "--lr", "0", "--out", o]), "--lr");
    assert_refused(&kiln(&["train", "--lr=-1e-3", "--out", o]), "--lr");
    assert_refused(&kiln(&["train", "--steps", "0", "--out", o]), "--steps");
    assert_refused(&kiln(&["train", "--steps", "-5", "--out", o]), "--steps");
    assert_refused(&kiln(&["train", "--tokenizer", "bpe:ten", "--out", o]), "bpe:N");
    assert_refused(&kiln(&["train", "--no-such-option"]), "unexpected argument");
    assert!(!out.exists(), "a refused run left files behind");
}

/// `kiln bench --op matmul` names how the product ran: a weight gradient's shape split over K
/// where `--split-k` asks for it, whole otherwise; a target that is not a count is refused.
#[test]
fn bench_op_names_the_variant_and_its_slices_of_k() {
    assert_refused(&kiln(&["bench", "--op", "matmul", "--split-k", "many"]), "split-K");
    if !gpu_available() {
        return;
    }
    let named = ["--matmul", "u8x8:8x8:16", "--norm", "rows", "--attention-rows", "4"];
    let product = ["bench", "--op", "matmul", "--m", "64", "--n", "64", "--k", "1024", "--trans-a"];
    for (split, variant, kernels) in [
        (
            "8",
            r#""variant":"u8x8:8x8:16, K in 8 slices of 128""#,
            r#""kernels":["matmul_unrolled","matmul_split_sum"]"#,
        ),
        ("off", r#""variant":"u8x8:8x8:16""#, r#""kernels":["matmul_unrolled"]"#),
    ] {
        let out = kiln(&[&product[..], &named, &["--split-k", split]].concat());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "--split-k {split}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(variant) && text.contains(kernels), "--split-k {split}: {text}");
    }
}

/// `--epilogue` says whether the products' epilogue has its residual and accumulate compiled in
/// or tests them at run time, and `kiln info` shows which; anything else is refused.
#[test]
fn info_shows_the_named_epilogue() {
    assert_refused(&kiln(&["info", "--epilogue", "inlined"]), "epilogue 'inlined'");
    if !gpu_available() {
        return;
    }
    for (named, shown) in [("tested", "epilogue tested at run time"), ("compiled", "epilogue compiled in")] {
        let out = kiln(&["info", "--epilogue", named]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "--epilogue {named}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(shown), "--epilogue {named}: {text}");
    }
}

#[test]
fn no_adapter_says_what_to_install() {
    // An ICD list with no drivers in it: the Vulkan loader finds no adapter.
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["info"])
        .env("VK_ICD_FILENAMES", "/nonexistent/none.json")
        .env("VK_DRIVER_FILES", "/nonexistent/none.json")
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .unwrap();
    assert_refused(&out, "mesa-vulkan-drivers");
}

fn train_tiny(dir: &Path, steps: &str, extra: &[&str]) -> Output {
    let args = [
        &[
            "train",
            "--steps",
            steps,
            "--out",
            dir.to_str().unwrap(),
            "--json",
            "--log-every",
            "1",
            "--eval-every",
            "5",
            "--sample-every",
            "0",
        ],
        TINY,
        extra,
    ]
    .concat();
    kiln(&args)
}

fn losses(out: &Output) -> Vec<(u64, String)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "step")
        .map(|v| (v["step"].as_u64().unwrap(), v["loss"].to_string()))
        .collect()
}

#[test]
fn resume_is_exact_and_checkpoints_are_checked() {
    if !gpu_available() {
        return;
    }
    let dir = scratch("resume");
    let whole = dir.join("whole");
    let run = train_tiny(&whole, "12", &[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    // The same run stopped after 6 of its 12 steps (as if interrupted after a checkpoint).
    let half = dir.join("half");
    let stopped = train_tiny(&half, "12", &["--stop-after", "6"]);
    assert!(stopped.status.success(), "{}", String::from_utf8_lossy(&stopped.stderr));
    let state = std::fs::read_to_string(half.join("training_state.json")).unwrap();
    assert!(state.contains("\"step\": 6"), "{state}");
    let resumed = kiln(&["train", "--resume", half.to_str().unwrap(), "--json"]);
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let want: Vec<_> = losses(&run).into_iter().filter(|(s, _)| *s > 6).collect();
    assert_eq!(want.len(), 6);
    assert_eq!(losses(&resumed), want, "losses after resuming differ from the uninterrupted run");

    for f in ["config.json", "model.safetensors", "tokenizer.json", "metrics.jsonl", "loss.svg"] {
        assert!(whole.join(f).is_file(), "run folder lacks {f}");
    }
    // Damaged checkpoints: each is refused in one line.
    let ck = whole.to_str().unwrap();
    let broken = dir.join("broken");
    let copy = || {
        let _ = std::fs::remove_dir_all(&broken);
        std::fs::create_dir_all(&broken).unwrap();
        for e in std::fs::read_dir(&whole).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), broken.join(e.file_name())).unwrap();
        }
        broken.to_str().unwrap().to_string()
    };
    let b = copy();
    std::fs::remove_file(broken.join("model.safetensors")).unwrap();
    assert_refused(&kiln(&["sample", "--checkpoint", &b, "--tokens", "5"]), "model.safetensors");
    let b = copy();
    let bytes = std::fs::read(broken.join("model.safetensors")).unwrap();
    std::fs::write(broken.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(&kiln(&["sample", "--checkpoint", &b, "--tokens", "5"]), "truncated or corrupt");
    let b = copy();
    std::fs::write(broken.join("config.json"), b"{not json").unwrap();
    assert_refused(&kiln(&["eval", "--checkpoint", &b, "--data", "/dev/null"]), "config.json");
    let b = copy();
    let cfg = std::fs::read_to_string(broken.join("config.json")).unwrap().replace("\"n_embd\": 16", "\"n_embd\": 32");
    std::fs::write(broken.join("config.json"), cfg).unwrap();
    assert_refused(&kiln(&["sample", "--checkpoint", &b, "--tokens", "5"]), "shape");
    assert_refused(&kiln(&["sample", "--checkpoint", dir.join("nothing").to_str().unwrap()]), "no checkpoint");

    // The checkpoint samples and evaluates.
    let sample = kiln(&["sample", "--checkpoint", ck, "--prompt", "ROMEO:", "--tokens", "20", "--seed", "3"]);
    assert!(sample.status.success(), "{}", String::from_utf8_lossy(&sample.stderr));
    assert!(String::from_utf8_lossy(&sample.stdout).starts_with("ROMEO:"));
    let text = dir.join("eval.txt");
    std::fs::write(&text, kiln_corpus_head()).unwrap();
    let eval = kiln(&["eval", "--checkpoint", ck, "--data", text.to_str().unwrap(), "--json"]);
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    let v: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    let loss = v["loss"].as_f64().unwrap();
    assert!(loss > 1.0 && loss < 4.5, "eval loss {loss}");
}

fn kiln_corpus_head() -> String {
    kiln::corpus::DEFAULT_CORPUS[..20_000].to_string()
}

#[test]
fn a_diverging_run_skips_its_bad_steps_then_stops_with_its_checkpoint_intact() {
    if !gpu_available() {
        return;
    }
    // An absurd learning rate: the first update throws the weights to about 1e30, after which
    // every loss is NaN; each such step is skipped (nothing reaches the weights) and counted, the
    // checkpoints written meanwhile hold the last finite weights, and after 10 the run stops.
    let dir = scratch("diverge");
    let out = train_tiny(&dir, "40", &["--lr", "1e30", "--warmup", "0", "--checkpoint-every", "3"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not finite in each of the last 10 steps") && err.contains("lower --lr"), "{err}");
    assert!(err.contains("the last checkpoint in") && err.contains("is intact"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let steps: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "step")
        .collect();
    assert_eq!(steps[0]["skipped"], 0);
    assert!(steps[0]["loss"].is_number());
    let last = steps.last().unwrap();
    assert_eq!(last["step"], 11, "stopped after 10 skipped steps in a row");
    assert!(last["loss"].is_null(), "a non-finite loss is null in JSON: {last}");
    assert_eq!(last["skipped"], 10, "every step after the first skipped");
    let read = |f: &str| std::fs::read(dir.join(f)).ok();
    let ckpt = kiln::checkpoint::Checkpoint::from_files(read).expect("the last checkpoint loads");
    assert_eq!(ckpt.state.as_ref().map(|s| s.step), Some(9));
    assert!(ckpt.params.iter().flatten().all(|x| x.is_finite()), "a non-finite weight reached the checkpoint");
    let _ = std::fs::remove_dir_all(&dir);
}
