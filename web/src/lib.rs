//! Kiln in the browser: the wasm-bindgen face of the core, driven by the page's Web Worker.
//!
//! One `Session` owns the GPU and, once started, a `Trainer`. Every async method takes the
//! session's state for its duration and puts it back, so a second call while one runs gets a
//! clear "busy" error instead of a RefCell panic. Results cross to JavaScript as JSON strings.

mod finetune;
mod open;
mod views;

use kiln::checkpoint::Checkpoint;
use kiln::config::{ModelConfig, RunSettings, TrainConfig, DEFAULT_PRESET};
use kiln::data::Dataset;
use kiln::gpt::{Layout, Mode};
use kiln::gpu::{tune, Gpu, GpuTensor, KernelOptions};
use kiln::plan::MemoryPlan;
use kiln::sample::SampleOptions;
use kiln::tokenizer::Tokenizer;
use kiln::train::Trainer;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

pub(crate) struct State {
    pub gpu: Gpu,
    pub run: Option<Run>,
    /// The Fine-tune tab's task, once chosen.
    pub task: Option<finetune::Task>,
}

pub(crate) struct Run {
    /// None for a model opened for sampling only (too large to train on this adapter).
    pub trainer: Option<Trainer>,
    pub cfg: ModelConfig,
    pub tokenizer: Tokenizer,
    pub generator: kiln::sample::Generator,
    /// The validation share this run was started with, saved with its checkpoints.
    pub val_fraction: f32,
    /// The weights before the last fine-tuning, for the view of what it changed.
    pub tuned_from: Option<Vec<Vec<f32>>>,
}

impl Run {
    fn new(trainer: Trainer, tokenizer: Tokenizer, generator: kiln::sample::Generator, val_fraction: f32) -> Run {
        Run { cfg: trainer.model.cfg, trainer: Some(trainer), tokenizer, generator, val_fraction, tuned_from: None }
    }

    fn trainer(&self) -> Result<&Trainer, JsValue> {
        self.trainer.as_ref().ok_or_else(|| err(SAMPLE_ONLY))
    }
}

const SAMPLE_ONLY: &str = "this model was opened for sampling only: training it does not fit this GPU";

#[wasm_bindgen]
pub struct Session {
    state: Rc<RefCell<Option<State>>>,
    adapter: String,
    software: bool,
    limits: Value,
    /// The adapter's limits, for memory plans made while the GPU is busy.
    gpu_limits: wgpu::Limits,
    /// The kernel variants in use and how they were chosen, as JSON (see `tuning`).
    tuning: Rc<RefCell<Value>>,
    /// Set by `stop_trial`: a running `time_kernels` ends at its next candidate.
    trial_stop: Rc<Cell<bool>>,
}

/// Seconds from the page's time origin (`performance.now()` where there is one).
fn now_s() -> f64 {
    let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &JsValue::from_str(k)).ok();
    let perf = get(&js_sys::global(), "performance").filter(|p| p.is_object());
    let ms = perf.and_then(|p| {
        let f: js_sys::Function = get(&p, "now")?.dyn_into().ok()?;
        f.call0(&p).ok()?.as_f64()
    });
    ms.unwrap_or_else(js_sys::Date::now) / 1e3
}

/// The kernel variants for this adapter and how they were chosen, as JSON (see
/// `Session::tuning`): those in `saved` (what the worker kept from an earlier trial) when they
/// were chosen on this adapter, else `KernelOptions::untimed` until `Session::time_kernels`
/// has run.
fn choose_kernels(gpu: &Gpu, saved: Option<String>) -> (KernelOptions, Value) {
    let key = tune::adapter_key(gpu);
    let saved = saved.and_then(|s| serde_json::from_str::<Value>(&s).ok()).filter(|v| v["key"] == key.as_str());
    let kept = saved.as_ref().and_then(|v| tune::options_from_json(v, gpu, false));
    let options = kept.unwrap_or_else(|| KernelOptions::untimed(gpu.is_software()));
    let pending = kept.is_none();
    (options, tuning_json(&options, key, pending, Value::Null))
}

