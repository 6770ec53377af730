//! The page's Fine-tune tab: a task (a built-in one, or the visitor's JSON lines) scored
//! zero-shot and few-shot, the model in the tab fine-tuned on it in place, and scored again;
//! with how far each part of the model's weights moved.
//!
//! Full fine-tuning (every weight trains) or LoRA (the weights frozen, adapters train; scores,
//! samples and the view of what changed then use the weights with the adapters merged in); only
//! the completion's tokens count in the loss (`kiln::task::TaskData`). A new `Trainer` over the model's current weights replaces the
//! tab's, so the worker drives it with the same `train(n)` and `evaluate()` as pre-training, and
//! Sample, Look inside and Download then use the fine-tuned model. Files are not read here: the
//! worker fetches the built-in tasks or reads the chosen file and passes text.

use crate::{err, with_state, Session, State};
use kiln::config::TrainConfig;
use kiln::gpt::{Layout, Mode};
use kiln::plan::MemoryPlan;
use kiln::task::{parse_examples, split_validation, Example, TaskData};
use kiln::task_eval::{evaluate_task, EvalOptions, ExampleResult};
use kiln::tokenizer::Tokenizer;
use kiln::train::{TrainData, Trainer};
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

/// Examples shown with their answers, from the top of the test part.
const SHOWN: usize = 5;
/// The weights before fine-tuning are kept (on the CPU, for the view of what changed) up to
/// this many parameters: 200 MB of f32.
const KEEP_BEFORE: usize = 50_000_000;
const NO_MODEL: &str = "no model yet: train one in the Train tab, or open one, first";

/// A task as the tab holds it: the examples to train on (and draw shots from), and to test on.
pub(crate) struct Task {
    name: String,
    train: Vec<Example>,
    test: Vec<Example>,
}

#[wasm_bindgen]
impl Session {
    /// Parses a task's training part and its test part (empty `test`: a seeded tenth of
    /// `train` is held out for testing) and keeps it for the calls below. Errors name the file
    /// and line. Returns {"name","kind","train","test","choices","held_out"}.
    pub fn set_task(
        &self,
        name: &str,
        train_name: &str,
        train: &str,
        test_name: &str,
        test: &str,
    ) -> Result<String, JsValue> {
        let mut guard = self.state.borrow_mut();
        let state = guard.as_mut().ok_or_else(|| err("busy: another GPU operation is still running"))?;
        state.task = None;
        let train = parse_examples(train, train_name).map_err(err)?;
        let held_out = test.trim().is_empty();
        let (train, test) = if held_out {
            if train.len() < 2 {
                return Err(err(format!("{train_name} holds one example: give at least two, or a test file")));
            }
            let (train, test) = split_validation(train, TrainConfig::finetune().seed);
            (train, test)
        } else {
            (train, parse_examples(test, test_name).map_err(err)?)
        };
        if train[0].is_choice() != test[0].is_choice() {
            return Err(err("the training and test files hold different kinds of example (choices vs open answers)"));
        }
        let choices = test.iter().map(|e| e.choices.len()).max().unwrap_or(0);
        let info = json!({"name": name, "kind": if test[0].is_choice() { "choice" } else { "open" },
            "train": train.len(), "test": test.len(), "choices": choices, "held_out": held_out});
        state.task = Some(Task { name: name.to_string(), train, test });
        Ok(info.to_string())
    }

    /// Scores the model in the tab on the first `limit` test examples, with `shots` solved
    /// training examples before each question; `on_example(done, total)` after each. Resolves
    /// to {"score": TaskScore, "examples": [{"prompt","answer","said","correct","seen"}],
    /// "block"}; `seen`, zero-shot only, is the end of the prompt that fitted the context.
    pub fn score_task(&self, shots: u32, limit: u32, on_example: js_sys::Function) -> js_sys::Promise {
        with_state(&self.state, move |s| async move {
            let r = score(&s, shots as usize, limit as usize, &on_example).await;
            (s, r)
        })
    }

    /// Replaces the tab's trainer by one that fine-tunes the model's current weights on the
    /// task's training part (a tenth held out for the completion loss). `config`: {"steps",
    /// "lr", "batch"}, each falling back to `TrainConfig::finetune()`. Then `train(n)` and
    /// `evaluate()` drive it. Resolves to the run's shape: rows, tokens, batch, length, steps.
    pub fn finetune(&self, config: String) -> js_sys::Promise {
        with_state(&self.state, move |mut s| async move {
            let r = start(&mut s, &config).await;
            (s, r)
        })
    }

