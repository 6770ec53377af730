//! Scoring a model on a task, zero-shot or few-shot: multiple choice by the log-likelihood of
//! each choice's tokens after the prompt; open answers by greedy generation, compared with the
//! completion (exact match and word-overlap F1). Scores come with a 95% interval and the count.
//!
//! Choice scoring runs every (example, choice) row through a forward-only model, many rows per
//! batch; a row's summed loss over its completion tokens is minus the choice's log-probability,
//! as `transformers` computes it. Few-shot prompts put K seeded examples from a pool before the
//! question; a prompt longer than the context loses tokens from the left (counted).

use crate::gpt::{GpuGpt, GpuWeights};
use crate::gpu::Gpu;
use crate::sample::{Generator, SampleOptions};
use crate::task::{self, draw_shots, few_shot_prompt, row_from_tokens, Example, Row};
use crate::tokenizer::Tokenizer;
use serde::Serialize;
use std::rc::Rc;

#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Solved examples before each question (0: zero-shot).
    pub shots: usize,
    pub seed: u64,
    /// Rows per GPU batch when scoring choices.
    pub batch: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions { shots: 0, seed: 1337, batch: 16 }
    }
}

/// What the model did with one example.
#[derive(Clone, Debug, Serialize)]
pub struct ExampleResult {
    pub index: usize,
    /// The choice it ranks first (by summed log-probability), for multiple choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<usize>,
    pub correct: bool,
    /// Whether ranking by the mean per-token log-probability gets it right.
    #[serde(skip)]
    pub correct_per_token: bool,
    /// Summed log-probability of each choice's tokens.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choice_logprobs: Vec<f64>,
    /// The same divided by each choice's token count.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choice_mean_logprobs: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
    /// Prompt tokens cut from the left to fit the context.
    pub truncated: usize,
}

/// A task's score: accuracy for multiple choice, exact match for generation (with its F1).
#[derive(Clone, Debug, Serialize)]
pub struct TaskScore {
    pub metric: &'static str,
    pub score: f64,
    pub ci95: (f64, f64),
    pub count: usize,
    /// Accuracy when choices are ranked by their mean per-token log-probability instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_per_token: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f1_ci95: Option<(f64, f64)>,
    /// Examples whose prompt lost tokens to fit the context.
    pub truncated_examples: usize,
    pub shots: usize,
}

/// Scores `examples`, drawing few-shot examples from `pool`; `on_example` sees each result as
/// it is made (for progress and per-example output).
pub async fn evaluate_task(
    gpu: &Gpu,
    weights: Rc<GpuWeights>,
    tok: &Tokenizer,
    examples: &[Example],
    pool: &[Example],
    opts: &EvalOptions,
    mut on_example: impl FnMut(&ExampleResult),
) -> Result<TaskScore, String> {
    if examples.is_empty() {
        return Err("the task has no examples".into());
    }
    if opts.shots > 0 && pool.len() < opts.shots {
        return Err(format!("{} shots asked for, but the pool of examples holds {}", opts.shots, pool.len()));
    }
    let prompts: Vec<String> = examples
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let seed = opts.seed.wrapping_add(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i as u64 + 1));
            few_shot_prompt(&draw_shots(pool, opts.shots, seed, e), &e.prompt)
        })
        .collect();
    let results = if examples[0].is_choice() {
        score_choices(gpu, weights, tok, examples, &prompts, opts.batch, &mut on_example).await?
    } else {
        generate_answers(gpu, weights, tok, examples, &prompts, &mut on_example).await?
    };
    Ok(summarise(examples[0].is_choice(), &results, opts.shots))
}

fn summarise(choice: bool, results: &[ExampleResult], shots: usize) -> TaskScore {
    let n = results.len();
    let hits = results.iter().filter(|r| r.correct).count();
    let truncated_examples = results.iter().filter(|r| r.truncated > 0).count();
    let (lo, hi) = task::wilson95(hits, n);
    let mut score = TaskScore {
        metric: if choice { "accuracy" } else { "exact_match" },
        score: hits as f64 / n as f64,
        ci95: (lo, hi),
        count: n,
        accuracy_per_token: None,
        f1: None,
        f1_ci95: None,
        truncated_examples,
        shots,
    };
    if choice {
        let by_mean = results.iter().filter(|r| r.correct_per_token).count();
        score.accuracy_per_token = Some(by_mean as f64 / n as f64);
    } else {
        let f1s: Vec<f64> = results.iter().filter_map(|r| r.f1).collect();
        let (mean, lo, hi) = task::mean95(&f1s);
        score.f1 = Some(mean);
        score.f1_ci95 = Some((lo, hi));
    }
    score
}

