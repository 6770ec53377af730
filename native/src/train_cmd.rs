//! `kiln train`: corpus, tokenizer, model shape, then the training loop with progress and
//! evaluations.

use crate::args::TrainArgs;
use crate::input::read_corpus;
use crate::report::{round4, Reporter};
use kiln::config::{preset, ModelConfig, TrainConfig};
use kiln::data::Dataset;
use kiln::gpu::Gpu;
use kiln::tokenizer::Tokenizer;
use kiln::train::Trainer;
use serde_json::json;
use std::time::Instant;

pub fn run(a: TrainArgs) -> Result<(), String> {
    if a.steps <= 0 {
        return Err(format!("--steps must be a positive number, got {}", a.steps));
    }
    if !(a.lr > 0.0) {
        return Err(format!("--lr must be a positive number, got {}", a.lr));
    }
    let (text, source) = read_corpus(a.data.as_deref())?;
    let tokenizer = make_tokenizer(&a.tokenizer, &text)?;
    let gpu = pollster::block_on(Gpu::new())?;

    // The preset gives the shape; single options override it.
    let preset_name = a.preset.clone().unwrap_or_else(|| default_preset(&gpu).to_string());
    let p = preset(&preset_name)?;
    let cfg = ModelConfig {
        vocab_size: tokenizer.vocab_size(),
        n_layer: a.layers.unwrap_or(p.n_layer),
        n_head: a.heads.unwrap_or(p.n_head),
        n_embd: a.embd.unwrap_or(p.n_embd),
        block_size: a.block.unwrap_or(p.block_size),
    };
    cfg.validate()?;
    let train = TrainConfig {
        batch_size: a.batch.unwrap_or(p.batch_size),
        seq_len: cfg.block_size,
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
    let data = Dataset::new(tokens, a.val_fraction, train.seq_len)?;
    let params = kiln::cpu::init_params(&cfg, a.seed);
    let mut trainer = Trainer::new(&gpu, cfg, train.clone(), data, &params, a.eval_batches)?;

    let mut out = Reporter::new(a.json);
    let n_params = kiln::model::num_params(&cfg);
    let software = if gpu.is_software() { " (a software adapter: expect it to be slow)" } else { "" };
    out.event(
        json!({"event": "start", "params": n_params, "vocab": cfg.vocab_size, "tokens": trainer.data.tokens.len(),
               "train_tokens": trainer.data.train().len(), "val_tokens": trainer.data.val().len(),
               "adapter": gpu.to_string(), "software": gpu.is_software(), "preset": preset_name,
               "layers": cfg.n_layer, "heads": cfg.n_head, "embd": cfg.n_embd, "block": cfg.block_size,
               "batch": train.batch_size, "steps": train.steps, "lr": train.lr, "corpus": source}),
        &format!(
            "training {:.2}M parameters ({} layers, {} heads, {} channels, block {}, batch {}) on {} ({} tokens, vocabulary {})\nadapter: {gpu}{software}",
            n_params as f64 / 1e6, cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, train.batch_size,
            source, trainer.data.tokens.len(), cfg.vocab_size
        ),
    );

    out.start_progress(train.steps, 0);
    let started = Instant::now();
    let mut last = (Instant::now(), 0usize);
    let mut val_loss = None;
    while !trainer.done() {
        let step = trainer.step + 1;
        let log = step % a.log_every.max(1) == 0 || step == 1 || step == train.steps;
        let lr = trainer.lr();
        let loss = pollster::block_on(trainer.step(&gpu, log));
        if let Some(loss) = loss {
            let tps = (trainer.step - last.1) as f64 * trainer.tokens_per_step() as f64 / last.0.elapsed().as_secs_f64();
            last = (Instant::now(), trainer.step);
            out.progress(step, format!("loss {loss:.4} | {tps:.0} tok/s"));
            out.event(json!({"event": "step", "step": step, "loss": round4(loss), "lr": lr, "tokens_per_s": tps.round()}), "");
        }
        if step % a.eval_every.max(1) == 0 || step == train.steps {
            if let Some(v) = pollster::block_on(trainer.evaluate(&gpu)) {
                val_loss = Some(v);
                out.event(json!({"event": "eval", "step": step, "val_loss": round4(v)}), &format!("step {step}: validation loss {v:.4}"));
            }
            last = (Instant::now(), trainer.step); // evaluation time is not training throughput
        }
    }
    out.finish_progress();
    let secs = started.elapsed().as_secs_f64();
    out.event(
        json!({"event": "end", "step": trainer.step, "val_loss": val_loss.map(round4), "seconds": (secs * 10.0).round() / 10.0,
               "ms_per_step": (1000.0 * secs / trainer.step as f64).round()}),
        &format!("done: {} steps in {secs:.1}s, validation loss {}", trainer.step, val_loss.map_or("n/a".into(), |v| format!("{v:.4}"))),
    );
    Ok(())
}

/// The tiny preset on software adapters (they are slow), the shakespeare preset on real GPUs.
fn default_preset(gpu: &Gpu) -> &'static str {
    if gpu.is_software() { "tiny" } else { "shakespeare" }
}

fn make_tokenizer(spec: &str, text: &str) -> Result<Tokenizer, String> {
    if spec == "char" {
        return Tokenizer::char_level(text);
    }
    if let Some(n) = spec.strip_prefix("bpe:") {
        let n: usize = n.parse().map_err(|_| format!("--tokenizer bpe:N needs a number of tokens, got '{spec}'"))?;
        return Tokenizer::bpe(text, n);
    }
    let bytes = std::fs::read(spec).map_err(|e| format!("--tokenizer: cannot read {spec}: {e} (use char, bpe:N or a tokenizer.json path)"))?;
    Tokenizer::from_json(&bytes)
}
