//! `kiln train`: corpus, tokenizer and model shape (or a run to resume), then the training loop
//! with progress, evaluations, samples, checkpoints, metrics.jsonl and loss.svg.

use crate::args::TrainArgs;
use crate::checkpoint_io;
use crate::input::{read_corpus, run_folder_name};
use crate::report::{round4, Reporter};
use kiln::checkpoint::Checkpoint;
use kiln::config::{preset, TrainConfig, DEFAULT_PRESET};
use kiln::data::Dataset;
use kiln::gpu::Gpu;
use kiln::sample::{SampleOptions, DEFAULT_SAMPLE_TOKENS};
use kiln::tokenizer::Tokenizer;
use kiln::train::{TrainData, Trainer};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Front-end settings of a run, saved in its checkpoint so `--resume` continues alike.
pub struct Settings {
    /// Fine-tuning: the checkpoint it started from (a LoRA run's frozen base).
    pub base: Option<PathBuf>,
    pub data: Option<PathBuf>,
    /// Fine-tuning: the task file and the validation file (None: a seeded tenth of the task).
    pub task: Option<PathBuf>,
    pub val: Option<PathBuf>,
    /// What samples start from ("\n" when None); fine-tuning shows a validation prompt.
    pub sample_prompt: Option<String>,
    pub preset: String,
    pub tokenizer: String,
    pub val_fraction: f32,
    pub eval_every: usize,
    pub eval_batches: usize,
    pub log_every: usize,
    pub sample_every: usize,
    pub checkpoint_every: usize,
}

impl Settings {
    fn to_json(&self) -> Value {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        json!({"base": path(&self.base), "data": path(&self.data), "task": path(&self.task), "val": path(&self.val),
               "sample_prompt": self.sample_prompt, "preset": self.preset,
               "tokenizer": self.tokenizer, "val_fraction": self.val_fraction, "eval_every": self.eval_every,
               "eval_batches": self.eval_batches, "log_every": self.log_every, "sample_every": self.sample_every,
               "checkpoint_every": self.checkpoint_every})
    }

    fn from_json(v: &Value) -> Result<Settings, String> {
        let bad = || "the run's training_state.json has no valid 'run' settings".to_string();
        let n = |k: &str| v[k].as_u64().map(|x| x as usize).ok_or_else(bad);
        Ok(Settings {
            base: v["base"].as_str().map(PathBuf::from),
            data: v["data"].as_str().map(PathBuf::from),
            task: v["task"].as_str().map(PathBuf::from),
            val: v["val"].as_str().map(PathBuf::from),
            sample_prompt: v["sample_prompt"].as_str().map(String::from),
            preset: v["preset"].as_str().unwrap_or("custom").to_string(),
            tokenizer: v["tokenizer"].as_str().unwrap_or("char").to_string(),
            val_fraction: v["val_fraction"].as_f64().ok_or_else(bad)? as f32,
            eval_every: n("eval_every")?,
            eval_batches: n("eval_batches")?,
            log_every: n("log_every")?,
            sample_every: n("sample_every")?,
            checkpoint_every: n("checkpoint_every")?,
        })
    }
}

pub fn run(a: TrainArgs) -> Result<(), String> {
    match a.resume.clone() {
        Some(dir) => resume(&dir, a.json, a.stop_after),
        None => fresh(a),
    }
}

