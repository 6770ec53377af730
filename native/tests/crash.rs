//! Crash safety: `kiln train` (and `kiln finetune`) killed with SIGKILL at random moments, 50
//! times and more, with a checkpoint every step so that many kills land in a checkpoint write. After
//! each kill the run folder must resume, and the resumed run must log the same losses, bit for
//! bit, as a run that was never stopped; a folder killed before its first checkpoint was complete
//! must say so in one line rather than load something half written. And GPU faults: a lost
//! device or a validation error mid-run ends the run in one line with its last checkpoint intact.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const TINY: &[&str] = &["--layers", "1", "--heads", "2", "--embd", "16", "--block", "16", "--batch", "4"];
const STEPS: u64 = 100;
/// Each stage of a checkpoint write (each file, the journal, each rename) is stretched by this
/// much (KILN_TEST_CHECKPOINT_PAUSE_MS), so that random kills land in all of them.
const PAUSE_MS: &str = "15";

fn kiln() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
    c.env("XDG_RUNTIME_DIR", "/tmp").env("KILN_TEST_CHECKPOINT_PAUSE_MS", PAUSE_MS);
    c
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-crash-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn gpu_available() -> bool {
    let ok = kiln().arg("info").output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var("REQUIRE_GPU").as_deref() != Ok("1"), "REQUIRE_GPU=1 but kiln info finds no adapter");
        eprintln!("SKIP: no GPU adapter");
    }
    ok
}

/// A fresh run's arguments: every step logged and checkpointed.
fn fresh(dir: &Path, first: &[&str]) -> Vec<String> {
    let common = ["--steps", "100", "--json", "--log-every", "1", "--eval-every", "0", "--sample-every", "0"];
    let mut a: Vec<String> = first.iter().map(|s| s.to_string()).collect();
    a.extend(common.iter().chain(&["--checkpoint-every", "1", "--out"]).map(|s| s.to_string()));
    a.push(dir.display().to_string());
    a
}

/// (step, loss as printed) of each step event.
fn step_of(line: &str) -> Option<(u64, String)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    (v["event"] == "step").then(|| (v["step"].as_u64().unwrap(), v["loss"].to_string()))
}

/// Tiny deterministic generator for the kill times.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Whether a kill left a checkpoint write under way: its temporary files or its journal.
fn mid_write(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .is_ok_and(|entries| entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).any(|n| n.starts_with('.')))
}

/// Kills the runs of `first` (train or finetune arguments before the common ones) `kills` times:
/// a fresh run after a random time, then each resumed run right after it has proved its first
/// two losses equal the uninterrupted run's, plus a random time. Returns (kills, kills that left
/// a checkpoint write under way).
fn kill_and_resume(name: &str, first: &[&str], kills: usize, seed: u64) -> (usize, usize) {
    let reference_dir = scratch(&format!("{name}-reference"));
    let out = kiln().args(fresh(&reference_dir, first)).output().unwrap();
    assert!(out.status.success(), "reference run: {}", String::from_utf8_lossy(&out.stderr));
    let reference: std::collections::HashMap<u64, String> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(step_of).collect();
    assert_eq!(reference.len() as u64, STEPS);

    let dir = scratch(name);
    let mut rng = Lcg(seed);
    let (mut done, mut during_write, mut verified) = (0, 0, 0);
    while done < kills {
        let resuming = dir.exists();
        let mut cmd = kiln();
        if resuming {
            cmd.args([first[0], "--resume", dir.to_str().unwrap(), "--json"]);
        } else {
            cmd.args(fresh(&dir, first));
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        if resuming {
            // The resumed run's first two losses must be the uninterrupted run's.
            let mut checked = 0;
            let mut resumed_at = None;
            while checked < 2 {
                let Some(Ok(line)) = lines.next() else { break };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["event"] == "resume" {
                        resumed_at = v["step"].as_u64();
                    }
                }
                if let Some((step, loss)) = step_of(&line) {
                    assert_eq!(Some(&loss), reference.get(&step), "{name}: step {step} after resuming differs");
                    checked += 1;
                }
            }
            if checked < 2 {
                // It ended without two steps: finished, or refused to resume.
                let status = child.wait().unwrap();
                let mut err = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
                if status.success() {
                    assert!(resumed_at.unwrap_or(0) + 2 > STEPS, "{name}: ended early at {resumed_at:?}: {err}");
                } else {
                    // Only a folder that never finished its first checkpoint may refuse, in one line.
                    assert_eq!(status.code(), Some(2), "{name}: {err}");
                    assert_eq!(err.trim().lines().count(), 1, "{name}: {err}");
                    assert!(!err.contains("panicked"), "{name}: {err}");
                    assert!(
                        !dir.join("training_state.json").exists(),
                        "{name}: a whole checkpoint failed to load: {err}"
                    );
                }
                let _ = std::fs::remove_dir_all(&dir); // start the next run afresh
                continue;
            }
            verified += 1;
        }
        std::thread::sleep(Duration::from_millis(rng.below(if resuming { 600 } else { 3000 })));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        done += 1;
        during_write += mid_write(&dir) as usize;
    }
    eprintln!("{name}: {done} kills, {during_write} during a checkpoint write, {verified} resumes checked");
    assert!(verified * 3 >= kills, "{name}: too few resumes were checked ({verified})");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&reference_dir);
    (done, during_write)
}