/// What `Session::tuning` says: the variants, the adapter's key, whether they are the untimed
/// ones a trial is still due to replace (`pending`), whether a trial chose them in this session
/// (`timed`: it did when it left times), and its times.
fn tuning_json(options: &KernelOptions, key: String, pending: bool, trial_ms: Value) -> Value {
    let mut json = tune::options_json(options);
    json["key"] = key.into();
    json["timed"] = (!trial_ms.is_null()).into();
    json["pending"] = pending.into();
    json["trial_ms"] = trial_ms;
    json
}

fn err(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &js_sys::Function, ms: i32);
}

/// Resolves after `ms` milliseconds, letting the browser deliver pending events meanwhile.
async fn settle(ms: i32) {
    let wait = js_sys::Promise::new(&mut |resolve, _| set_timeout(&resolve, ms));
    let _ = wasm_bindgen_futures::JsFuture::from(wait).await;
}

/// Runs `f` with the session's state taken out, and puts it back afterwards.
fn with_state<F, Fut>(cell: &Rc<RefCell<Option<State>>>, f: F) -> js_sys::Promise
where
    F: FnOnce(State) -> Fut + 'static,
    Fut: std::future::Future<Output = (State, Result<JsValue, JsValue>)> + 'static,
{
    let cell = cell.clone();
    future_to_promise(async move {
        let state = cell.borrow_mut().take().ok_or_else(|| err("busy: another GPU operation is still running"))?;
        let (state, result) = f(state).await;
        if result.is_err() && state.gpu.failure().is_none() {
            // A lost device fails the read-back before the browser resolves `device.lost`: give
            // it a moment, so the page says the device was lost rather than that a map failed.
            settle(100).await;
        }
        let lost = state.gpu.failure();
        *cell.borrow_mut() = Some(state);
        match lost {
            Some(why) => Err(err(why)),
            None => result,
        }
    })
}

/// A fresh model and trainer on `text` (char-level), shaped by `config` (see `Session::start`),
/// and what `start` tells the page about it.
fn new_run(gpu: &Gpu, text: &str, config: &str) -> Result<(Run, String), JsValue> {
    let tokenizer = Tokenizer::char_level(text).map_err(err)?;
    let (cfg, train, run) = parse_config(config, Some(tokenizer.vocab_size()))?;
    let (val_fraction, eval_batches) = (run.val_fraction, run.eval_batches);
    let data = Dataset::new(tokenizer.encode(text).map_err(err)?, val_fraction, train.seq_len).map_err(err)?;
    let params = kiln::cpu::init_params(&cfg, train.seed);
    let trainer = Trainer::new(gpu, cfg, train, data.into(), &params, eval_batches).map_err(err)?;
    let generator = trainer.generator(gpu);
    let info = run_info(&trainer);
    Ok((Run::new(trainer, tokenizer, generator, val_fraction), info))
}

/// Compiles the pipelines the default run (the default preset on the embedded corpus) records,
/// by building it and letting it go: the page's first Train then finds them compiled (on
/// SwiftShader compiling is most of the seconds before a first step). A read-back after it is
/// the sync point: a browser compiles in its GPU process after the calls return, in order, and
/// without waiting for that work (which slows the whole page on a CPU adapter) a trial started
/// next would time it, or it would still be running when the visitor presses Train. A failure
/// only means they compile later.
async fn warm_pipelines(gpu: &Gpu) {
    drop(new_run(gpu, kiln::corpus::DEFAULT_CORPUS, "{}"));
    let _ = GpuTensor::from_f32(gpu, "warm-up sync", &[0.0]).read_first_f32(gpu, 1).await;
}

