//! Task files for fine-tuning and prompting: JSON lines of `{"prompt", "completion"}`, with
//! `"choices"` and `"answer"` for multiple choice; their checks, and their rows of tokens.
//!
//! A row is the prompt's tokens then the completion's, shifted by one into inputs and targets;
//! only the completion's tokens are targets (the prompt's are `IGNORE`, PyTorch's -100), so the
//! loss and the scores count what the model says, not what it was told. A row longer than the
//! context loses prompt tokens from the left (counted, so front ends can say so); a completion
//! that alone does not fit is refused. An open (generated) answer is trained with a newline after
//! it, `ANSWER_END`, so the model learns where to stop: evaluation reads its answer up to the first
//! newline, as a few-shot prompt shows it. No files here: front ends read bytes and pass text.

use crate::cpu::Rng;
use crate::gpt::IGNORE;
use crate::tokenizer::Tokenizer;
use serde_json::Value;

/// One task example. `completion` is `choices[answer]` for multiple choice.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub prompt: String,
    pub completion: String,
    pub choices: Vec<String>,
    pub answer: Option<usize>,
}

impl Example {
    pub fn is_choice(&self) -> bool {
        !self.choices.is_empty()
    }
}

/// Parses a task file. `what` names it in errors, which give the line: "train.jsonl line 7: ...".
pub fn parse_examples(text: &str, what: &str) -> Result<Vec<Example>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |why: String| format!("{what} line {}: {why}", i + 1);
        let v: Value = serde_json::from_str(line).map_err(|e| at(format!("not valid JSON ({e})")))?;
        out.push(example_from_json(&v).map_err(at)?);
    }
    if out.is_empty() {
        return Err(format!("{what} holds no examples: give one JSON object per line"));
    }
    let kinds = out.iter().filter(|e| e.is_choice()).count();
    if kinds != 0 && kinds != out.len() {
        return Err(format!("{what} mixes multiple-choice examples with open ones: keep one kind per file"));
    }
    Ok(out)
}

fn example_from_json(v: &Value) -> Result<Example, String> {
    let obj = v.as_object().ok_or("expected a JSON object like {\"prompt\": ..., \"completion\": ...}")?;
    let text = |key: &str| -> Result<Option<String>, String> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("\"{key}\" must be a string")),
        }
    };
    let prompt = text("prompt")?.ok_or("no \"prompt\"")?;
    let mut completion = text("completion")?;
    let (mut choices, mut answer) = (Vec::new(), None);
    if let Some(c) = obj.get("choices") {
        let list = c.as_array().ok_or("\"choices\" must be a list of strings")?;
        for item in list {
            choices.push(item.as_str().ok_or("\"choices\" must be a list of strings")?.to_string());
        }
        if choices.is_empty() || choices.iter().any(String::is_empty) {
            return Err("\"choices\" is empty or holds an empty choice".into());
        }
        let n = obj.get("answer").and_then(Value::as_u64).ok_or("\"choices\" needs \"answer\": an index")?;
        let n = n as usize;
        if n >= choices.len() {
            return Err(format!("\"answer\" {n} is out of range for {} choices", choices.len()));
        }
        if completion.as_ref().is_some_and(|c| c != &choices[n]) {
            return Err("\"completion\" differs from choices[answer]".into());
        }
        completion = Some(choices[n].clone());
        answer = Some(n);
    } else if obj.contains_key("answer") {
        return Err("\"answer\" without \"choices\"".into());
    }
    let completion = completion.ok_or("no \"completion\"")?;
    if completion.is_empty() {
        return Err("\"completion\" is empty".into());
    }
    Ok(Example { prompt, completion, choices, answer })
}

/// A seeded tenth (at least one, at most all but one) of `examples` for validation, and the
/// rest for training, both in file order.
pub fn split_validation(examples: Vec<Example>, seed: u64) -> (Vec<Example>, Vec<Example>) {
    let n = examples.len();
    let val = (n / 10).clamp(1.min(n.saturating_sub(1)), n.saturating_sub(1));
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, &mut Rng::new(seed ^ 0x7A5C));
    let held: std::collections::BTreeSet<usize> = order[..val].iter().copied().collect();
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for (i, e) in examples.into_iter().enumerate() {
        if held.contains(&i) {
            valid.push(e)
        } else {
            train.push(e)
        }
    }
    (train, valid)
}