fn fresh(a: TrainArgs) -> Result<(), String> {
    if a.steps <= 0 {
        return Err(format!("--steps must be a positive number, got {}", a.steps));
    }
    if !(a.lr > 0.0 && a.lr.is_finite()) {
        return Err(format!("--lr must be a positive number, got {}", a.lr));
    }
    if let Some(p) = &a.shape.preset {
        preset(p)?;
    }
    let (text, source) = read_corpus(a.data.as_deref())?;
    // From a checkpoint (--init): its shape, weights and tokenizer; otherwise a preset's shape
    // (single options override it), a new tokenizer and GPT-2's initialisation.
    let init = a.init.as_deref().map(checkpoint_io::load).transpose()?;
    let tokenizer = match &init {
        Some(ckpt) => Tokenizer::from_json(ckpt.tokenizer_json.as_bytes())?,
        None => make_tokenizer(&a.tokenizer, &text)?,
    };
    let gpu = crate::gpu_open::open()?;
    let preset_name = match &a.init {
        Some(dir) => format!("init from {}", dir.display()),
        None => a.shape.preset.clone().unwrap_or_else(|| default_preset(&gpu).to_string()),
    };
    let p = preset(a.shape.preset.as_deref().unwrap_or(default_preset(&gpu)))?;
    let cfg = match &init {
        Some(ckpt) => ckpt.cfg,
        None => a.shape.model(&p, tokenizer.vocab_size()),
    };
    cfg.validate()?;
    let train = TrainConfig {
        batch_size: a.shape.batch.unwrap_or(p.batch_size),
        seq_len: a.shape.block.unwrap_or(p.block_size.min(cfg.block_size)),
        steps: a.steps as usize,
        lr: a.lr,
        warmup: a.warmup,
        weight_decay: a.weight_decay,
        grad_clip: a.grad_clip,
        seed: a.seed,
        ..TrainConfig::default()
    };
    train.validate(&cfg)?;
    let tokens = tokenizer.encode(&text)?;
    if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= cfg.vocab_size) {
        return Err(format!("the tokenizer gives token {bad}, outside the model's vocabulary of {}", cfg.vocab_size));
    }
    let data = Dataset::new(tokens, a.val_fraction, train.seq_len)?;
    let settings = Settings {
        base: None,
        data: a.data.as_ref().map(|p| std::fs::canonicalize(p).unwrap_or(p.clone())),
        task: None,
        val: None,
        sample_prompt: None,
        preset: preset_name,
        tokenizer: if a.init.is_some() { "from --init".into() } else { a.tokenizer.clone() },
        val_fraction: a.val_fraction,
        eval_every: a.eval_every,
        eval_batches: a.eval_batches,
        log_every: a.log_every,
        sample_every: a.sample_every,
        checkpoint_every: a.checkpoint_every,
    };
    let params = match init {
        Some(ckpt) => ckpt.params,
        None => kiln::cpu::init_params(&cfg, a.seed),
    };
    let trainer = Trainer::new(&gpu, cfg, train, data.into(), &params, a.eval_batches)?;
    drop(params);
    let folder = if a.init.is_some() { "init" } else { &settings.preset };
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(run_folder_name(folder)));
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create the run folder {}: {e}", out.display()))?;
    let metrics = std::fs::File::create(out.join("metrics.jsonl"))
        .map_err(|e| format!("cannot write in {}: {e}", out.display()))?;
    let mut report = Reporter::new(a.json);
    report.keep_metrics(metrics);
    train_loop(&gpu, trainer, &tokenizer, &settings, &source, &out, report, History::default(), a.stop_after)
}

/// Continues the run in `dir`, pre-training or fine-tuning alike.
pub fn resume(dir: &Path, json: bool, stop_after: Option<usize>) -> Result<(), String> {
    // A crash may have left a checkpoint half switched: finish it, or drop the unfinished one.
    checkpoint_io::recover(dir)?;
    // A LoRA run keeps its adapters and their state; the frozen weights are its base's.
    let (ckpt, adapters) = if checkpoint_io::is_adapter_folder(dir) {
        let run = checkpoint_io::load_lora_run(dir)?;
        let state =
            run.state.ok_or_else(|| format!("{} holds adapters but no training state to resume", dir.display()))?;
        let base = Settings::from_json(&state.run)?.base.ok_or("the run's settings name no base model")?;
        let base = checkpoint_io::load(&base)?;
        (Checkpoint { state: Some(state), tokenizer_json: run.tokenizer_json, ..base }, Some(run.adapters))
    } else {
        (checkpoint_io::load(dir)?, None)
    };
    let Checkpoint { cfg, params, tokenizer_json, state } = ckpt;
    let state = state.ok_or_else(|| format!("{} holds a model but no training state to resume", dir.display()))?;
    let settings = Settings::from_json(&state.run)?;
    let tokenizer = Tokenizer::from_json(tokenizer_json.as_bytes())?;
    let (data, source) = match &settings.task {
        Some(task) => {
            let (data, source) =
                crate::finetune_cmd::task_data(&tokenizer, task, settings.val.as_deref(), &cfg, state.train.seed)?;
            (TrainData::Task(data), source)
        }
        None => {
            let (text, source) = read_corpus(settings.data.as_deref())?;
            (Dataset::new(tokenizer.encode(&text)?, settings.val_fraction, state.train.seq_len)?.into(), source)
        }
    };
    let gpu = crate::gpu_open::open()?;
    let trainer = Trainer::resume(&gpu, cfg, &state, data, &params, settings.eval_batches)?;
    if let Some(adapters) = adapters {
        trainer.model.write_adapters(&gpu, &adapters)?;
    }
    // Keep the metrics up to the checkpoint; anything logged after it is about to be redone.
    let path = dir.join("metrics.jsonl");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let kept: Vec<&str> = old
        .lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| v["step"].as_u64().is_none_or(|s| s as usize <= state.step))
        })
        .collect();
    let history = History::from_lines(&kept);
    std::fs::write(&path, kept.iter().map(|l| format!("{l}\n")).collect::<String>())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let metrics = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut report = Reporter::new(json);
    report.keep_metrics(metrics);
    report.event(
        json!({"event": "resume", "step": state.step, "path": dir.display().to_string()}),
        &format!("resuming {} at step {}", dir.display(), state.step),
    );
    train_loop(&gpu, trainer, &tokenizer, &settings, &source, dir, report, history, stop_after)
}