#[wasm_bindgen]
impl Session {
    /// Opens the GPU with the kernel variants in `tuning` (what `tuning()` gave on an earlier
    /// visit, if the page kept it) where they were chosen on this adapter, else the defaults
    /// (`time_kernels` then times the candidates). Fails with a readable reason where WebGPU has
    /// no adapter.
    pub async fn create(tuning: Option<String>) -> Result<Session, JsValue> {
        console_error_panic_hook_lite();
        let gpu = Gpu::new().await.map_err(err)?;
        let (options, tuning) = choose_kernels(&gpu, tuning);
        gpu.set_kernel_options(options).map_err(err)?;
        let l = &gpu.limits;
        let limits = json!({"max_storage_buffer_binding_size": l.max_storage_buffer_binding_size,
            "max_buffer_size": l.max_buffer_size, "max_storage_buffers_per_shader_stage": l.max_storage_buffers_per_shader_stage,
            "timestamps": gpu.has_timestamps()});
        Ok(Session {
            adapter: gpu.to_string(),
            software: gpu.is_software(),
            limits,
            gpu_limits: gpu.limits.clone(),
            tuning: Rc::new(RefCell::new(tuning)),
            trial_stop: Rc::new(Cell::new(false)),
            state: Rc::new(RefCell::new(Some(State { gpu, run: None, task: None }))),
        })
    }

    /// The kernel variants in use, as JSON: {"key" (the adapter), "matmul", "matmul_small",
    /// "matmul_large", "norm", "attention_rows", "split_k", "epilogue", "timed" (a trial chose
    /// them in this session: the page keeps this for the next visit), "pending" (the defaults,
    /// until a trial has run), "trial_ms" (each candidate's time)}.
    pub fn tuning(&self) -> String {
        self.tuning.borrow().to_string()
    }

    /// Compiles the default run's pipelines with the kernels in use (`warm_pipelines`), then
    /// where no trial has chosen on this adapter times the candidates (seconds on a software
    /// one, most of it compiling their pipelines) and compiles the default run's pipelines again
    /// with the winners, for a page that is otherwise idle. Resolves to the new `tuning()` once
    /// the winners are in use, or to null where no trial was due, it failed (the defaults stay)
    /// or `stop_trial` stopped it. The page runs this first, before its visitor can press
    /// anything, so no model is alive when the winners are set. Compiling the default run
    /// first means a visitor who presses Train at once waits for no trial: on SwiftShader the
    /// trial's candidate in flight added 0.6-0.9 s to such a first step (BENCHMARKS.md).
    pub fn time_kernels(&self) -> js_sys::Promise {
        let (tuning, stop) = (self.tuning.clone(), self.trial_stop.clone());
        with_state(&self.state, move |s| async move {
            if !stop.get() {
                warm_pipelines(&s.gpu).await;
            }
            if tuning.borrow()["pending"] != true || stop.get() {
                return (s, Ok(JsValue::NULL));
            }
            let clock = tune::TrialClock { now: &now_s, stop: &|| stop.get() };
            // Stopped, or failed (the defaults stay; a lost device is reported by `with_state`).
            let Ok(trial) = tune::time_candidates(&s.gpu, false, &clock).await else {
                return (s, Ok(JsValue::NULL));
            };
            let options = trial.options(false);
            if let Err(e) = s.gpu.set_kernel_options(options) {
                return (s, Err(err(e)));
            }
            if !stop.get() {
                warm_pipelines(&s.gpu).await;
            }
            let mut t = tuning.borrow_mut();
            let key = t["key"].as_str().unwrap_or_default().to_string();
            *t = tuning_json(&options, key, false, trial.times_json());
            let json = JsValue::from_str(&t.to_string());
            (s, Ok(json))
        })
    }

    /// Stops a running `time_kernels` at its next candidate (the visitor wants the GPU), and
    /// any later one before it starts: this session keeps the variants it has.
    pub fn stop_trial(&self) {
        self.trial_stop.set(true);
    }

    pub fn adapter(&self) -> String {
        self.adapter.clone()
    }

    pub fn is_software(&self) -> bool {
        self.software
    }

    pub fn limits(&self) -> String {
        self.limits.to_string()
    }