/// Fisher-Yates with the project's seeded generator.
pub fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// The prompt with `shots` solved examples before it, each followed by a blank line.
pub fn few_shot_prompt(shots: &[&Example], prompt: &str) -> String {
    let mut s = String::new();
    for e in shots {
        s.push_str(&e.prompt);
        s.push_str(&e.completion);
        s.push_str("\n\n");
    }
    s.push_str(prompt);
    s
}

/// `k` examples drawn from `pool`, seeded, never one with the question's own prompt (pools and
/// test sets may overlap when a person passes one file twice).
pub fn draw_shots<'a>(pool: &'a [Example], k: usize, seed: u64, question: &Example) -> Vec<&'a Example> {
    let mut rng = Rng::new(seed);
    let mut order: Vec<usize> = (0..pool.len()).filter(|&i| pool[i].prompt != question.prompt).collect();
    shuffle(&mut order, &mut rng);
    order.into_iter().take(k).map(|i| &pool[i]).collect()
}

/// One example as a row of inputs and targets (equal lengths; targets `IGNORE` except the
/// completion's tokens), at most `max_len` long.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
    /// Prompt tokens cut from the left to fit.
    pub truncated: usize,
}

impl Row {
    /// Tokens that count in the loss.
    pub fn counted(&self) -> usize {
        self.targets.iter().filter(|&&t| t != IGNORE).count()
    }
}

/// Tokenizes `prompt` and `completion` apart (so the completion's tokens are the same whatever
/// precedes it) and joins them into a row of at most `max_len` positions.
pub fn encode_row(tok: &Tokenizer, prompt: &str, completion: &str, max_len: usize) -> Result<Row, String> {
    let p = tok.encode(prompt)?;
    let c = tok.encode(completion)?;
    row_from_tokens(&p, &c, max_len)
}

pub fn row_from_tokens(prompt: &[u32], completion: &[u32], max_len: usize) -> Result<Row, String> {
    if completion.is_empty() {
        return Err("the completion has no tokens the tokenizer knows".into());
    }
    if prompt.is_empty() {
        return Err("the prompt has no tokens the tokenizer knows".into());
    }
    // Positions: every token but the last is an input; the completion's tokens are targets, so
    // at least one prompt token must stay.
    if completion.len() > max_len {
        return Err(format!(
            "a completion of {} tokens does not fit a context of {max_len}: shorten it or use a longer block",
            completion.len()
        ));
    }
    let keep = prompt.len().min(max_len + 1 - completion.len());
    let truncated = prompt.len() - keep;
    let seq: Vec<u32> = prompt[truncated..].iter().chain(completion).copied().collect();
    let inputs = seq[..seq.len() - 1].to_vec();
    let mut targets = seq[1..].to_vec();
    targets[..keep - 1].fill(IGNORE);
    Ok(Row { inputs, targets, truncated })
}

/// Rows padded to `t` positions (input 0, target `IGNORE`) and joined into one (B, T) batch.
pub fn pad_batch(rows: &[&Row], t: usize) -> (Vec<u32>, Vec<u32>) {
    let (mut inputs, mut targets) = (Vec::with_capacity(rows.len() * t), Vec::with_capacity(rows.len() * t));
    for r in rows {
        inputs.extend(r.inputs.iter().copied().chain(std::iter::repeat(0)).take(t));
        targets.extend(r.targets.iter().copied().chain(std::iter::repeat(IGNORE)).take(t));
    }
    (inputs, targets)
}

