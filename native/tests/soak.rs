//! The long run, behind a flag: `KILN_SOAK=1` trains the `tiny` preset on the embedded corpus
//! for 10,000 steps (`KILN_SOAK_STEPS` to change it) with evaluation, samples and a checkpoint
//! every 1,000, and samples the process's resident memory (VmRSS) and the GPU buffers Kiln holds
//! (the step events' `gpu_buffers` and `gpu_bytes`, from wgpu's counters) every 100 steps.
//! Neither may grow after warm-up: the largest figure of the last half of the run must not pass
//! the largest of the warm-up window (steps 1,000 to 2,000) by more than a small margin for RSS
//! (the allocator's arenas) and not at all for the GPU. One line per 1,000 steps goes to stderr;
//! the last results are recorded in RELIABILITY.md. About 35 minutes on lavapipe, 2 cores.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// VmRSS of a process, in KiB, from /proc.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn ten_thousand_tiny_steps_hold_memory_flat() {
    if std::env::var("KILN_SOAK").as_deref() != Ok("1") {
        eprintln!("SKIP: the long run is behind KILN_SOAK=1");
        return;
    }
    let steps: u64 = std::env::var("KILN_SOAK_STEPS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    assert!(steps >= 4000, "KILN_SOAK_STEPS must leave a warm-up window and a second half");
    let dir = std::env::temp_dir().join(format!("kiln-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .env("XDG_RUNTIME_DIR", "/tmp")
        .args(["train", "--preset", "tiny", "--steps", &steps.to_string(), "--json", "--log-every", "100"])
        .args(["--eval-every", "1000", "--sample-every", "1000", "--checkpoint-every", "1000", "--out"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // (step, RSS KiB, GPU buffers, GPU bytes)
    let mut samples: Vec<(u64, u64, u64, u64)> = Vec::new();
    let started = std::time::Instant::now();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line.unwrap()) else { continue };
        if v["event"] != "step" {
            continue;
        }
        let step = v["step"].as_u64().unwrap();
        let rss = rss_kib(pid).expect("the run's /proc status");
        let (buffers, bytes) = (v["gpu_buffers"].as_u64(), v["gpu_bytes"].as_u64());
        let (buffers, bytes) = (buffers.expect("the step event has gpu_buffers"), bytes.expect("and gpu_bytes"));
        samples.push((step, rss, buffers, bytes));
        if step % 1000 == 0 {
            eprintln!(
                "step {step:>6}  {:>6.0} s  RSS {:>7.1} MiB  GPU {buffers} buffers, {:.2} MiB  loss {}",
                started.elapsed().as_secs_f64(),
                rss as f64 / 1024.0,
                bytes as f64 / (1 << 20) as f64,
                v["loss"]
            );
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "the long run failed: {status}");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(samples.last().map(|s| s.0), Some(steps), "the run did not log its last step");
    let max = |from: u64, to: u64, f: fn(&(u64, u64, u64, u64)) -> u64| {
        samples.iter().filter(|s| s.0 >= from && s.0 <= to).map(f).max().unwrap()
    };
    let warm = |f| max(1000, 2000, f);
    let late = |f| max(steps / 2, steps, f);
    let (rss_warm, rss_late) = (warm(|s| s.1), late(|s| s.1));
    eprintln!(
        "RSS: warm-up max {:.1} MiB, second half max {:.1} MiB; GPU bytes: {} then {}; buffers: {} then {}",
        rss_warm as f64 / 1024.0,
        rss_late as f64 / 1024.0,
        warm(|s| s.3),
        late(|s| s.3),
        warm(|s| s.2),
        late(|s| s.2)
    );
    assert!(rss_late <= rss_warm + rss_warm / 20 + 8 * 1024, "RSS grew: {rss_warm} KiB -> {rss_late} KiB");
    assert!(late(|s| s.3) <= warm(|s| s.3), "GPU memory grew");
    assert!(late(|s| s.2) <= warm(|s| s.2), "the number of GPU buffers grew");
}