    /// Parameters, memory and whether a shape fits this adapter, before anything is allocated.
    /// `config`: {"vocab","layers","heads","embd","block","batch"}.
    pub fn plan(&self, config: &str) -> Result<String, JsValue> {
        let (cfg, train, _) = parse_config(config, None)?;
        let layout = Layout::for_limits(&self.gpu_limits);
        let plan = MemoryPlan::new(&cfg, train.batch_size, train.seq_len, Mode::Train, &layout);
        let fits = cfg.validate().and_then(|_| plan.check(&self.gpu_limits));
        Ok(json!({"params": kiln::model::num_params(&cfg), "bytes": plan.total_bytes(), "summary": plan.summary(),
                  "fits": fits.is_ok(), "reason": fits.err()})
        .to_string())
    }

    /// Tokenizes `text` (char-level) and builds a fresh model and trainer. `config` also takes
    /// "steps", "lr", "warmup", "seed", "val_fraction", "eval_batches".
    pub fn start(&self, text: &str, config: &str) -> Result<String, JsValue> {
        let mut guard = self.state.borrow_mut();
        let state = guard.as_mut().ok_or_else(|| err("busy: another GPU operation is still running"))?;
        state.run = None; // frees the previous model's buffers first
        let (run, info) = new_run(&state.gpu, text, config)?;
        state.run = Some(run);
        Ok(info)
    }

    /// Loads a packed checkpoint and continues its run on `text` (its tokenizer is kept).
    pub fn load(&self, bytes: &[u8], text: &str) -> Result<String, JsValue> {
        let mut guard = self.state.borrow_mut();
        let state = guard.as_mut().ok_or_else(|| err("busy: another GPU operation is still running"))?;
        let ckpt = Checkpoint::from_packed(bytes).map_err(err)?;
        let tokenizer = Tokenizer::from_json(ckpt.tokenizer_json.as_bytes()).map_err(err)?;
        let st = ckpt.state.ok_or_else(|| err("this checkpoint holds no training state"))?;
        let defaults = RunSettings::default();
        let val_fraction = st.run["val_fraction"].as_f64().map_or(defaults.val_fraction, |x| x as f32);
        let eval_batches = st.run["eval_batches"].as_u64().map_or(defaults.eval_batches, |x| x as usize);
        let data = Dataset::new(tokenizer.encode(text).map_err(err)?, val_fraction, st.train.seq_len).map_err(err)?;
        state.run = None;
        let trainer =
            Trainer::resume(&state.gpu, ckpt.cfg, &st, data.into(), &ckpt.params, eval_batches).map_err(err)?;
        let generator = trainer.generator(&state.gpu);
        let info = run_info(&trainer);
        state.run = Some(Run::new(trainer, tokenizer, generator, val_fraction));
        Ok(info)
    }

    /// Runs up to `n` training steps; resolves to {"step","loss","skipped","done","diverged"} with
    /// the loss of the last one (the only read-back; null where it was not finite, and that
    /// step's update skipped). "diverged" says why the run must stop (a run of skipped steps,
    /// the weights as they were), or is null.
    pub fn train(&self, n: u32) -> js_sys::Promise {
        with_state(&self.state, move |mut s| async move {
            let r = async {
                let run = s.run.as_mut().ok_or_else(|| err("press Train first"))?;
                let trainer = run.trainer.as_mut().ok_or_else(|| err(SAMPLE_ONLY))?;
                let mut loss = None;
                for i in 0..n {
                    if trainer.done() {
                        break;
                    }
                    let last = i + 1 == n || trainer.step + 1 == trainer.train.steps;
                    loss = trainer.step(&s.gpu, last).await.map_err(err)?;
                }
                let skipped = trainer.skipped_steps();
                let diverged = trainer.diverged().err();
                let loss = loss.filter(|l| l.is_finite());
                Ok(JsValue::from_str(
                    &json!({"step": trainer.step, "loss": loss, "skipped": skipped, "lr": trainer.lr(),
                    "done": trainer.done(), "tokens_per_step": trainer.tokens_per_step(), "diverged": diverged})
                    .to_string(),
                ))
            }
            .await;
            (s, r)
        })
    }

