//! The per-adapter trial that picks kernel variants: every matmul candidate that fits the
//! adapter (for three size classes), the LayerNorm variants it can run, the flash attention
//! kernels' rows an invocation and the split over K, compiled and timed, the fastest of each
//! kind winning.
//! The front end supplies the clock (the core has none) and keeps the answer per adapter, so
//! the trial runs once.

use super::{AttentionRows, Epilogue, Gpu, Kernel, KernelOptions, Kernels, MatmulVariant, NormVariant, SplitK};
use crate::bench::OpBench;

/// Raise when `time_candidates` changes what it times or how it chooses: cached choices made
/// by the old rules are then timed again.
const TRIAL_REVISION: u32 = 4;

/// The key a choice is cached under: adapter, driver and backend, this build's version and a
/// fingerprint of the candidates and their sources (a build with other or changed candidates
/// runs its own trial).
pub fn adapter_key(gpu: &Gpu) -> String {
    let i = &gpu.info;
    // Each candidate's name and the source it compiles (the generated ones included), the
    // LayerNorm and flash attention kernels with attention's candidates, and the trial's own
    // revision (its shapes and rules).
    let mut text = format!("trial {TRIAL_REVISION}");
    for v in MatmulVariant::CANDIDATES {
        text.push_str(&format!("{v}\n{}", v.source()));
    }
    for k in NormVariant::CANDIDATES.iter().flat_map(|v| [v.launch(1).0, v.launch(1).1]) {
        text.push_str(k.source());
    }
    for k in [Kernel::AttentionForwardFlash, Kernel::AttentionBackwardDq, Kernel::AttentionBackwardDkv] {
        text.push_str(k.source());
    }
    text.push_str(&format!("{:?} {:?}", AttentionRows::CANDIDATES, SplitK::CANDIDATES));
    text.push_str(Kernel::MatmulSplitSum.source());
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let print = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    let version = env!("CARGO_PKG_VERSION");
    format!(
        "{} | {} {} | {:?} | kiln {version} | candidates {:08x}",
        i.name,
        i.driver,
        i.driver_info,
        i.backend,
        print >> 32
    )
}

/// What `time_candidates` reports when its `stop` said so.
pub const STOPPED: &str = "the kernel trial was stopped";

/// The front end's clock (seconds from any origin) and its request to stop the trial.
pub struct TrialClock<'a> {
    pub now: &'a dyn Fn() -> f64,
    pub stop: &'a dyn Fn() -> bool,
}

/// Seconds per run of each candidate, fastest first.
pub struct Trial {
    /// On a product of the middle class (see `time_candidates`), and on a small one.
    pub matmul: Vec<(MatmulVariant, f64)>,
    pub matmul_small: Vec<(MatmulVariant, f64)>,
    /// On a product of at least `LARGE_MATMUL_WORK`: only the middle class's fastest.
    pub matmul_large: Vec<(MatmulVariant, f64)>,
    pub norm: Vec<(NormVariant, f64)>,
    /// Attention forward and backward together.
    pub attention: Vec<(AttentionRows, f64)>,
    /// A linear layer's three products with the product classes' winners, its weight gradient
    /// split over K (or not) as each candidate says.
    pub split: Vec<(SplitK, f64)>,
}

impl Trial {
    /// The winners (the defaults where a kind had no candidate).
    pub fn options(&self, checked: bool) -> KernelOptions {
        let d = KernelOptions::default();
        KernelOptions {
            matmul: self.matmul.first().map_or(d.matmul, |c| c.0),
            matmul_small: self.matmul_small.first().map_or(d.matmul_small, |c| c.0),
            matmul_large: self.matmul_large.first().map_or(d.matmul_large, |c| c.0),
            norm: self.norm.first().map_or(d.norm, |c| c.0),
            attention: self.attention.first().map_or(d.attention, |c| c.0),
            split: self.split.first().map_or(d.split, |c| c.0),
            epilogue: d.epilogue,
            checked,
        }
    }
}

