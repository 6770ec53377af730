//! The per-adapter trial that picks a matmul variant: every candidate that fits the adapter is
//! compiled and timed on one product, and the fastest wins. The front end supplies the clock
//! (the core has none) and keeps the answer per adapter, so the trial runs once.

use super::{read_bytes, Gpu, KernelOptions, Kernels, MatmulVariant};

/// The key a choice is cached under: adapter, driver and backend, and this build's version (a
/// new build may bring new candidates).
pub fn adapter_key(gpu: &Gpu) -> String {
    let i = &gpu.info;
    format!("{} | {} {} | {:?} | kiln {}", i.name, i.driver, i.driver_info, i.backend, env!("CARGO_PKG_VERSION"))
}

/// Seconds per product of each candidate, fastest first. `now` gives seconds from any origin.
/// CPU adapters time a 256-sided product twice (some tens of milliseconds each natively, a
/// second or two in all on SwiftShader; a 128-sided one was too small to tell the tiles apart:
/// it chose the simple kernel on lavapipe, which is 1.7x slower on 512 and up); GPUs a
/// 1024-sided one, twenty times in one submit. Sync points: one read-back of a word per candidate and run.
pub async fn time_matmul_candidates(
    gpu: &Gpu,
    checked: bool,
    now: &dyn Fn() -> f64,
) -> Result<Vec<(MatmulVariant, f64)>, String> {
    let (side, reps) = if gpu.is_software() { (256, 2) } else { (1024, 20) };
    let mut times = Vec::new();
    for &matmul in MatmulVariant::CANDIDATES.iter().filter(|v| v.fits(&gpu.limits)) {
        let kernels = Kernels::with(gpu, KernelOptions { matmul, checked });
        let bench = crate::bench::matmul_with(gpu, &kernels, [side; 3], false, false);
        // The first run compiles the pipeline and warms the caches.
        bench.program.submit(gpu);
        read_bytes(gpu, &bench.out.buffer, 0, 4).await?;
        let start = now();
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        for _ in 0..reps {
            bench.program.encode(&mut encoder);
        }
        gpu.queue.submit([encoder.finish()]);
        read_bytes(gpu, &bench.out.buffer, 0, 4).await?;
        times.push((matmul, (now() - start) / reps as f64));
    }
    if let Some(e) = gpu.failure() {
        return Err(e);
    }
    times.sort_by(|a, b| a.1.total_cmp(&b.1));
    Ok(times)
}
