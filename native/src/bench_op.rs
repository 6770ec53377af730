//! `kiln bench --op`: times one operation (a matrix product, attention forward and backward)
//! as training records it, and prints one JSON line per program: milliseconds per run,
//! GFLOP/s, GB/s against the bytes it must move at least, the kernels it launched and, for a
//! product, its variant and slices of K.

use crate::args::{BenchArgs, BenchOp};
use kiln::bench::{OpBench, ProductLayout};
use kiln::gpu::{by_kernel, Gpu};
use serde_json::json;
use std::time::Instant;

/// Wall-clock seconds each timed batch of runs should take at least, for a stable figure.
const TIMED_SECONDS: f64 = 1.0;

pub fn run(a: &BenchArgs, op: BenchOp) -> Result<(), String> {
    let gpu = crate::gpu_open::open()?;
    let benches = match op {
        BenchOp::Matmul => {
            if a.m == 0 || a.n == 0 || a.k == 0 {
                return Err("--m, --n and --k must be at least 1".into());
            }
            let layout = ProductLayout { trans_a: a.trans_a, trans_b: a.trans_b, accumulate: a.accumulate };
            vec![kiln::bench::matmul(&gpu, [a.m, a.n, a.k], layout)]
        }
        BenchOp::Attention => {
            let (b, nh, t) = (a.shape.batch.unwrap_or(16), a.shape.heads.unwrap_or(6), a.shape.block.unwrap_or(256));
            if b == 0 || nh == 0 || t == 0 || a.head_dim == 0 {
                return Err("--batch, --heads, --block and --head-dim must be at least 1".into());
            }
            kiln::bench::attention(&gpu, [b, nh, t, a.head_dim]).into()
        }
    };
    let shape = match op {
        BenchOp::Matmul => json!({"m": a.m, "n": a.n, "k": a.k, "trans_a": a.trans_a, "trans_b": a.trans_b,
            "accumulate": a.accumulate}),
        BenchOp::Attention => json!({"batch": a.shape.batch.unwrap_or(16), "heads": a.shape.heads.unwrap_or(6),
            "block": a.shape.block.unwrap_or(256), "head_dim": a.head_dim}),
    };
    for bench in &benches {
        let secs = time(&gpu, bench)?;
        let per_kernel = pollster::block_on(kiln::gpu::profile(&gpu, &[&bench.program]))?.map(|t| {
            by_kernel(&t).into_iter().map(|(k, ns, _)| json!({"kernel": k, "ms": ns / 1e6})).collect::<Vec<_>>()
        });
        println!(
            "{}",
            json!({"event": "bench_op", "op": bench.name, "shape": shape, "ms": secs * 1e3,
                "gflops": bench.flops / secs / 1e9, "gbps": bench.bytes / secs / 1e9,
                "kernels": bench.kernels, "variant": bench.variant, "kernel_ms": per_kernel,
                "adapter": gpu.to_string()})
        );
    }
    Ok(())
}

/// Seconds per run: one run to compile and warm up, one to size the batch, then enough runs,
/// each its own submit, to fill `TIMED_SECONDS`, waited for together.
fn time(gpu: &Gpu, bench: &OpBench) -> Result<f64, String> {
    let once = || {
        let t = Instant::now();
        bench.program.submit(gpu);
        gpu.wait(); // Sync point: timing.
        t.elapsed().as_secs_f64()
    };
    once();
    let reps = (TIMED_SECONDS / once().max(1e-6)).ceil().clamp(1.0, 1000.0) as usize;
    let started = Instant::now();
    for _ in 0..reps {
        bench.program.submit(gpu);
    }
    gpu.wait(); // Sync point: timing.
    let secs = started.elapsed().as_secs_f64() / reps as f64;
    match gpu.failure() {
        Some(e) => Err(e),
        None => Ok(secs),
    }
}