/// Logged losses, for the plot.
#[derive(Default)]
pub struct History {
    train: Vec<(usize, f32)>,
    val: Vec<(usize, f32)>,
}

impl History {
    fn from_lines(lines: &[&str]) -> History {
        let mut h = History::default();
        for v in lines.iter().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
            let (Some(step), Some(event)) = (v["step"].as_u64(), v["event"].as_str()) else { continue };
            match (event, v["loss"].as_f64(), v["val_loss"].as_f64()) {
                ("step", Some(l), _) => h.train.push((step as usize, l as f32)),
                ("eval", _, Some(l)) => h.val.push((step as usize, l as f32)),
                _ => {}
            }
        }
        h
    }
}

#[allow(clippy::too_many_arguments)]
pub fn train_loop(
    gpu: &Gpu,
    mut trainer: Trainer,
    tokenizer: &Tokenizer,
    s: &Settings,
    source: &str,
    out: &Path,
    mut report: Reporter,
    mut history: History,
    stop_after: Option<usize>,
) -> Result<(), String> {
    let (cfg, train) = (trainer.model.cfg, trainer.train.clone());
    let n_params = kiln::model::num_params(&cfg);
    let (train_tokens, val_tokens) = trainer.data.token_counts();
    let what = if s.task.is_some() { "fine-tuning" } else { "training" };
    // What trains, and the GPU memory the run holds: weights, the gradients and AdamW moments
    // of what trains (all weights, or only LoRA's adapters), activations.
    let trainable: usize = trainer.model.trainable().table.iter().map(|p| p.numel()).sum();
    let plan = kiln::plan::MemoryPlan::new(
        &cfg,
        train.batch_size,
        train.seq_len,
        kiln::gpt::Mode::Train,
        &trainer.model.weights.layout,
    );
    // LoRA: the adapters, their gradients and two moments (4 words each), and the (N, R) products
    // every adapter keeps for its backward pass, plus one scratch of that size.
    let optimizer_bytes = match train.lora {
        Some(l) => (16 * trainable + 4 * (4 * cfg.n_layer + 1) * train.batch_size * train.seq_len * l.rank) as u64,
        None => plan.optimizer_bytes,
    };
    let memory = plan.weight_bytes + optimizer_bytes + plan.activation_bytes;
    let software = if gpu.is_software() { " (a software adapter: expect it to be slow)" } else { "" };
    report.event(
        json!({"event": "start", "params": n_params, "vocab": cfg.vocab_size, "tokens": train_tokens + val_tokens,
               "train_tokens": train_tokens, "val_tokens": val_tokens, "task": s.task.is_some(),
               "trainable": trainable, "memory_mib": kiln::plan::mib(memory), "lora": train.lora,
               "adapter": gpu.to_string(), "software": gpu.is_software(), "preset": s.preset,
               "layers": cfg.n_layer, "heads": cfg.n_head, "embd": cfg.n_embd, "block": train.seq_len,
               "batch": train.batch_size, "steps": train.steps, "lr": train.lr, "corpus": source,
               "out": out.display().to_string()}),
        &format!(
            "{what} {:.2}M parameters, {:.3}M of them trained, {} MiB of GPU memory ({} layers, {} heads, {} channels, block {}, batch {}, {}) on {} ({} tokens, vocabulary {})\nadapter: {gpu}{software}\nrun folder: {}",
            n_params as f64 / 1e6, trainable as f64 / 1e6, kiln::plan::mib(memory), cfg.n_layer, cfg.n_head, cfg.n_embd, train.seq_len, train.batch_size,
            if s.preset.starts_with("init from") { s.preset.clone() } else { format!("preset {}", s.preset) },
            source, train_tokens + val_tokens, cfg.vocab_size, out.display()
        ),
    );
    let mut generator = trainer.generator(gpu);
    let checkpoint = |trainer: &Trainer, report: &mut Reporter| -> Result<(), String> {
        if trainer.train.lora.is_some() {
            let base = s.base.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
            let run = pollster::block_on(trainer.lora_checkpoint(gpu, tokenizer.to_json(), s.to_json(), base))?;
            checkpoint_io::save_files(out, run.to_files())?;
        } else {
            let ckpt = pollster::block_on(trainer.checkpoint(gpu, tokenizer.to_json(), s.to_json()))?;
            checkpoint_io::save(out, &ckpt)?;
        }
        report.event(json!({"event": "checkpoint", "step": trainer.step, "path": out.display().to_string()}), "");
        Ok(())
    };

    // Whether the run folder holds a checkpoint to go on from, for the messages that end a run.
    let saved = || ["model.safetensors", "adapter_model.safetensors"].iter().any(|f| out.join(f).is_file());
    let command = if s.task.is_some() { "finetune" } else { "train" };
    // How a run that stops on a fault (in a step, an evaluation, a sample or a checkpoint) ends:
    // the fault, and where to go on from.
    let ended = |why: String| match saved() {
        true => {
            format!("{why}; the last checkpoint is intact: continue with kiln {command} --resume {}", out.display())
        }
        false => format!("{why}; no checkpoint had been written yet"),
    };
    report.start_progress(train.steps, trainer.step);
    let started = (Instant::now(), trainer.step);
    let mut last = (Instant::now(), trainer.step);
    let mut val_loss = history.val.last().map(|v| v.1);
    while !trainer.done() {
        let step = trainer.step + 1;
        let at = |every: usize| every > 0 && step.is_multiple_of(every);
        let log = at(s.log_every.max(1)) || step == 1 || step == train.steps;
        let lr = trainer.lr();
        let stepped = pollster::block_on(trainer.step(gpu, log));
        crate::gpu_open::test_fault(gpu, step);
        let loss = match (stepped, gpu.failure()) {
            (_, Some(why)) | (Err(why), None) => return Err(ended(why)),
            (Ok(loss), None) => loss,
        };
        if let Some(loss) = loss {
            let tps =
                (trainer.step - last.1) as f64 * trainer.tokens_per_step() as f64 / last.0.elapsed().as_secs_f64();
            last = (Instant::now(), trainer.step);
            // A step whose loss or gradient norm was not finite changed nothing (the GPU skipped
            // its update): counted and shown; many in a row end the run, the checkpoint intact.
            let skipped = trainer.skipped_steps();
            if loss.is_finite() {
                history.train.push((step, loss));
            }
            let held = gpu.buffers_held(); // GPU memory, to show a long run's does not grow
            let skipped_note = if skipped > 0 { format!(" | {skipped} skipped") } else { String::new() };
            report.progress(step, format!("loss {loss:.4} | {tps:.0} tok/s{skipped_note}"));
            report.event(
                json!({"event": "step", "step": step, "loss": loss.is_finite().then(|| round4(loss)), "lr": lr,
                       "tokens_per_s": tps.round(), "skipped": skipped,
                       "gpu_buffers": held.map(|h| h.0), "gpu_bytes": held.map(|h| h.1)}),
                "",
            );
            if let Err(why) = trainer.diverged() {
                return Err(if saved() {
                    format!("{why}; the last checkpoint in {} is intact", out.display())
                } else {
                    format!("{why}; no checkpoint had been written yet")
                });
            }
        }
        let last_step = step == train.steps || stop_after == Some(step);
        if at(s.eval_every) || last_step {
            if let Some(v) = pollster::block_on(trainer.evaluate(gpu)).map_err(ended)? {
                val_loss = Some(v);
                history.val.push((step, v));
                report.event(
                    json!({"event": "eval", "step": step, "val_loss": round4(v)}),
                    &format!("step {step}: validation loss {v:.4}"),
                );
            }
        }
        if at(s.sample_every) || last_step {
            if trainer.train.lora.is_some() {
                // The adapters merged into a copy of the weights: what the run has learnt so far.
                let weights = pollster::block_on(trainer.current_weights(gpu)).map_err(ended)?;
                generator = kiln::sample::Generator::new(gpu, weights);
            }
            let text =
                sample(gpu, &mut generator, tokenizer, s.sample_prompt.as_deref(), step as u64).map_err(ended)?;
            report.event(
                json!({"event": "sample", "step": step, "text": text}),
                &format!("--- sample at step {step} ---\n{text}\n---"),
            );
        }
        if at(s.checkpoint_every) || last_step {
            checkpoint(&trainer, &mut report).map_err(ended)?;
        }
        if at(s.eval_every) || at(s.sample_every) || at(s.checkpoint_every) {
            last = (Instant::now(), trainer.step); // that time was not training
        }
        if last_step {
            break;
        }
    }
    report.finish_progress();
    let plot = crate::plot::loss_svg(&history.train, &history.val, &format!("Kiln: {} on {}", s.preset, source));
    checkpoint_io::save_files(out, vec![("loss.svg", plot.into_bytes())])?; // whole or not at all
    let secs = started.0.elapsed().as_secs_f64();
    let steps_run = (trainer.step - started.1).max(1);
    report.event(
        json!({"event": "end", "step": trainer.step, "val_loss": val_loss.map(round4), "seconds": (secs * 10.0).round() / 10.0,
               "ms_per_step": (1000.0 * secs / steps_run as f64).round(), "path": out.display().to_string()}),
        &format!("done: step {} in {secs:.1}s, validation loss {}; checkpoint and loss.svg in {}",
                 trainer.step, val_loss.map_or("n/a".into(), |v| format!("{v:.4}")), out.display()),
    );
    Ok(())
}

