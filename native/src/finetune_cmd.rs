//! `kiln finetune`: a checkpoint and a task file in, a fine-tuned run folder out, through the
//! same training loop, progress, metrics, plot and resume as `kiln train`.
//!
//! Everything a user can get wrong (the files, the examples, the fit of the tokenizer and the
//! context) is checked before the run folder is created, so a bad input writes nothing.

use crate::args::FinetuneArgs;
use crate::args::MergeArgs;
use crate::checkpoint_io;
use crate::input::{read_task, run_folder_name};
use crate::report::Reporter;
use crate::train_cmd::{resume, train_loop, History, Settings};
use kiln::config::{ModelConfig, RunSettings, TrainConfig};
use kiln::lora::LoraConfig;
use kiln::task::{split_validation, TaskData};
use kiln::tokenizer::Tokenizer;
use kiln::train::{TrainData, Trainer};
use std::path::{Path, PathBuf};

pub fn run(a: FinetuneArgs) -> Result<(), String> {
    if let Some(dir) = &a.resume {
        return resume(dir, a.json, a.stop_after);
    }
    let (Some(dir), Some(task)) = (&a.checkpoint, &a.task) else {
        return Err("give --checkpoint DIR and --task FILE (or --resume DIR)".into());
    };
    if a.steps <= 0 {
        return Err(format!("--steps must be a positive number, got {}", a.steps));
    }
    let ckpt = checkpoint_io::load(dir)?;
    let tokenizer = Tokenizer::from_json(ckpt.tokenizer_json.as_bytes())?;
    let (data, source) = task_data(&tokenizer, task, a.val.as_deref(), &ckpt.cfg, a.seed)?;
    let train = TrainConfig {
        batch_size: a.batch,
        seq_len: data.longest(),
        steps: a.steps as usize,
        lr: a.lr,
        warmup: a.warmup,
        weight_decay: a.weight_decay,
        grad_clip: a.grad_clip,
        seed: a.seed,
        lora: a.lora.map(|rank| LoraConfig { rank, alpha: a.lora_alpha.unwrap_or(LoraConfig::default_alpha(rank)) }),
        ..TrainConfig::finetune()
    };
    train.validate(&ckpt.cfg)?;
    let truncated = data.truncated();
    let sample_prompt = first_val_prompt(task, a.val.as_deref(), a.seed)?;
    let settings = Settings {
        base: Some(std::fs::canonicalize(dir).unwrap_or(dir.clone())),
        data: None,
        task: Some(std::fs::canonicalize(task).unwrap_or(task.clone())),
        val: a.val.as_ref().map(|p| std::fs::canonicalize(p).unwrap_or(p.clone())),
        sample_prompt: Some(sample_prompt),
        preset: match a.lora {
            Some(r) => format!("LoRA rank {r} on {}", dir.display()),
            None => format!("finetune of {}", dir.display()),
        },
        tokenizer: "from --checkpoint".into(),
        val_fraction: RunSettings::finetune().val_fraction,
        eval_every: a.eval_every,
        eval_batches: 0,
        log_every: a.log_every,
        sample_every: a.sample_every,
        checkpoint_every: a.checkpoint_every,
    };
    let gpu = crate::gpu_open::open()?;
    let trainer = Trainer::new(&gpu, ckpt.cfg, train, TrainData::Task(data), &ckpt.params, 0)?;
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(run_folder_name("finetune")));
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create the run folder {}: {e}", out.display()))?;
    let metrics = std::fs::File::create(out.join("metrics.jsonl"))
        .map_err(|e| format!("cannot write in {}: {e}", out.display()))?;
    let mut report = Reporter::new(a.json);
    report.keep_metrics(metrics);
    if truncated > 0 {
        report.event(
            serde_json::json!({"event": "truncated", "examples": truncated}),
            &format!("{truncated} examples were longer than the context: their prompts lost tokens from the left"),
        );
    }
    train_loop(&gpu, trainer, &tokenizer, &settings, &source, &out, report, History::default(), a.stop_after)
}

/// The task's rows for training and validation (a seeded tenth of the task without `val`),
/// checked against the model: every token inside its vocabulary, every example inside its
/// context. Returns the rows and a description of where they came from.
pub fn task_data(
    tokenizer: &Tokenizer,
    task: &Path,
    val: Option<&Path>,
    cfg: &ModelConfig,
    seed: u64,
) -> Result<(TaskData, String), String> {
    let (train, val_examples, source) = match val {
        Some(v) => (read_task(task)?, read_task(v)?, format!("{} (validation {})", task.display(), v.display())),
        None => {
            let (t, v) = split_validation(read_task(task)?, seed);
            (t, v, format!("{} (a tenth held out for validation)", task.display()))
        }
    };
    let data = TaskData::new(tokenizer, &train, &val_examples, cfg.block_size)?;
    let too_big = data.train.iter().chain(&data.val).flat_map(|r| &r.inputs).find(|&&t| t as usize >= cfg.vocab_size);
    if let Some(t) = too_big {
        return Err(format!(
            "the checkpoint's tokenizer gives token {t}, outside its model's vocabulary of {}: the tokenizer does not match the model",
            cfg.vocab_size
        ));
    }
    Ok((data, source))
}

/// The prompt that samples during fine-tuning answer: the first validation example's.
fn first_val_prompt(task: &Path, val: Option<&Path>, seed: u64) -> Result<String, String> {
    let examples = match val {
        Some(v) => read_task(v)?,
        None => split_validation(read_task(task)?, seed).1,
    };
    Ok(examples.first().map(|e| e.prompt.clone()).unwrap_or_default())
}

/// `kiln merge`: the adapters folded into their base's weights, written as a plain checkpoint.
pub fn merge(a: MergeArgs) -> Result<(), String> {
    let ckpt = match &a.adapter {
        Some(adapter) => checkpoint_io::load_merged(&a.checkpoint, adapter)?,
        None if checkpoint_io::is_adapter_folder(&a.checkpoint) => checkpoint_io::load(&a.checkpoint)?,
        None => {
            return Err(format!(
                "{} holds no adapters: give a LoRA run folder, or the base with --adapter DIR",
                a.checkpoint.display()
            ))
        }
    };
    if a.out.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!("{} is not empty: give a new folder for the merged checkpoint", a.out.display()));
    }
    checkpoint_io::save(&a.out, &kiln::checkpoint::Checkpoint { state: None, ..ckpt })?;
    eprintln!("merged checkpoint written to {}", a.out.display());
    Ok(())
}