/// Times the candidates. `clock.now` gives seconds from any origin. Matrix products come in three
/// classes (see `SMALL_MATMUL_WORK` and `LARGE_MATMUL_WORK`). Small ones are timed on the three
/// products of a 64-channel model's q,k,v projection over 1024 rows (forward, input and weight
/// gradients: K 64, 192 and 1024), run one after the other as a step runs them: a single product
/// repeated chose a kernel that trained `tiny` at 8346 tokens/s on lavapipe where another gave
/// 10600-10925 (lavapipe pays a per-dispatch cost for some kernels and sizes when one product is
/// repeated, which a step's mix does not). The middle class on (2048 x 128) @ (128 x 384) on CPU
/// adapters (a 128-channel model's q,k,v projection; a 128-sided product was too small to tell
/// the tiles apart on lavapipe), 1024 x 1024 x 256 on GPUs. Large ones on 1024 x 1024 x 512 on
/// CPU adapters, 2048 x 2048 x 1024 on GPUs, only for the candidates within 2x of the middle
/// class's best (a large product takes seconds on SwiftShader, and until its trial ends the page
/// trains with the untimed defaults). LayerNorm runs on 1024 rows of 128 channels (16384 of 768
/// on a GPU); attention, forward and backward, on 2 x 4 heads of 256 rows and 64 channels (8
/// workgroups at 4 rows an invocation; on a GPU 4 x 12 heads of 1024, GPT-2's). The split over
/// K on a linear layer's three products with the products' winners (see below). CPU adapters
/// time up to three rounds of one run (two for small products) after the warm-up and keep the
/// fastest (single runs chose differently from one trial to the next on lavapipe), a candidate
/// far behind after the first stopping there (see `time_all`), and one round for large
/// products; GPUs one round of twenty runs in one submit, and large products three rounds of
/// one run (a slow candidate's twenty could trip a watchdog on a small GPU).
/// Sync points: a read-back of one word after each warm-up and each timed round.
///
/// `stop` is asked before each candidate's program: once it says true the trial ends with
/// `Err(STOPPED)` (the page stops a trial it runs while idle when the visitor asks for the GPU).
pub async fn time_candidates(gpu: &Gpu, checked: bool, clock: &TrialClock<'_>) -> Result<Trial, String> {
    let software = gpu.is_software();
    let (middle, large, reps, large_reps) = if software {
        ([2048, 384, 128], [1024, 1024, 512], (3, 1), (1, 1))
    } else {
        ([1024, 1024, 256], [2048, 2048, 1024], (1, 20), (3, 1))
    };
    let (rows, channels) = if software { (1024, 128) } else { (16384, 768) };
    let heads = if software { [2, 4, 256, 64] } else { [4, 12, 1024, 64] };
    let base = KernelOptions { checked, ..KernelOptions::default() };
    let fits: Vec<MatmulVariant> = MatmulVariant::CANDIDATES.iter().copied().filter(|v| v.fits(&gpu.limits)).collect();
    let built = &Built::new(gpu, &fits, |v| v.everywhere(base));
    let product = |shape| move |v| vec![crate::bench::matmul_with(gpu, built.of(v), shape, Default::default())];
    let matmul = time_all(gpu, &fits, &product(middle), reps, clock).await?;
    // Small products take milliseconds: two runs a round on CPU adapters (with one, lavapipe's
    // choice changed from one trial to the next).
    let small_reps = if software { (3, 2) } else { reps };
    let layer = |v| vec![crate::bench::linear_layer_with(gpu, built.of(v), [1024, 64, 192])];
    let matmul_small = time_all(gpu, &fits, &layer, small_reps, clock).await?;
    let best = matmul.first().map_or(f64::INFINITY, |c| c.1);
    let close: Vec<MatmulVariant> = matmul.iter().filter(|c| c.1 <= 2.0 * best).map(|c| c.0).collect();
    let matmul_large = time_all(gpu, &close, &product(large), large_reps, clock).await?;
    let available = NormVariant::candidates_for(gpu.features);
    let norms = Built::new(gpu, &available, |v| KernelOptions { norm: v, ..base });
    let layernorm = |v| vec![crate::bench::layernorm_with(gpu, norms.of(v), rows, channels)];
    let norm = time_all(gpu, &available, &layernorm, reps, clock).await?;
    let attentions = Built::new(gpu, AttentionRows::CANDIDATES, |v| KernelOptions { attention: v, ..base });
    let attend = |v| crate::bench::attention_with(gpu, attentions.of(v), heads).into();
    let attention = time_all(gpu, AttentionRows::CANDIDATES, &attend, reps, clock).await?;
    // Split over K: the small class's weight gradient is `tiny`'s (64 x 192 over 1024 rows, 3
    // tiles of 64); on a GPU the `shakespeare` shape's q,k,v projection (384 x 1152 over 16384
    // rows, 27 tiles of 128).
    let split_layer = if software { [1024, 64, 192] } else { [16384, 384, 1152] };
    let products = KernelOptions {
        matmul: matmul.first().map_or(base.matmul, |c| c.0),
        matmul_small: matmul_small.first().map_or(base.matmul_small, |c| c.0),
        matmul_large: matmul_large.first().map_or(base.matmul_large, |c| c.0),
        ..base
    };
    let splits = Built::new(gpu, SplitK::CANDIDATES, |v| KernelOptions { split: v, ..products });
    let split_time = |v| vec![crate::bench::linear_layer_with(gpu, splits.of(v), split_layer)];
    let split = time_all(gpu, SplitK::CANDIDATES, &split_time, small_reps, clock).await?;
    if let Some(e) = gpu.failure() {
        return Err(e);
    }
    Ok(Trial { matmul, matmul_small, matmul_large, norm, attention, split })
}

