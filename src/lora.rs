//! LoRA: low-rank adapters on a block's four projections (attention q/k/v and output, MLP in and
//! out), trained while the base weights stay frozen; their own parameter table, initialisation,
//! merge into plain GPT-2 weights, and PEFT's file layout.
//!
//! For a projection y = x @ W + b with W (in, out) in GPT-2's Conv1D layout, an adapter adds
//! (alpha / r) * (x @ A^T) @ B^T with A (r, in) and B (out, r): PEFT's `lora_A.weight` and
//! `lora_B.weight` as they are stored (PEFT marks Conv1D with `fan_in_fan_out`, which changes how
//! it merges, not the adapters' shapes). Merged, W' = W + (alpha / r) * A^T @ B^T. A starts
//! uniform in +-1/sqrt(in) (PEFT's Kaiming default), B at zero, so training starts at the base.
//! No files here: `adapter_files` and `read_adapter_files` work on bytes.

use crate::checkpoint::{read_table, tensors_to_bytes};
use crate::config::ModelConfig;
use crate::cpu::Rng;
use crate::model::{block_params, Init, ParamSpec};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub const ADAPTER_MODEL: &str = "adapter_model.safetensors";
pub const ADAPTER_CONFIG: &str = "adapter_config.json";
/// PEFT's key prefix for a causal LM wrapped around `GPT2LMHeadModel`.
const PEFT_PREFIX: &str = "base_model.model.transformer.";

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    pub rank: usize,
    pub alpha: f32,
}

impl LoraConfig {
    /// Alpha when none is given: twice the rank, so the adapters' scale is 2 at every rank.
    pub fn default_alpha(rank: usize) -> f32 {
        2.0 * rank as f32
    }

    /// What the adapter's product is multiplied by.
    pub fn scale(&self) -> f32 {
        self.alpha / self.rank as f32
    }

    pub fn validate(&self, cfg: &ModelConfig) -> Result<(), String> {
        if self.rank == 0 || self.rank > cfg.n_embd {
            return Err(format!(
                "--lora rank must be between 1 and the model's {} channels, got {}",
                cfg.n_embd, self.rank
            ));
        }
        if !(self.alpha > 0.0 && self.alpha.is_finite()) {
            return Err(format!("--lora-alpha must be a positive number, got {}", self.alpha));
        }
        Ok(())
    }
}

/// One adapted projection: its layer, the base table index of its weight (the bias follows),
/// its PEFT module path and its sizes.
#[derive(Clone, Debug)]
pub struct Target {
    pub layer: usize,
    pub weight: usize,
    pub module: String,
    pub in_f: usize,
    pub out_f: usize,
}

/// The adapted projections of every block, in order: c_attn, attn.c_proj, c_fc, mlp.c_proj.
pub fn targets(cfg: &ModelConfig) -> Vec<Target> {
    let c = cfg.n_embd;
    let mut out = Vec::new();
    for layer in 0..cfg.n_layer {
        let p = block_params(layer);
        for (weight, module, in_f, out_f) in [
            (p.c_attn_w, "attn.c_attn", c, 3 * c),
            (p.attn_proj_w, "attn.c_proj", c, c),
            (p.c_fc_w, "mlp.c_fc", c, 4 * c),
            (p.mlp_proj_w, "mlp.c_proj", 4 * c, c),
        ] {
            out.push(Target { layer, weight, module: format!("h.{layer}.{module}"), in_f, out_f });
        }
    }
    out
}

/// The adapters' table: A then B for each target, named as PEFT saves them.
pub fn adapter_table(cfg: &ModelConfig, lora: &LoraConfig) -> Vec<ParamSpec> {
    let r = lora.rank;
    targets(cfg)
        .iter()
        .flat_map(|t| {
            let name = |ab: &str| format!("{PEFT_PREFIX}{}.lora_{ab}.weight", t.module);
            let bound = 1.0 / (t.in_f as f32).sqrt();
            [
                ParamSpec { name: name("A"), shape: vec![r, t.in_f], init: Init::Normal(bound) },
                ParamSpec { name: name("B"), shape: vec![t.out_f, r], init: Init::Zeros },
            ]
        })
        .collect()
}

/// Fresh adapters: A uniform in +-1/sqrt(in) (the `Normal` entry of the table holds that
/// bound), B zero.
pub fn init_adapters(cfg: &ModelConfig, lora: &LoraConfig, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed ^ 0x10_7A);
    adapter_table(cfg, lora)
        .iter()
        .map(|spec| match spec.init {
            Init::Normal(bound) => (0..spec.numel()).map(|_| (rng.next_f32() * 2.0 - 1.0) * bound).collect(),
            _ => vec![0.0; spec.numel()],
        })
        .collect()
}

/// Base weights with the adapters folded in: W (in, out) += scale * A^T @ B^T.
pub fn merge(cfg: &ModelConfig, lora: &LoraConfig, base: &[Vec<f32>], adapters: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let (r, s) = (lora.rank, lora.scale());
    let mut out = base.to_vec();
    for (i, t) in targets(cfg).iter().enumerate() {
        let (a, b) = (&adapters[2 * i], &adapters[2 * i + 1]);
        let w = &mut out[t.weight];
        for row in 0..t.in_f {
            for col in 0..t.out_f {
                let dot: f32 = (0..r).map(|k| a[k * t.in_f + row] * b[col * r + k]).sum();
                w[row * t.out_f + col] += s * dot;
            }
        }
    }
    out
}