fn sample(
    gpu: &Gpu,
    generator: &mut kiln::sample::Generator,
    tokenizer: &Tokenizer,
    prompt: Option<&str>,
    seed: u64,
) -> Result<String, String> {
    let Some(text) = prompt else {
        let prompt = tokenizer.encode("\n").unwrap_or_default();
        let opts = SampleOptions { seed, ..SampleOptions::default() };
        let tokens = pollster::block_on(generator.generate(gpu, &prompt, DEFAULT_SAMPLE_TOKENS, &opts, |_| true))?;
        return Ok(tokenizer.decode(&tokens));
    };
    // A task prompt: the model's greedy answer, to its first newline, after the prompt.
    let prompt = tokenizer.encode(text)?;
    let keep = prompt.len().min(generator.cfg.block_size / 2);
    let greedy = SampleOptions { temperature: 0.0, ..SampleOptions::default() };
    let mut answer = String::new();
    pollster::block_on(generator.generate(gpu, &prompt[prompt.len() - keep..], 48, &greedy, |t| {
        answer.push_str(&tokenizer.token_text(t));
        !answer.contains('\n')
    }))?;
    Ok(format!("{text}[{}]", answer.trim_end_matches('\n')))
}

/// The tiny preset on software adapters (they are slow), the shakespeare preset on real GPUs.
pub fn default_preset(gpu: &Gpu) -> &'static str {
    if gpu.is_software() {
        DEFAULT_PRESET
    } else {
        "shakespeare"
    }
}

fn make_tokenizer(spec: &str, text: &str) -> Result<Tokenizer, String> {
    if spec == "char" {
        return Tokenizer::char_level(text);
    }
    if let Some(n) = spec.strip_prefix("bpe:") {
        let n: usize = n.parse().map_err(|_| format!("--tokenizer bpe:N needs a number of tokens, got '{spec}'"))?;
        return Tokenizer::bpe(text, n);
    }
    let bytes = std::fs::read(spec)
        .map_err(|e| format!("--tokenizer: cannot read {spec}: {e} (use char, bpe:N or a tokenizer.json path)"))?;
    Tokenizer::from_json(&bytes)
}