/// Each candidate's pipelines (compiled on first use, then kept for its later rounds).
struct Built<V>(Vec<(V, Kernels)>);

impl<V: Copy + PartialEq> Built<V> {
    fn new(gpu: &Gpu, candidates: &[V], options: impl Fn(V) -> KernelOptions) -> Built<V> {
        Built(candidates.iter().map(|&v| (v, Kernels::with(gpu, options(v)))).collect())
    }

    fn of(&self, v: V) -> &Kernels {
        &self.0.iter().find(|c| c.0 == v).expect("a candidate built for the trial").1
    }
}

/// A candidate's time within this factor of the fastest one's first round earns it the
/// remaining rounds; the others are dropped after one (on SwiftShader the slowest matmul
/// candidates took 5x the fastest's time, and the page's first visit uses the untimed defaults
/// until every round is done).
const CLOSE: f64 = 1.5;

/// Seconds per run of each candidate (the sum of its programs', each program's fastest round),
/// fastest first. Each candidate's programs are built by `build` (their buffers made), warmed
/// up by one run (which also compiles the pipelines) and timed for one round, then dropped, so
/// that one candidate's buffers are alive at a time; those within `CLOSE` of the fastest are
/// built again for the remaining `rounds - 1`. The fastest round counts: a busy CPU adapter
/// slows some rounds, never speeds one up.
async fn time_all<V: Copy>(
    gpu: &Gpu,
    candidates: &[V],
    build: &dyn Fn(V) -> Vec<OpBench>,
    (rounds, reps): (usize, usize),
    clock: &TrialClock<'_>,
) -> Result<Vec<(V, f64)>, String> {
    async fn warm_then_time(
        gpu: &Gpu,
        bench: &OpBench,
        rounds_reps: (usize, usize),
        clock: &TrialClock<'_>,
    ) -> Result<f64, String> {
        if (clock.stop)() {
            return Err(STOPPED.into());
        }
        let now = clock.now;
        bench.program.submit(gpu);
        bench.out.read_first_f32(gpu, 1).await?;
        time_rounds(gpu, bench, rounds_reps, now).await
    }
    let mut times: Vec<Vec<f64>> = Vec::new();
    for &v in candidates {
        // Asked before `build` compiles the candidate's pipelines too: a browser compiles them
        // in its GPU process one after another, so a stopped trial's last compile delays the
        // visitor's first step.
        if (clock.stop)() {
            return Err(STOPPED.into());
        }
        let mut each = Vec::new();
        for bench in &build(v) {
            each.push(warm_then_time(gpu, bench, (1, reps), clock).await?);
        }
        times.push(each);
    }
    let total = |t: &[f64]| t.iter().sum::<f64>();
    let best = times.iter().map(|t| total(t)).fold(f64::INFINITY, f64::min);
    for (&v, each) in candidates.iter().zip(times.iter_mut()) {
        if rounds > 1 && total(each) <= CLOSE * best {
            if (clock.stop)() {
                return Err(STOPPED.into());
            }
            for (bench, t) in build(v).iter().zip(each.iter_mut()) {
                *t = t.min(warm_then_time(gpu, bench, (rounds - 1, reps), clock).await?);
            }
        }
    }
    let mut list: Vec<(V, f64)> = candidates.iter().copied().zip(times.iter().map(|t| total(t))).collect();
    list.sort_by(|a, b| a.1.total_cmp(&b.1));
    Ok(list)
}

