//! `kiln eval`: a checkpoint's mean loss and perplexity over a whole text (`--data`), or its
//! score on a task, zero-shot or few-shot (`--task`, `--shots`).

use crate::args::EvalArgs;
use crate::checkpoint_io;
use crate::input::{read_corpus, read_task};
use indicatif::{ProgressBar, ProgressStyle};
use kiln::checkpoint::Checkpoint;
use kiln::gpu::Gpu;
use kiln::task_eval::{evaluate_task, EvalOptions};
use kiln::tokenizer::Tokenizer;
use serde_json::json;
use std::path::Path;
use std::rc::Rc;

pub fn run(a: EvalArgs) -> Result<(), String> {
    let ckpt = checkpoint_io::load(&a.checkpoint)?;
    let tokenizer = Tokenizer::from_json(ckpt.tokenizer_json.as_bytes())?;
    match (&a.data, &a.task) {
        (_, Some(task)) => eval_task(&a, task, &ckpt, &tokenizer),
        (Some(data), None) => eval_text(&a, data, &ckpt, &tokenizer),
        (None, None) => Err("give --data FILE (a text) or --task FILE (a task)".into()),
    }
}

/// Uploads the checkpoint's weights for forward-only use, after checking a row fits.
fn upload(gpu: &Gpu, ckpt: &Checkpoint) -> Result<Rc<kiln::gpt::GpuWeights>, String> {
    let layout = kiln::gpt::Layout::for_limits(&gpu.limits);
    kiln::plan::MemoryPlan::new(&ckpt.cfg, 1, ckpt.cfg.block_size, kiln::gpt::Mode::Eval, &layout)
        .check(&gpu.limits)?;
    Ok(Rc::new(kiln::gpt::GpuWeights::upload(gpu, ckpt.cfg, layout, &ckpt.params)?))
}

fn check_vocab(tokens: impl IntoIterator<Item = u32>, vocab: usize) -> Result<(), String> {
    match tokens.into_iter().find(|&t| t as usize >= vocab) {
        Some(bad) => Err(format!(
            "the tokenizer gives token {bad}, outside the model's vocabulary of {vocab}: the tokenizer does not match the model"
        )),
        None => Ok(()),
    }
}

fn eval_text(a: &EvalArgs, data: &Path, ckpt: &Checkpoint, tokenizer: &Tokenizer) -> Result<(), String> {
    let (text, source) = read_corpus(Some(data))?;
    let tokens = tokenizer.encode(&text)?;
    check_vocab(tokens.iter().copied(), ckpt.cfg.vocab_size)?;
    let gpu = crate::gpu_open::open()?;
    let weights = upload(&gpu, ckpt)?;
    let (loss, windows) = pollster::block_on(kiln::train::text_loss(&gpu, weights, &tokens, a.batch))?;
    let predicted = windows * ckpt.cfg.block_size;
    if a.json {
        println!(
            "{}",
            json!({"event": "eval", "loss": loss, "perplexity": loss.exp(), "windows": windows,
                              "tokens": tokens.len(), "predicted": predicted, "data": source})
        );
    } else {
        println!(
            "loss {loss:.4}, perplexity {:.2} over {predicted} predicted tokens ({windows} windows of {}) of {source}",
            loss.exp(),
            ckpt.cfg.block_size
        );
    }
    Ok(())
}

fn eval_task(a: &EvalArgs, task: &Path, ckpt: &Checkpoint, tokenizer: &Tokenizer) -> Result<(), String> {
    let examples = read_task(task)?;
    let pool = match &a.shots_from {
        Some(p) => read_task(p)?,
        None if a.shots > 0 => examples.clone(),
        None => Vec::new(),
    };
    if pool.first().is_some_and(|p| p.is_choice() != examples[0].is_choice()) {
        return Err("--shots-from holds a different kind of example (choices vs open answers) than --task".into());
    }
    kiln::task::check_tokens(tokenizer, ckpt.cfg.vocab_size, &examples)?;
    kiln::task::check_tokens(tokenizer, ckpt.cfg.vocab_size, &pool)?;
    let gpu = crate::gpu_open::open()?;
    let weights = upload(&gpu, ckpt)?;
    let opts = EvalOptions { shots: a.shots, seed: a.seed, batch: a.batch };
    let bar = if a.json { ProgressBar::hidden() } else { ProgressBar::new(examples.len() as u64) };
    bar.set_style(
        ProgressStyle::with_template("{bar:30.cyan/blue} example {pos}/{len} [{elapsed_precise}]")
            .expect("valid template"),
    );
    let score = pollster::block_on(evaluate_task(&gpu, weights, tokenizer, &examples, &pool, &opts, |r| {
        bar.inc(1);
        if a.json {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["event"] = json!("example");
            println!("{v}");
        }
    }))?;
    bar.finish_and_clear();
    if a.json {
        let mut v = serde_json::to_value(&score).unwrap_or_default();
        v["event"] = json!("task");
        v["task"] = json!(task.display().to_string());
        println!("{v}");
        return Ok(());
    }
    let shots = if a.shots == 0 { "zero-shot".to_string() } else { format!("{}-shot", a.shots) };
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    let mut line = format!(
        "{}: {} {} (95% interval {} to {}) over {} examples, {shots}",
        task.display(),
        score.metric,
        pct(score.score),
        pct(score.ci95.0),
        pct(score.ci95.1),
        score.count
    );
    if let Some(acc) = score.accuracy_per_token {
        line += &format!("; ranked by mean log-probability per token: {}", pct(acc));
    }
    if let (Some(f1), Some((lo, hi))) = (score.f1, score.f1_ci95) {
        line += &format!("; F1 {} ({} to {})", pct(f1), pct(lo), pct(hi));
    }
    if score.truncated_examples > 0 {
        line += &format!("; {} prompts lost tokens from the left to fit the context", score.truncated_examples);
    }
    println!("{line}");
    Ok(())
}