/// Words of `s`, lower-cased, punctuation stripped: what exact match and F1 compare.
pub fn normalized_words(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

pub fn exact_match(prediction: &str, reference: &str) -> bool {
    normalized_words(prediction) == normalized_words(reference)
}

/// Word-overlap F1 between a generated answer and the reference (SQuAD's measure).
pub fn token_f1(prediction: &str, reference: &str) -> f64 {
    let (p, r) = (normalized_words(prediction), normalized_words(reference));
    if p.is_empty() || r.is_empty() {
        return (p == r) as u8 as f64;
    }
    let mut left = r.clone();
    let mut common = 0usize;
    for w in &p {
        if let Some(i) = left.iter().position(|x| x == w) {
            left.swap_remove(i);
            common += 1;
        }
    }
    if common == 0 {
        return 0.0;
    }
    let (precision, recall) = (common as f64 / p.len() as f64, common as f64 / r.len() as f64);
    2.0 * precision * recall / (precision + recall)
}

/// 95% interval of a proportion of `hits` in `n` (Wilson's score interval: sensible at 0 and n).
pub fn wilson95(hits: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (z, n) = (1.959964f64, n as f64);
    let p = hits as f64 / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// 95% interval of a mean of scores in [0, 1] (normal approximation), for F1.
pub fn mean95(scores: &[f64]) -> (f64, f64, f64) {
    let n = scores.len() as f64;
    if scores.is_empty() {
        return (0.0, 0.0, 1.0);
    }
    let mean = scores.iter().sum::<f64>() / n;
    let var = if n > 1.0 { scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    let half = 1.959964 * (var / n).sqrt();
    (mean, (mean - half).max(0.0), (mean + half).min(1.0))
}

/// What ends an open answer, in training rows and when one is generated.
pub const ANSWER_END: &str = "\n";

/// The completion a training row ends with: for an open answer, followed by `ANSWER_END`.
pub fn trained_completion(e: &Example) -> String {
    if e.is_choice() {
        e.completion.clone()
    } else {
        format!("{}{ANSWER_END}", e.completion)
    }
}

/// A task's examples as rows for training: training rows drawn at random each step, every
/// validation row in the evaluation.
pub struct TaskData {
    pub train: Vec<Row>,
    pub val: Vec<Row>,
}

impl TaskData {
    /// Rows of at most `max_len` positions; an example that cannot fit is an error naming it.
    pub fn new(tok: &Tokenizer, train: &[Example], val: &[Example], max_len: usize) -> Result<TaskData, String> {
        let rows = |part: &[Example], what: &str| -> Result<Vec<Row>, String> {
            part.iter()
                .enumerate()
                .map(|(i, e)| {
                    encode_row(tok, &e.prompt, &trained_completion(e), max_len)
                        .map_err(|why| format!("{what} example {}: {why}", i + 1))
                })
                .collect()
        };
        let data = TaskData { train: rows(train, "training")?, val: rows(val, "validation")? };
        if data.train.is_empty() {
            return Err("no training examples".into());
        }
        Ok(data)
    }

    /// Positions the longest row needs: the sequence length to train at.
    pub fn longest(&self) -> usize {
        self.train.iter().chain(&self.val).map(|r| r.inputs.len()).max().unwrap_or(1)
    }

    /// Examples whose prompt lost tokens from the left to fit.
    pub fn truncated(&self) -> usize {
        self.train.iter().chain(&self.val).filter(|r| r.truncated > 0).count()
    }

    /// Tokens that count in the loss: (training, validation).
    pub fn counted(&self) -> (usize, usize) {
        (self.train.iter().map(Row::counted).sum(), self.val.iter().map(Row::counted).sum())
    }

    /// `b` training rows drawn at random, padded to `t`.
    pub fn sample_batch(&self, rng: &mut Rng, b: usize, t: usize) -> (Vec<u32>, Vec<u32>) {
        let rows: Vec<&Row> =
            (0..b).map(|_| &self.train[(rng.next_u64() % self.train.len() as u64) as usize]).collect();
        pad_batch(&rows, t)
    }

    /// Every validation row, `b` to a batch (the last filled with rows that count nothing).
    pub fn eval_batches(&self, b: usize, t: usize) -> Vec<(Vec<u32>, Vec<u32>)> {
        let empty = Row { inputs: vec![], targets: vec![], truncated: 0 };
        self.val
            .chunks(b)
            .map(|chunk| {
                let mut rows: Vec<&Row> = chunk.iter().collect();
                rows.resize(b, &empty);
                pad_batch(&rows, t)
            })
            .collect()
    }
}

/// Every token the model will read must be inside its vocabulary: a tokenizer that gives a
/// larger id does not belong to the model (an opened model's, or one passed by hand).
pub fn check_tokens(tok: &Tokenizer, vocab: usize, examples: &[Example]) -> Result<(), String> {
    for e in examples {
        for text in std::iter::once(&e.prompt).chain(&e.choices).chain(std::iter::once(&e.completion)) {
            if let Some(t) = tok.encode(text)?.into_iter().find(|&t| t as usize >= vocab) {
                return Err(format!(
                    "the tokenizer gives token {t}, outside the model's vocabulary of {vocab}: the tokenizer does not match the model"
                ));
            }
        }
    }
    Ok(())
}