    /// Mean validation loss over the fixed validation batches.
    pub fn evaluate(&self) -> js_sys::Promise {
        with_state(&self.state, |s| async move {
            let r = match s.run.as_ref() {
                Some(run) => match run.trainer() {
                    Ok(trainer) => match trainer.evaluate(&s.gpu).await {
                        Ok(v) => Ok(JsValue::from_f64(v.unwrap_or(f32::NAN) as f64)),
                        Err(e) => Err(err(e)),
                    },
                    Err(e) => Err(e),
                },
                None => Err(err("press Train first")),
            };
            (s, r)
        })
    }

    /// Mean loss of the current model over all of `text`, windowed exactly as `kiln eval` does.
    pub fn text_loss(&self, text: String) -> js_sys::Promise {
        with_state(&self.state, |s| async move {
            let r = async {
                let run = s.run.as_ref().ok_or_else(|| err("press Train first"))?;
                let tokens = run.tokenizer.encode(&text).map_err(err)?;
                let weights = run.generator.weights().clone();
                let (loss, _) = kiln::train::text_loss(&s.gpu, weights, &tokens, 16).await.map_err(err)?;
                Ok(JsValue::from_f64(loss as f64))
            }
            .await;
            (s, r)
        })
    }

    /// Generates text after `prompt`, calling `on_text(piece)` as tokens arrive.
    #[allow(clippy::too_many_arguments)] // one plain argument per sampling control, for the worker
    pub fn sample(
        &self,
        prompt: String,
        tokens: u32,
        temperature: f32,
        top_k: u32,
        top_p: f32,
        seed: u32,
        on_text: js_sys::Function,
    ) -> js_sys::Promise {
        with_state(&self.state, move |mut s| async move {
            let r = async {
                let run = s.run.as_mut().ok_or_else(|| err("press Train first"))?;
                let ids = run.tokenizer.encode(&prompt).map_err(err)?;
                let opts = SampleOptions { temperature, top_k: top_k as usize, top_p, seed: seed as u64 };
                let tok = &run.tokenizer;
                let out = run
                    .generator
                    .generate(&s.gpu, &ids, tokens as usize, &opts, |t| {
                        let _ = on_text.call1(&JsValue::NULL, &JsValue::from_str(&tok.decode(&[t])));
                        true
                    })
                    .await
                    .map_err(err)?;
                Ok(JsValue::from_str(&run.tokenizer.decode(&out)))
            }
            .await;
            (s, r)
        })
    }

    /// The packed checkpoint (one file, the native program reads it too).
    pub fn checkpoint(&self) -> js_sys::Promise {
        with_state(&self.state, |s| async move {
            let r = async {
                let run = s.run.as_ref().ok_or_else(|| err("press Train first"))?;
                let settings = json!({"val_fraction": run.val_fraction, "source": "browser"});
                let ckpt = run.trainer()?.checkpoint(&s.gpu, run.tokenizer.to_json(), settings).await.map_err(err)?;
                Ok(js_sys::Uint8Array::from(ckpt.to_packed().as_slice()).into())
            }
            .await;
            (s, r)
        })
    }

    /// Attention of every layer and head over `prompt` (at most one block): JSON
    /// {"tokens": [...], "layers": [[head][t][t2]]}.
    pub fn attention(&self, prompt: String) -> js_sys::Promise {
        with_state(&self.state, |mut s| async move {
            let r = match s.run.as_mut() {
                Some(run) => views::attention(&s.gpu, run, &prompt).await,
                None => Err(err("press Train first")),
            };
            (s, r)
        })
    }

    /// The most likely next tokens after `prompt`: JSON [{"token","p"}], best first.
    pub fn next_tokens(&self, prompt: String, count: u32) -> js_sys::Promise {
        with_state(&self.state, move |mut s| async move {
            let r = match s.run.as_mut() {
                Some(run) => views::next_tokens(&s.gpu, run, &prompt, count as usize).await,
                None => Err(err("press Train first")),
            };
            (s, r)
        })
    }

    /// The model's shape, layer by layer, with parameter counts.
    pub fn shape(&self) -> Result<String, JsValue> {
        let guard = self.state.borrow();
        let run = guard.as_ref().and_then(|s| s.run.as_ref()).ok_or_else(|| err("press Train first"))?;
        Ok(views::shape(&run.cfg))
    }