/// PEFT's two files for these adapters. `base` names the base model in the config.
pub fn adapter_files(
    cfg: &ModelConfig,
    lora: &LoraConfig,
    adapters: &[Vec<f32>],
    base: &str,
) -> Vec<(&'static str, Vec<u8>)> {
    let table = adapter_table(cfg, lora);
    let config = json!({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": lora.rank, "lora_alpha": lora.alpha,
        "target_modules": ["c_attn", "c_proj", "c_fc"], "fan_in_fan_out": true, "lora_dropout": 0.0,
        "bias": "none", "base_model_name_or_path": base, "inference_mode": true,
        "modules_to_save": null, "init_lora_weights": true, "use_rslora": false, "use_dora": false,
    });
    vec![
        (ADAPTER_MODEL, tensors_to_bytes(&table, &[("", &adapters.to_vec())])),
        (ADAPTER_CONFIG, serde_json::to_vec_pretty(&config).expect("json")),
    ]
}

/// Adapters saved by `adapter_files` or by PEFT for a model of shape `cfg`: the config's rank and
/// alpha, and A and B of every target. Errors say what does not match the base model.
pub fn read_adapter_files(
    cfg: &ModelConfig,
    read: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<(LoraConfig, Vec<Vec<f32>>), String> {
    let config = read(ADAPTER_CONFIG).ok_or_else(|| format!("no {ADAPTER_CONFIG}: not a LoRA adapter folder"))?;
    let v: serde_json::Value =
        serde_json::from_slice(&config).map_err(|e| format!("{ADAPTER_CONFIG} is not valid JSON: {e}"))?;
    if v["peft_type"].as_str() != Some("LORA") {
        return Err(format!("{ADAPTER_CONFIG}: peft_type is {}, Kiln reads LORA adapters", v["peft_type"]));
    }
    let rank = v["r"].as_u64().ok_or_else(|| format!("{ADAPTER_CONFIG} lacks the rank 'r'"))? as usize;
    let alpha = v["lora_alpha"].as_f64().ok_or_else(|| format!("{ADAPTER_CONFIG} lacks 'lora_alpha'"))? as f32;
    if v["use_rslora"].as_bool() == Some(true) || v["use_dora"].as_bool() == Some(true) {
        return Err(format!("{ADAPTER_CONFIG}: rsLoRA and DoRA adapters are not supported"));
    }
    for key in ["rank_pattern", "alpha_pattern"] {
        if v[key].as_object().is_some_and(|m| !m.is_empty()) {
            return Err(format!("{ADAPTER_CONFIG}: a per-module {key} is not supported: one rank and alpha for all"));
        }
    }
    let lora = LoraConfig { rank, alpha };
    lora.validate(cfg)?;
    let bytes = read(ADAPTER_MODEL).ok_or_else(|| format!("no {ADAPTER_MODEL} beside {ADAPTER_CONFIG}"))?;
    let adapters = read_table(ADAPTER_MODEL, &bytes, &adapter_table(cfg, &lora), "")
        .map_err(|e| format!("the adapters do not match the base model: {e}"))?;
    Ok((lora, adapters))
}

/// A LoRA fine-tuning run as saved: the model's `config.json` and `tokenizer.json`, the adapters
/// in PEFT's files, and for resuming the adapters' AdamW moments and the run's state. The base
/// weights are not copied: `base` says where they are (the run's settings keep it too).
pub struct LoraRun {
    pub cfg: ModelConfig,
    pub lora: LoraConfig,
    pub adapters: Vec<Vec<f32>>,
    pub tokenizer_json: String,
    pub base: String,
    pub state: Option<crate::checkpoint::TrainState>,
}

impl LoraRun {
    /// Files in writing order, `training_state.json` last.
    pub fn to_files(&self) -> Vec<(&'static str, Vec<u8>)> {
        use crate::checkpoint::{config_json, state_files, CONFIG, TOKENIZER};
        let mut files =
            vec![(CONFIG, config_json(&self.cfg).into_bytes()), (TOKENIZER, self.tokenizer_json.clone().into_bytes())];
        files.extend(adapter_files(&self.cfg, &self.lora, &self.adapters, &self.base));
        if let Some(s) = &self.state {
            files.extend(state_files(&adapter_table(&self.cfg, &self.lora), s));
        }
        files
    }

    /// Reads a folder written by `to_files` (or PEFT's adapters beside a config.json and
    /// tokenizer.json): `base` is taken from adapter_config.json.
    pub fn from_files(read: impl Fn(&str) -> Option<Vec<u8>>) -> Result<LoraRun, String> {
        use crate::checkpoint::{parse_config_json, parse_state, CONFIG, OPTIMIZER, STATE, TOKENIZER};
        let cfg = parse_config_json(&read(CONFIG).ok_or_else(|| format!("the adapter folder has no {CONFIG}"))?)?;
        let (lora, adapters) = read_adapter_files(&cfg, &read)?;
        let config: serde_json::Value =
            serde_json::from_slice(&read(ADAPTER_CONFIG).unwrap_or_default()).unwrap_or_default();
        let base = config["base_model_name_or_path"].as_str().unwrap_or_default().to_string();
        let tokenizer_json =
            String::from_utf8(read(TOKENIZER).ok_or_else(|| format!("the adapter folder has no {TOKENIZER}"))?)
                .map_err(|_| format!("{TOKENIZER} is not UTF-8"))?;
        let state = match (read(STATE), read(OPTIMIZER)) {
            (Some(s), Some(o)) => Some(parse_state(&s, &o, &adapter_table(&cfg, &lora))?),
            _ => None,
        };
        Ok(LoraRun { cfg, lora, adapters, tokenizer_json, base, state })
    }
}