    /// How far each part of the model moved since fine-tuning began: JSON [{"part","change",
    /// "norm"}], `change` = |W_after - W_before| / |W_before| over the part's tensors.
    pub fn weight_changes(&self) -> js_sys::Promise {
        with_state(&self.state, |mut s| async move {
            let r = changes(&mut s).await;
            (s, r)
        })
    }
}

fn check_tokens(tok: &Tokenizer, vocab: usize, examples: &[Example]) -> Result<(), JsValue> {
    kiln::task::check_tokens(tok, vocab, examples).map_err(err)
}

async fn score(s: &State, shots: usize, limit: usize, on_example: &js_sys::Function) -> Result<JsValue, JsValue> {
    let task = s.task.as_ref().ok_or_else(|| err("choose a task first"))?;
    let run = s.run.as_ref().ok_or_else(|| err(NO_MODEL))?;
    let test = &task.test[..limit.clamp(1, task.test.len())];
    check_tokens(&run.tokenizer, run.cfg.vocab_size, test)?;
    if shots > 0 {
        check_tokens(&run.tokenizer, run.cfg.vocab_size, &task.train)?;
    }
    let opts = EvalOptions { shots, ..EvalOptions::default() };
    let mut shown: Vec<ExampleResult> = Vec::new();
    let total = JsValue::from_f64(test.len() as f64);
    let weights = current_weights(&s.gpu, run).await?;
    let score = evaluate_task(&s.gpu, weights, &run.tokenizer, test, &task.train, &opts, |r| {
        if r.index < SHOWN {
            shown.push(r.clone());
        }
        let _ = on_example.call2(&JsValue::NULL, &JsValue::from_f64((r.index + 1) as f64), &total);
    })
    .await
    .map_err(err)?;
    let mut examples: Vec<Value> = Vec::new();
    for r in &shown {
        let e = &test[r.index];
        let said = match (r.prediction, &r.generated) {
            (Some(p), _) => e.choices[p].clone(),
            (None, Some(g)) => g.clone(),
            (None, None) => String::new(),
        };
        let seen = if shots == 0 {
            let ids = run.tokenizer.encode(&e.prompt).map_err(err)?;
            Some(run.tokenizer.decode(&ids[r.truncated.min(ids.len())..]))
        } else {
            None
        };
        examples.push(
            json!({"prompt": e.prompt, "answer": e.completion, "said": said, "correct": r.correct, "seen": seen}),
        );
    }
    let out = json!({"task": task.name, "score": score, "examples": examples, "block": run.cfg.block_size});
    Ok(JsValue::from_str(&out.to_string()))
}