/// Seconds per run: the fastest of `rounds` timed rounds of `reps` runs in one submit.
async fn time_rounds(
    gpu: &Gpu,
    bench: &OpBench,
    (rounds, reps): (usize, usize),
    now: &dyn Fn() -> f64,
) -> Result<f64, String> {
    let mut best = f64::INFINITY;
    for _ in 0..rounds {
        let start = now();
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        for _ in 0..reps {
            bench.program.encode(&mut encoder);
        }
        gpu.queue.submit([encoder.finish()]);
        bench.out.read_first_f32(gpu, 1).await?;
        best = best.min((now() - start) / reps as f64);
    }
    Ok(best)
}

impl Trial {
    /// Each candidate's milliseconds, by kind, as JSON: what the front ends keep beside the choice.
    pub fn times_json(&self) -> serde_json::Value {
        fn ms<V: std::fmt::Display>(list: &[(V, f64)]) -> serde_json::Value {
            list.iter().map(|(v, s)| (v.to_string(), serde_json::json!(s * 1e3))).collect()
        }
        serde_json::json!({"matmul": ms(&self.matmul), "matmul_small": ms(&self.matmul_small),
            "matmul_large": ms(&self.matmul_large), "norm": ms(&self.norm),
            "attention_rows": ms(&self.attention), "split_k": ms(&self.split)})
    }
}

/// The chosen variants as JSON, {"matmul", "matmul_small", "matmul_large", "norm",
/// "attention_rows", "split_k", "epilogue"}: how both front ends keep them.
pub fn options_json(o: &KernelOptions) -> serde_json::Value {
    serde_json::json!({"matmul": o.matmul.to_string(), "matmul_small": o.matmul_small.to_string(),
        "matmul_large": o.matmul_large.to_string(),
        "norm": o.norm.to_string(), "attention_rows": o.attention.to_string(), "split_k": o.split.to_string(),
        "epilogue": o.epilogue.to_string()})
}

/// Reads what `options_json` wrote, None where anything is missing, unknown or does not fit
/// this adapter (a new build's variants, another GPU's limits or features): then the trial runs
/// again. A choice kept before "epilogue" was written has it compiled, as every trial chose.
pub fn options_from_json(v: &serde_json::Value, gpu: &Gpu, checked: bool) -> Option<KernelOptions> {
    let matmul = |key: &str| MatmulVariant::parse(v[key].as_str()?).ok().filter(|m| m.fits(&gpu.limits));
    Some(KernelOptions {
        matmul: matmul("matmul")?,
        matmul_small: matmul("matmul_small")?,
        matmul_large: matmul("matmul_large")?,
        norm: NormVariant::parse(v["norm"].as_str()?).ok().filter(|n| n.available(gpu.features))?,
        attention: AttentionRows::parse(v["attention_rows"].as_str()?).ok()?,
        split: SplitK::parse(v["split_k"].as_str()?).ok()?,
        epilogue: v["epilogue"].as_str().map_or(Ok(Epilogue::Compiled), Epilogue::parse).ok()?,
        checked,
    })
}