fn argmax(x: &[f64]) -> usize {
    x.iter().enumerate().fold((0, f64::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0
}

/// Summed and mean log-probability of every choice of every example, `batch` rows at a time.
async fn score_choices(
    gpu: &Gpu,
    weights: Rc<GpuWeights>,
    tok: &Tokenizer,
    examples: &[Example],
    prompts: &[String],
    batch: usize,
    on_example: &mut impl FnMut(&ExampleResult),
) -> Result<Vec<ExampleResult>, String> {
    let block = weights.cfg.block_size;
    // Every (example, choice) row, in order.
    let mut rows: Vec<Row> = Vec::new();
    for (i, (e, prompt)) in examples.iter().zip(prompts).enumerate() {
        let p = tok.encode(prompt)?;
        for c in &e.choices {
            let c = tok.encode(c)?;
            rows.push(row_from_tokens(&p, &c, block).map_err(|why| format!("example {i}: {why}"))?);
        }
    }
    let t = rows.iter().map(|r| r.inputs.len()).max().unwrap_or(1);
    let b = batch.clamp(1, rows.len());
    let model = GpuGpt::on_weights(gpu, weights, b, t, None)?;
    let mut logprobs: Vec<f64> = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(b) {
        let mut refs: Vec<&Row> = chunk.iter().collect();
        let empty = Row { inputs: vec![], targets: vec![], truncated: 0 };
        refs.resize(b, &empty);
        let (inputs, targets) = task::pad_batch(&refs, t);
        model.upload_batch(gpu, &inputs, &targets);
        // Sync point: the losses of every position of the batch.
        let (_, losses) = model.row_losses(gpu).await?;
        for r in 0..chunk.len() {
            logprobs.push(-losses[r * t..(r + 1) * t].iter().map(|&l| l as f64).sum::<f64>());
        }
    }
    let mut out = Vec::with_capacity(examples.len());
    let mut next = 0;
    for (i, e) in examples.iter().enumerate() {
        let k = e.choices.len();
        let sums = logprobs[next..next + k].to_vec();
        let means: Vec<f64> = sums.iter().zip(&rows[next..next + k]).map(|(s, r)| s / r.counted() as f64).collect();
        let prediction = argmax(&sums);
        let result = ExampleResult {
            index: i,
            prediction: Some(prediction),
            correct: Some(prediction) == e.answer,
            correct_per_token: Some(argmax(&means)) == e.answer,
            choice_logprobs: sums,
            choice_mean_logprobs: means,
            generated: None,
            f1: None,
            truncated: rows[next].truncated,
        };
        next += k;
        on_example(&result);
        out.push(result);
    }
    Ok(out)
}

/// Greedy answers, up to the first `ANSWER_END` (a newline), compared with each completion.
async fn generate_answers(
    gpu: &Gpu,
    weights: Rc<GpuWeights>,
    tok: &Tokenizer,
    examples: &[Example],
    prompts: &[String],
    on_example: &mut impl FnMut(&ExampleResult),
) -> Result<Vec<ExampleResult>, String> {
    let block = weights.cfg.block_size;
    let longest = examples.iter().map(|e| tok.encode(&e.completion).map(|c| c.len())).collect::<Result<Vec<_>, _>>()?;
    // Room for answers a little longer than the longest reference, within half the context.
    let max_new = (longest.iter().max().copied().unwrap_or(1) * 3 / 2 + 2).min(block / 2).max(1);
    let mut generator = Generator::new(gpu, weights);
    let greedy = SampleOptions { temperature: 0.0, ..SampleOptions::default() };
    let mut out = Vec::with_capacity(examples.len());
    for (i, (e, prompt)) in examples.iter().zip(prompts).enumerate() {
        let p = tok.encode(prompt)?;
        if p.is_empty() {
            return Err(format!("example {i}: the prompt has no tokens the tokenizer knows"));
        }
        let keep = p.len().min(block - max_new);
        let truncated = p.len() - keep;
        let mut text = String::new();
        let tokens = generator
            .generate(gpu, &p[truncated..], max_new, &greedy, |t| {
                text.push_str(&tok.token_text(t));
                !text.contains(task::ANSWER_END)
            })
            .await?;
        let answer = tok.decode(&tokens);
        let answer = answer.split(task::ANSWER_END).next().unwrap_or("").to_string();
        let result = ExampleResult {
            index: i,
            prediction: None,
            correct: task::exact_match(&answer, &e.completion),
            correct_per_token: false,
            choice_logprobs: vec![],
            choice_mean_logprobs: vec![],
            f1: Some(task::token_f1(&answer, &e.completion)),
            generated: Some(answer),
            truncated,
        };
        on_example(&result);
        out.push(result);
    }
    Ok(out)
}
