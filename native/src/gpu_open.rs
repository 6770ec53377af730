//! Opens the GPU for every command, with the kernel options of the command line: the matmul
//! and LayerNorm variants, attention's rows and the split over K named by --matmul, --norm,
//! --attention-rows and --split-k, or with "auto" those a timed trial chose for this adapter,
//! cached in `tuning.json` under the cache folder (so the trial runs once per adapter and
//! driver; delete the file, or name all four, to override), --epilogue and --checked.

use crate::args::KernelArgs;
use kiln::gpu::{tune, AttentionRows, Epilogue, Gpu, KernelOptions, MatmulVariant, NormVariant, SplitK};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

static ARGS: OnceLock<KernelArgs> = OnceLock::new();

/// Keeps the command line's kernel options for `open` (called once, from main).
pub fn configure(args: KernelArgs) -> Result<(), String> {
    if args.matmul != "auto" {
        MatmulVariant::parse(&args.matmul)?;
    }
    if args.norm != "auto" {
        NormVariant::parse(&args.norm)?;
    }
    if args.attention_rows != "auto" {
        AttentionRows::parse(&args.attention_rows)?;
    }
    if args.split_k != "auto" {
        SplitK::parse(&args.split_k)?;
    }
    if args.epilogue != "auto" {
        Epilogue::parse(&args.epilogue)?;
    }
    let _ = ARGS.set(args);
    Ok(())
}

/// The adapter, with its kernels configured as the command line says.
pub fn open() -> Result<Gpu, String> {
    let gpu = pollster::block_on(Gpu::new())?;
    gpu.set_kernel_options(choice(&gpu).0)?;
    Ok(gpu)
}

/// The kernel options for this adapter and where they come from, in a few words (`kiln info`).
pub fn choice(gpu: &Gpu) -> (KernelOptions, String) {
    let args = ARGS.get().cloned().unwrap_or_default();
    let named_matmul = MatmulVariant::parse(&args.matmul).ok();
    let named_norm = NormVariant::parse(&args.norm).ok();
    let named_rows = AttentionRows::parse(&args.attention_rows).ok();
    let named_split = SplitK::parse(&args.split_k).ok();
    let named_epilogue = Epilogue::parse(&args.epilogue).ok();
    let (tuned, how) = match (named_matmul, named_norm, named_rows, named_split) {
        (Some(_), Some(_), Some(_), Some(_)) => (KernelOptions::default(), "named on the command line".to_string()),
        _ => cached_or_timed(gpu, args.checked),
    };
    // A named matmul kernel serves products of every size.
    let options = KernelOptions {
        norm: named_norm.unwrap_or(tuned.norm),
        attention: named_rows.unwrap_or(tuned.attention),
        split: named_split.unwrap_or(tuned.split),
        epilogue: named_epilogue.unwrap_or(tuned.epilogue),
        checked: args.checked,
        ..named_matmul.map_or(tuned, |v| v.everywhere(tuned))
    };
    (options, how)
}

/// $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln.
fn cache_file() -> Option<PathBuf> {
    let env = |k| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = env("KILN_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("kiln")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/kiln")))?;
    Some(dir.join("tuning.json"))
}

/// The cached choice for this adapter, or a trial's (then cached). A trial that fails, or a
/// cache that cannot be written, leaves the defaults: tuning never stops a command.
fn cached_or_timed(gpu: &Gpu, checked: bool) -> (KernelOptions, String) {
    let key = tune::adapter_key(gpu);
    let path = cache_file();
    let shown = path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let mut cache: serde_json::Map<String, Value> = path
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    if let Some(options) = cache.get(&key).and_then(|v| tune::options_from_json(v, gpu, checked)) {
        return (options, format!("timed trial, cached in {shown}"));
    }
    let origin = Instant::now();
    let now = move || origin.elapsed().as_secs_f64();
    let clock = tune::TrialClock { now: &now, stop: &|| false };
    let Ok(trial) = pollster::block_on(tune::time_candidates(gpu, checked, &clock)) else {
        let options = KernelOptions { checked, ..KernelOptions::untimed(gpu.is_software()) };
        return (options, "defaults (the timed trial failed)".into());
    };
    let options = trial.options(checked);
    let mut entry = tune::options_json(&options);
    entry["trial_ms"] = trial.times_json();
    cache.insert(key, entry);
    let saved = path.as_ref().is_some_and(|p| write_atomically(p, &Value::Object(cache)).is_ok());
    let how = if saved {
        format!("timed trial just now, cached in {shown}")
    } else {
        "timed trial just now (not cached)".into()
    };
    (options, how)
}

/// Writes through a temporary file and a rename, so that concurrent commands never read half
/// a file.
fn write_atomically(path: &PathBuf, value: &Value) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, serde_json::to_string_pretty(value).unwrap_or_default())?;
    std::fs::rename(&tmp, path)
}

/// For the fault test (native/tests/crash.rs): `KILN_TEST_GPU_FAULT=lose@N` destroys the device
/// after step N, `invalid@N` makes a validation error there (a buffer both mapped for reading and
/// for writing, which WebGPU forbids). Unset, it does nothing; no other fault can be provoked on
/// demand on a working adapter.
pub fn test_fault(gpu: &Gpu, step: usize) {
    static FAULT: OnceLock<Option<(String, usize)>> = OnceLock::new();
    let fault = FAULT.get_or_init(|| {
        let v = std::env::var("KILN_TEST_GPU_FAULT").ok()?;
        let (kind, at) = v.split_once('@')?;
        Some((kind.to_string(), at.parse().ok()?))
    });
    match fault {
        Some((kind, at)) if *at == step && kind == "lose" => gpu.device.destroy(),
        Some((kind, at)) if *at == step && kind == "invalid" => {
            let _ = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("deliberately invalid (KILN_TEST_GPU_FAULT)"),
                size: 4,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::MAP_WRITE,
                mapped_at_creation: false,
            });
        }
        _ => {}
    }
}
