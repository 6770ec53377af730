//! The page's "Open model": a Hugging Face GPT-2 folder (config.json, model.safetensors, and
//! tokenizer.json or vocab.json + merges.txt), inspected from its config before anything is
//! loaded, then opened for training on the page's corpus where that fits this GPU, or else for
//! sampling only.

use crate::{err, parse_config, run_info, Run, Session};
use kiln::checkpoint::{parse_config_json, Checkpoint, CONFIG};
use kiln::config::ModelConfig;
use kiln::data::Dataset;
use kiln::gpt::{GpuWeights, Layout, Mode};
use kiln::plan::{mib, MemoryPlan};
use kiln::sample::Generator;
use kiln::tokenizer::Tokenizer;
use kiln::train::Trainer;
use serde_json::json;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// The files the page passed, by base name (a folder's path is dropped).
fn files(names: &js_sys::Array, contents: &js_sys::Array, only: Option<&str>) -> HashMap<String, Vec<u8>> {
    let mut out = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        let Some(name) = name.as_string() else { continue };
        let base = name.rsplit('/').next().unwrap_or(&name).to_string();
        if only.is_some_and(|o| o != base) {
            continue;
        }
        out.insert(base, js_sys::Uint8Array::new(&contents.get(i as u32)).to_vec());
    }
    out
}

/// Bytes to sample from `cfg`: its weights, the KV cache and one row of logits.
fn sampling_bytes(cfg: &ModelConfig, layout: &Layout) -> u64 {
    let weights = MemoryPlan::new(cfg, 1, 1, Mode::Eval, layout).weight_bytes;
    weights + 8 * (cfg.n_layer * cfg.block_size * cfg.n_embd) as u64 + 4 * cfg.vocab_size as u64
}

#[wasm_bindgen]
impl Session {
    /// The model's shape, parameter count and the memory it needs to sample and to train (at
    /// the page's batch and block), from its config.json alone; nothing is loaded.
    pub fn inspect_model(
        &self,
        names: js_sys::Array,
        contents: js_sys::Array,
        config: &str,
    ) -> Result<String, JsValue> {
        let f = files(&names, &contents, Some(CONFIG));
        let bytes =
            f.get(CONFIG).ok_or_else(|| err("the chosen files have no config.json: choose a model's folder"))?;
        let cfg = parse_config_json(bytes).map_err(err)?;
        let (_, train, _) = parse_config(config, Some(cfg.vocab_size))?;
        let (b, t) = (train.batch_size, train.seq_len.min(cfg.block_size));
        let layout = Layout::for_limits(&self.gpu_limits);
        let plan = MemoryPlan::new(&cfg, b, t, Mode::Train, &layout);
        let sample_check = MemoryPlan::new(&cfg, 1, 1, Mode::Eval, &layout).check(&self.gpu_limits);
        let train_check = plan.check(&self.gpu_limits);
        Ok(json!({"layers": cfg.n_layer, "heads": cfg.n_head, "embd": cfg.n_embd, "vocab": cfg.vocab_size,
            "positions": cfg.block_size, "params": kiln::model::num_params(&cfg),
            "sample_mib": mib(sampling_bytes(&cfg, &layout)), "train_mib": mib(plan.total_bytes() + sampling_bytes(&cfg, &layout)),
            "batch": b, "block": t, "can_sample": sample_check.is_ok(), "can_train": train_check.is_ok(),
            "reason": sample_check.err().or(train_check.err())})
        .to_string())
    }

    /// Loads the model in `files` and opens it for training on `text` (its own tokenizer, the
    /// page's batch, block, steps and learning rate), or for sampling only where training does
    /// not fit. A model that cannot even be sampled is refused with the figure that does not fit.
    pub fn open_model(
        &self,
        names: js_sys::Array,
        contents: js_sys::Array,
        text: &str,
        config: &str,
    ) -> Result<String, JsValue> {
        let mut guard = self.state.borrow_mut();
        let state = guard.as_mut().ok_or_else(|| err("busy: another GPU operation is still running"))?;
        let f = files(&names, &contents, None);
        let listing: Vec<String> = f.keys().cloned().collect();
        let ckpt = Checkpoint::from_folder("the chosen folder", &listing, |n| f.get(n).cloned()).map_err(err)?;
        drop(f);
        let tokenizer = Tokenizer::from_json(ckpt.tokenizer_json.as_bytes()).map_err(err)?;
        let cfg = ckpt.cfg;
        let (_, mut train, run) = parse_config(config, Some(cfg.vocab_size))?;
        train.seq_len = train.seq_len.min(cfg.block_size);
        let val_fraction = run.val_fraction;
        let layout = Layout::for_limits(&state.gpu.limits);
        MemoryPlan::new(&cfg, 1, 1, Mode::Eval, &layout).check(&state.gpu.limits).map_err(err)?;
        state.run = None; // frees the previous model's buffers first
        let trains =
            MemoryPlan::new(&cfg, train.batch_size, train.seq_len, Mode::Train, &layout).check(&state.gpu.limits);
        let info = match trains {
            Ok(()) => {
                let tokens = tokenizer.encode(text).map_err(err)?;
                let data = Dataset::new(tokens, val_fraction, train.seq_len).map_err(err)?;
                let trainer =
                    Trainer::new(&state.gpu, cfg, train, data.into(), &ckpt.params, run.eval_batches).map_err(err)?;
                let generator = trainer.generator(&state.gpu);
                let info = run_info(&trainer);
                state.run = Some(Run::new(trainer, tokenizer, generator, val_fraction));
                info
            }
            Err(why) => {
                let weights = Rc::new(GpuWeights::upload(&state.gpu, cfg, layout, &ckpt.params).map_err(err)?);
                let generator = Generator::new(&state.gpu, weights);
                state.run = Some(Run { trainer: None, cfg, tokenizer, generator, val_fraction, tuned_from: None });
                json!({"params": kiln::model::num_params(&cfg), "vocab": cfg.vocab_size, "step": 0, "steps": 0,
                       "layers": cfg.n_layer, "heads": cfg.n_head, "trainable": false, "why": why})
                .to_string()
            }
        };
        Ok(info)
    }
}