#[test]
fn killed_training_resumes_to_the_same_losses() {
    if !gpu_available() {
        return;
    }
    let (kills, during_write) = kill_and_resume("train", &[&["train"][..], TINY].concat(), 50, 11);
    assert!(kills >= 50);
    assert!(during_write >= 5, "only {during_write} kills landed in a checkpoint write: the test did not test that");
}

#[test]
fn killed_finetuning_resumes_to_the_same_losses() {
    if !gpu_available() {
        return;
    }
    let base = scratch("finetune-base");
    let out = kiln()
        .args(["train", "--steps", "2", "--eval-every", "0", "--sample-every", "0", "--out", base.to_str().unwrap()])
        .args(TINY)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let task = scratch("finetune-task.jsonl");
    let lines: String =
        (0..40).map(|i| format!("{{\"prompt\": \"line {i} says\", \"completion\": \" the {}\"}}\n", i % 3)).collect();
    std::fs::write(&task, lines).unwrap();
    let first = ["finetune", "--checkpoint", base.to_str().unwrap(), "--task", task.to_str().unwrap(), "--batch", "4"];
    kill_and_resume("finetune", &first, 12, 12);
    let _ = std::fs::remove_dir_all(&base);
    let _ = std::fs::remove_file(&task);
}

/// A lost device (`lose`) or a validation error (`invalid`), provoked after step 15 of 30 with a
/// checkpoint every 10 steps: the run ends with one line that says what happened and how to go
/// on, the folder still holds step 10's checkpoint, and resuming from it logs the same losses as
/// a run that met no fault.
#[test]
fn a_gpu_fault_ends_the_run_in_one_line_and_its_checkpoint_resumes() {
    if !gpu_available() {
        return;
    }
    let args = |dir: &Path| {
        let mut a = fresh(dir, &[&["train"][..], TINY].concat());
        let every = a.iter().position(|s| s == "--checkpoint-every").unwrap();
        a[every + 1] = "10".into();
        let steps = a.iter().position(|s| s == "--steps").unwrap();
        a[steps + 1] = "30".into();
        a
    };
    let losses =
        |stdout: &[u8]| -> Vec<(u64, String)> { String::from_utf8_lossy(stdout).lines().filter_map(step_of).collect() };
    let reference_dir = scratch("fault-reference");
    let out = kiln().args(args(&reference_dir)).output().unwrap();
    assert!(out.status.success(), "reference run: {}", String::from_utf8_lossy(&out.stderr));
    let reference = losses(&out.stdout);
    assert_eq!(reference.len(), 30);
    for (fault, what) in [("lose@15", "device was lost"), ("invalid@15", "GPU error")] {
        let dir = scratch(&format!("fault-{fault}"));
        let out = kiln().args(args(&dir)).env("KILN_TEST_GPU_FAULT", fault).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{fault}: the run went on after the fault");
        assert_eq!(err.trim().lines().count(), 1, "{fault}: {err}");
        assert!(err.contains(what) && err.contains("--resume"), "{fault}: {err}");
        assert!(!err.contains("panicked"), "{fault}: {err}");
        // Steps before the fault were logged as usual (step 15's own, or the next, is where the
        // run notices it, depending on when wgpu reports it); nothing after it.
        let logged = losses(&out.stdout);
        assert!((14..=16).contains(&logged.len()), "{fault}: {} steps logged", logged.len());
        assert_eq!(logged, reference[..logged.len()], "{fault}");
        let state = std::fs::read_to_string(dir.join("training_state.json")).unwrap();
        let state: serde_json::Value = serde_json::from_str(&state).unwrap();
        assert_eq!(state["step"], 10, "{fault}: the folder should hold step 10's checkpoint");
        let out = kiln().args(["train", "--resume", dir.to_str().unwrap(), "--json"]).output().unwrap();
        assert!(out.status.success(), "{fault}: resuming: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(losses(&out.stdout), reference[10..], "{fault}: the resumed run differs");
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&reference_dir);
}
