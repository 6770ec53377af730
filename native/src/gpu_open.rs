//! Opens the GPU for every command, with the kernel options of the command line: the matmul
//! variant named by --matmul, or with "auto" the one a timed trial chose for this adapter,
//! cached in `tuning.json` under the cache folder (so the trial runs once per adapter and
//! driver; delete the file, or name a variant, to override), and --checked.

use crate::args::KernelArgs;
use kiln::gpu::{Gpu, KernelOptions, MatmulVariant};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

static ARGS: OnceLock<KernelArgs> = OnceLock::new();

/// Keeps the command line's kernel options for `open` (called once, from main).
pub fn configure(args: KernelArgs) -> Result<(), String> {
    if args.matmul != "auto" {
        MatmulVariant::parse(&args.matmul)?;
    }
    let _ = ARGS.set(args);
    Ok(())
}

/// The adapter, with its kernels configured as the command line says.
pub fn open() -> Result<Gpu, String> {
    let gpu = pollster::block_on(Gpu::new())?;
    let args = ARGS.get().cloned().unwrap_or_default();
    let matmul = match args.matmul.as_str() {
        "auto" | "" => cached_or_timed(&gpu, args.checked).0,
        s => MatmulVariant::parse(s)?,
    };
    gpu.set_kernel_options(KernelOptions { matmul, checked: args.checked })?;
    Ok(gpu)
}

/// Where the choice comes from, for `kiln info`: the variant and a few words.
pub fn matmul_choice(gpu: &Gpu) -> (MatmulVariant, String) {
    let args = ARGS.get().cloned().unwrap_or_default();
    match args.matmul.as_str() {
        "auto" | "" => cached_or_timed(gpu, args.checked),
        s => (MatmulVariant::parse(s).unwrap_or(MatmulVariant::DEFAULT), "named by --matmul".into()),
    }
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
/// cache that cannot be written, leaves the default: tuning never stops a command.
fn cached_or_timed(gpu: &Gpu, checked: bool) -> (MatmulVariant, String) {
    let key = kiln::gpu::tune::adapter_key(gpu);
    let path = cache_file();
    let mut cache: serde_json::Map<String, serde_json::Value> = path
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let cached = cache.get(&key).and_then(|v| v["matmul"].as_str()).and_then(|s| MatmulVariant::parse(s).ok());
    if let Some(v) = cached.filter(|v| v.fits(&gpu.limits)) {
        return (v, format!("timed trial, cached in {}", path.map(|p| p.display().to_string()).unwrap_or_default()));
    }
    let origin = Instant::now();
    let now = move || origin.elapsed().as_secs_f64();
    let Ok(times) = pollster::block_on(kiln::gpu::tune::time_matmul_candidates(gpu, checked, &now)) else {
        return (MatmulVariant::DEFAULT, "default (the timed trial failed)".into());
    };
    let Some(&(best, _)) = times.first() else { return (MatmulVariant::DEFAULT, "default".into()) };
    let ms: serde_json::Map<_, _> = times.iter().map(|(v, s)| (v.to_string(), serde_json::json!(s * 1e3))).collect();
    cache.insert(key, serde_json::json!({"matmul": best.to_string(), "trial_ms": ms}));
    let saved = path.as_ref().is_some_and(|p| write_atomically(p, &serde_json::Value::Object(cache)).is_ok());
    let how = if saved { "timed trial just now, cached" } else { "timed trial just now (not cached)" };
    (best, how.into())
}

/// Writes through a temporary file and a rename, so that concurrent commands never read half
/// a file.
fn write_atomically(path: &PathBuf, value: &serde_json::Value) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, serde_json::to_string_pretty(value).unwrap_or_default())?;
    std::fs::rename(&tmp, path)
}