    /// GPU time per kernel of one training step without its AdamW update, so the model stays
    /// as it is (JSON), or null without timestamp queries.
    pub fn profile(&self) -> js_sys::Promise {
        with_state(&self.state, |s| async move {
            let r = async {
                let run = s.run.as_ref().ok_or_else(|| err("press Train first"))?;
                let times = run.trainer()?.model.profile_step(&s.gpu, false).await.map_err(err)?;
                Ok(match times {
                    Some(t) => JsValue::from_str(
                        &json!(kiln::gpu::by_kernel(&t)
                            .iter()
                            .map(|(k, ns, n)| json!({"kernel": k, "ms": ns / 1e6, "launches": n}))
                            .collect::<Vec<_>>())
                        .to_string(),
                    ),
                    None => JsValue::NULL,
                })
            }
            .await;
            (s, r)
        })
    }
}

/// The embedded Shakespeare, so the page needs no download for its default corpus.
#[wasm_bindgen]
pub fn default_corpus() -> String {
    kiln::corpus::DEFAULT_CORPUS.to_string()
}

/// Every default the page shows (see `kiln::config::defaults_json`), so the page declares none.
#[wasm_bindgen]
pub fn defaults() -> String {
    kiln::config::defaults_json().to_string()
}

/// Named presets as JSON: [{"name","layers","heads","embd","block","batch"}].
#[wasm_bindgen]
pub fn presets() -> String {
    json!(kiln::config::PRESETS
        .iter()
        .map(|p| json!({"name": p.name, "layers": p.n_layer, "heads": p.n_head,
        "embd": p.n_embd, "block": p.block_size, "batch": p.batch_size}))
        .collect::<Vec<_>>())
    .to_string()
}

/// The page's settings: shape, recipe and run settings, each field falling back to the one
/// set of defaults (`DEFAULT_PRESET`, `TrainConfig::default()`, `RunSettings::default()`).
pub(crate) fn parse_config(
    config: &str,
    vocab: Option<usize>,
) -> Result<(ModelConfig, TrainConfig, RunSettings), JsValue> {
    let v: Value = serde_json::from_str(config).map_err(|e| err(format!("bad settings: {e}")))?;
    let n = |k: &str, d: usize| v[k].as_u64().map_or(d, |x| x as usize);
    let f = |k: &str, d: f32| v[k].as_f64().map_or(d, |x| x as f32);
    let p = kiln::config::preset(DEFAULT_PRESET).map_err(err)?;
    let (t, r) = (TrainConfig::default(), RunSettings::default());
    let cfg = ModelConfig {
        vocab_size: vocab.unwrap_or(n("vocab", 65)),
        n_layer: n("layers", p.n_layer),
        n_head: n("heads", p.n_head),
        n_embd: n("embd", p.n_embd),
        block_size: n("block", p.block_size),
    };
    let train = TrainConfig {
        batch_size: n("batch", p.batch_size),
        seq_len: cfg.block_size,
        steps: n("steps", t.steps),
        lr: f("lr", t.lr),
        warmup: n("warmup", t.warmup),
        seed: n("seed", t.seed as usize) as u64,
        ..t
    };
    let run = RunSettings {
        val_fraction: f("val_fraction", r.val_fraction),
        eval_batches: n("eval_batches", r.eval_batches),
        ..r
    };
    cfg.validate().map_err(err)?;
    train.validate(&cfg).map_err(err)?;
    Ok((cfg, train, run))
}

fn run_info(t: &Trainer) -> String {
    let cfg = t.model.cfg;
    json!({"params": kiln::model::num_params(&cfg), "vocab": cfg.vocab_size, "tokens": t.data.token_counts().0 + t.data.token_counts().1,
           "step": t.step, "steps": t.train.steps, "tokens_per_step": t.tokens_per_step(),
           "layers": cfg.n_layer, "heads": cfg.n_head, "trainable": true})
    .to_string()
}

/// Panics become console errors with their message rather than "unreachable".
fn console_error_panic_hook_lite() {
    std::panic::set_hook(Box::new(|info| web_sys::console::error_1(&JsValue::from_str(&info.to_string()))));
}