async fn start(s: &mut State, config: &str) -> Result<JsValue, JsValue> {
    let task = s.task.as_ref().ok_or_else(|| err("choose a task first"))?;
    let run = s.run.as_mut().ok_or_else(|| err(NO_MODEL))?;
    let v: Value = serde_json::from_str(config).map_err(|e| err(format!("bad settings: {e}")))?;
    let d = TrainConfig::finetune();
    let steps = v["steps"].as_u64().map_or(d.steps, |x| x as usize);
    let (train_part, val_part) = split_validation(task.train.clone(), d.seed);
    check_tokens(&run.tokenizer, run.cfg.vocab_size, &task.train)?;
    let data = TaskData::new(&run.tokenizer, &train_part, &val_part, run.cfg.block_size).map_err(err)?;
    let train = TrainConfig {
        batch_size: v["batch"].as_u64().map_or(d.batch_size, |x| x as usize),
        seq_len: data.longest(),
        steps,
        lr: v["lr"].as_f64().map_or(d.lr, |x| x as f32),
        // The page's runs are short: warm up over at most a tenth of them.
        warmup: d.warmup.min(steps / 10),
        lora: (v["method"].as_str() == Some("lora")).then(|| {
            let rank = v["rank"].as_u64().map_or(kiln::config::LORA_RANK, |r| r as usize);
            kiln::lora::LoraConfig { rank, alpha: kiln::lora::LoraConfig::default_alpha(rank) }
        }),
        ..d
    };
    train.validate(&run.cfg).map_err(err)?;
    let layout = Layout::for_limits(&s.gpu.limits);
    MemoryPlan::new(&run.cfg, train.batch_size, train.seq_len, Mode::Train, &layout)
        .check(&s.gpu.limits)
        .map_err(|why| err(format!("fine-tuning this model does not fit this GPU: {why}")))?;
    let (rows, val_rows, truncated) = (data.train.len(), data.val.len(), data.truncated());
    let (tokens, val_tokens) = data.counted();
    // Sync point: the weights as they are now, to start from (and to compare with afterwards).
    let params = run.generator.weights().read(&s.gpu).await.map_err(err)?;
    run.trainer = None; // frees the old gradients, moments and activations first
    run.tuned_from = None;
    let trainer = Trainer::new(&s.gpu, run.cfg, train, TrainData::Task(data), &params, 0)
        .map_err(|e| err(format!("cannot fine-tune: {e} (the model is kept, for sampling only)")))?;
    run.generator = trainer.generator(&s.gpu);
    if params.iter().map(Vec::len).sum::<usize>() <= KEEP_BEFORE {
        run.tuned_from = Some(params);
    }
    let info = json!({"task": task.name, "rows": rows, "val_rows": val_rows, "tokens": tokens, "val_tokens": val_tokens,
        "truncated": truncated, "batch": trainer.train.batch_size, "seq_len": trainer.train.seq_len,
        "steps": trainer.train.steps, "lr": trainer.train.lr, "tokens_per_step": trainer.tokens_per_step()});
    run.trainer = Some(trainer);
    Ok(JsValue::from_str(&info.to_string()))
}

/// The part of the model a tensor belongs to, named as the shape table names it.
fn part(name: &str) -> String {
    match name.split('.').collect::<Vec<_>>()[..] {
        ["wte", ..] => "token embedding wte".into(),
        ["wpe", ..] => "position embedding wpe".into(),
        ["h", l, kind, ..] if kind == "attn" || kind == "ln_1" => format!("block {l}: attention"),
        ["h", l, ..] => format!("block {l}: MLP"),
        _ => "final layer norm".into(),
    }
}

/// The weights the model computes with: a LoRA trainer's merged with its adapters (a copy).
async fn current_weights(
    gpu: &kiln::gpu::Gpu,
    run: &crate::Run,
) -> Result<std::rc::Rc<kiln::gpt::GpuWeights>, JsValue> {
    match &run.trainer {
        Some(t) if t.train.lora.is_some() => t.current_weights(gpu).await.map_err(err),
        _ => Ok(run.generator.weights().clone()),
    }
}

async fn changes(s: &mut State) -> Result<JsValue, JsValue> {
    let State { gpu, run, .. } = s;
    let run = run.as_mut().ok_or_else(|| err(NO_MODEL))?;
    if run.trainer.as_ref().is_some_and(|t| t.train.lora.is_some()) {
        // Samples and Look inside from here on see the adapters too.
        let merged = current_weights(gpu, run).await?;
        run.generator = kiln::sample::Generator::new(gpu, merged);
    }
    let before = run.tuned_from.as_ref().ok_or_else(|| {
        err(format!("the weights before fine-tuning are kept only for models up to {KEEP_BEFORE} parameters"))
    })?;
    // Sync point: the weights now.
    let after = run.generator.weights().read(gpu).await.map_err(err)?;
    let table = kiln::model::param_table(&run.cfg);
    // (part, sum of squared changes, sum of squared weights before), in table order.
    let mut parts: Vec<(String, f64, f64)> = Vec::new();
    for ((spec, b), a) in table.iter().zip(before).zip(&after) {
        let name = part(&spec.name);
        let d2: f64 = b.iter().zip(a).map(|(x, y)| ((y - x) as f64).powi(2)).sum();
        let b2: f64 = b.iter().map(|&x| (x as f64).powi(2)).sum();
        match parts.last_mut() {
            Some(last) if last.0 == name => {
                last.1 += d2;
                last.2 += b2;
            }
            _ => parts.push((name, d2, b2)),
        }
    }
    let rows: Vec<Value> = parts
        .iter()
        .map(|(p, d2, b2)| json!({"part": p, "change": d2.sqrt() / b2.sqrt().max(1e-12), "norm": b2.sqrt()}))
        .collect();
    Ok(JsValue::from_str(&json!(rows).to_string()))
}
