//! The per-adapter trial that picks kernel variants: every matmul candidate that fits the
//! adapter, and both LayerNorm variants, compiled and timed, the fastest of each kind winning.
//! The front end supplies the clock (the core has none) and keeps the answer per adapter, so
//! the trial runs once.

use super::{read_bytes, Gpu, KernelOptions, Kernels, MatmulVariant, NormVariant};
use crate::bench::OpBench;

/// The key a choice is cached under: adapter, driver and backend, and this build's version (a
/// new build may bring new candidates).
pub fn adapter_key(gpu: &Gpu) -> String {
    let i = &gpu.info;
    format!("{} | {} {} | {:?} | kiln {}", i.name, i.driver, i.driver_info, i.backend, env!("CARGO_PKG_VERSION"))
}

/// Seconds per run of each candidate, fastest first.
pub struct Trial {
    pub matmul: Vec<(MatmulVariant, f64)>,
    pub norm: Vec<(NormVariant, f64)>,
}

impl Trial {
    /// The winners (the defaults where a kind had no candidate).
    pub fn options(&self, checked: bool) -> KernelOptions {
        let d = KernelOptions::default();
        KernelOptions {
            matmul: self.matmul.first().map_or(d.matmul, |c| c.0),
            norm: self.norm.first().map_or(d.norm, |c| c.0),
            checked,
        }
    }
}

/// Times the candidates. `now` gives seconds from any origin. CPU adapters time a 256-sided
/// product once after its warm-up (some milliseconds natively, 50 to 150 ms on SwiftShader; a
/// 128-sided one was too small to tell the tiles apart: it chose the simple kernel on lavapipe,
/// which is 1.7x slower on 512 and up) and LayerNorm on 1024 rows of 128 channels; GPUs a
/// 1024-sided product and 16384 rows of 768, twenty times each in one submit.
/// Sync points: a read-back of one word after each warm-up and each timed batch.
pub async fn time_candidates(gpu: &Gpu, checked: bool, now: &dyn Fn() -> f64) -> Result<Trial, String> {
    let software = gpu.is_software();
    let (side, reps) = if software { (256, 1) } else { (1024, 20) };
    let (rows, channels) = if software { (1024, 128) } else { (16384, 768) };
    let base = KernelOptions { checked, ..KernelOptions::default() };
    let mut matmul = Vec::new();
    for &v in MatmulVariant::CANDIDATES.iter().filter(|v| v.fits(&gpu.limits)) {
        let kernels = Kernels::with(gpu, KernelOptions { matmul: v, ..base });
        let bench = crate::bench::matmul_with(gpu, &kernels, [side; 3], false, false);
        matmul.push((v, time(gpu, &bench, reps, now).await?));
    }
    let mut norm = Vec::new();
    for &v in NormVariant::CANDIDATES {
        let kernels = Kernels::with(gpu, KernelOptions { norm: v, ..base });
        let bench = crate::bench::layernorm_with(gpu, &kernels, rows, channels);
        norm.push((v, time(gpu, &bench, reps, now).await?));
    }
    if let Some(e) = gpu.failure() {
        return Err(e);
    }
    matmul.sort_by(|a, b| a.1.total_cmp(&b.1));
    norm.sort_by(|a, b| a.1.total_cmp(&b.1));
    Ok(Trial { matmul, norm })
}

/// Seconds per run: one run to compile and warm up, then `reps` in one submit.
async fn time(gpu: &Gpu, bench: &OpBench, reps: usize, now: &dyn Fn() -> f64) -> Result<f64, String> {
    bench.program.submit(gpu);
    read_bytes(gpu, &bench.out.buffer, 0, 4).await?;
    let start = now();
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    for _ in 0..reps {
        bench.program.encode(&mut encoder);
    }
    gpu.queue.submit([encoder.finish()]);
    read_bytes(gpu, &bench.out.buffer, 0, 4).await?;
    Ok((now() - start) / reps as f64)
}
