//! Checkpoints in Hugging Face's GPT-2 format, as bytes: the front ends put them in files
//! (native) or IndexedDB and downloads (web).
//!
//! A checkpoint is a folder: `config.json` (a GPT-2 config), `model.safetensors` (GPT-2's tensor
//! names and layouts, no `transformer.` prefix, the LM head tied), `tokenizer.json`, and, for
//! resuming, `training_state.json` plus `optimizer.safetensors` (AdamW moments). Reading accepts
//! Hugging Face's own GPT-2 files too: an optional `transformer.` prefix, and the attention mask
//! buffers and tied `lm_head.weight` ignored.

use crate::config::{ModelConfig, TrainConfig, LAYER_NORM_EPS};
use crate::model::{param_table, ParamSpec};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde_json::{json, Value};

pub const CONFIG: &str = "config.json";
pub const MODEL: &str = "model.safetensors";
pub const TOKENIZER: &str = "tokenizer.json";
pub const STATE: &str = "training_state.json";
pub const OPTIMIZER: &str = "optimizer.safetensors";

/// Where a run stands, so that resuming continues exactly.
#[derive(Clone, Debug)]
pub struct TrainState {
    pub train: TrainConfig,
    /// Steps completed.
    pub step: usize,
    /// The batch sampler's generator state (the data position).
    pub rng_state: u64,
    pub adam_m: Vec<Vec<f32>>,
    pub adam_v: Vec<Vec<f32>>,
    /// Front-end settings to restore (corpus path, evaluation cadence, ...), kept as given.
    pub run: Value,
}

pub struct Checkpoint {
    pub cfg: ModelConfig,
    pub params: Vec<Vec<f32>>,
    pub tokenizer_json: String,
    pub state: Option<TrainState>,
}

impl Checkpoint {
    /// The files of this checkpoint, in the order they should be written: the small
    /// `training_state.json` last, so a folder with it is complete.
    pub fn to_files(&self) -> Vec<(&'static str, Vec<u8>)> {
        let table = param_table(&self.cfg);
        let mut files = vec![
            (CONFIG, config_json(&self.cfg).into_bytes()),
            (MODEL, tensors_to_bytes(&table, &[("", &self.params)])),
            (TOKENIZER, self.tokenizer_json.clone().into_bytes()),
        ];
        if let Some(s) = &self.state {
            files.push((OPTIMIZER, tensors_to_bytes(&table, &[("m.", &s.adam_m), ("v.", &s.adam_v)])));
            let state = json!({"step": s.step, "rng_state": s.rng_state.to_string(), "train": s.train, "run": s.run});
            files.push((STATE, serde_json::to_vec_pretty(&state).expect("json")));
        }
        files
    }

    /// Reads a checkpoint through `read` (file name -> bytes, None when missing). Training
    /// state is read when both of its files are there. Errors name the file and what is wrong.
    pub fn from_files(read: impl Fn(&str) -> Option<Vec<u8>>) -> Result<Checkpoint, String> {
        let need = |name: &str| read(name).ok_or_else(|| format!("the checkpoint has no {name}"));
        let cfg = parse_config_json(&need(CONFIG)?)?;
        let table = param_table(&cfg);
        let params = tensors_from_bytes(&need(MODEL)?, &table, "", MODEL)?;
        let tokenizer_json = String::from_utf8(need(TOKENIZER)?).map_err(|_| format!("{TOKENIZER} is not UTF-8"))?;
        let state = match (read(STATE), read(OPTIMIZER)) {
            (Some(s), Some(o)) => Some(parse_state(&s, &o, &table)?),
            _ => None,
        };
        Ok(Checkpoint { cfg, params, tokenizer_json, state })
    }
}

/// Metadata keys of the packed form.
const PACKED_FILES: [&str; 3] = [CONFIG, TOKENIZER, STATE];

impl Checkpoint {
    /// The whole folder as one file, for browsers: a safetensors file whose tensors are those of
    /// `model.safetensors` and `optimizer.safetensors` together, and whose metadata carries
    /// `config.json`, `tokenizer.json` and `training_state.json` as strings under those names.
    pub fn to_packed(&self) -> Vec<u8> {
        let files: std::collections::HashMap<_, _> = self.to_files().into_iter().collect();
        let mut metadata: std::collections::HashMap<String, String> = PACKED_FILES
            .iter()
            .filter_map(|n| files.get(n).map(|b| (n.to_string(), String::from_utf8_lossy(b).into_owned())))
            .collect();
        metadata.insert("format".into(), "pt".into());
        let table = param_table(&self.cfg);
        let mut groups: Vec<(&str, &Vec<Vec<f32>>)> = vec![("", &self.params)];
        if let Some(s) = &self.state {
            groups.push(("m.", &s.adam_m));
            groups.push(("v.", &s.adam_v));
        }
        tensors_to_bytes_with(&table, &groups, metadata)
    }

    /// Reads the packed form written by `to_packed`.
    pub fn from_packed(bytes: &[u8]) -> Result<Checkpoint, String> {
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| format!("the packed checkpoint is truncated or corrupt: {e}"))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        if !meta.contains_key(CONFIG) {
            return Err("this safetensors file is not a packed Kiln checkpoint (no config.json inside)".into());
        }
        Checkpoint::from_files(|name| match name {
            MODEL | OPTIMIZER => Some(bytes.to_vec()),
            _ => meta.get(name).map(|s| s.clone().into_bytes()),
        })
    }
}

/// A Hugging Face GPT-2 `config.json`.
pub fn config_json(cfg: &ModelConfig) -> String {
    let v = json!({
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.block_size,
        "n_ctx": cfg.block_size,
        "n_embd": cfg.n_embd,
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "n_inner": null,
        "layer_norm_epsilon": LAYER_NORM_EPS,
        "activation_function": "gelu_new",
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "initializer_range": 0.02,
        "tie_word_embeddings": true,
        "bos_token_id": null,
        "eos_token_id": null,
        "torch_dtype": "float32",
    });
    serde_json::to_string_pretty(&v).expect("json")
}

pub fn parse_config_json(bytes: &[u8]) -> Result<ModelConfig, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("{CONFIG} is not valid JSON: {e}"))?;
    if let Some(t) = v.get("model_type").and_then(Value::as_str) {
        if t != "gpt2" {
            return Err(format!("{CONFIG} describes a '{t}' model; Kiln trains GPT-2 (model_type gpt2)"));
        }
    }
    let field = |name: &str| {
        v.get(name)
            .and_then(Value::as_u64)
            .map(|x| x as usize)
            .ok_or_else(|| format!("{CONFIG} lacks a whole number '{name}'"))
    };
    if let Some(act) = v.get("activation_function").and_then(Value::as_str) {
        if act != "gelu_new" && act != "gelu_pytorch_tanh" {
            return Err(format!("{CONFIG} uses activation '{act}'; Kiln computes GPT-2's gelu_new"));
        }
    }
    if v.get("n_inner").and_then(Value::as_u64).is_some_and(|x| x as usize != 4 * field("n_embd").unwrap_or(0)) {
        return Err(format!("{CONFIG} sets n_inner; Kiln's MLP is 4 x n_embd wide"));
    }
    let cfg = ModelConfig {
        vocab_size: field("vocab_size")?,
        n_layer: field("n_layer")?,
        n_head: field("n_head")?,
        n_embd: field("n_embd")?,
        block_size: field("n_positions")?,
    };
    cfg.validate().map_err(|e| format!("{CONFIG}: {e}"))?;
    Ok(cfg)
}

/// One safetensors file holding each group's tensors as `prefix + name`, float32.
fn tensors_to_bytes(table: &[ParamSpec], groups: &[(&str, &Vec<Vec<f32>>)]) -> Vec<u8> {
    let metadata = [("format".to_string(), "pt".to_string())].into_iter().collect();
    tensors_to_bytes_with(table, groups, metadata)
}

fn tensors_to_bytes_with(
    table: &[ParamSpec],
    groups: &[(&str, &Vec<Vec<f32>>)],
    metadata: std::collections::HashMap<String, String>,
) -> Vec<u8> {
    let mut views = Vec::new();
    for (prefix, tensors) in groups {
        for (spec, data) in table.iter().zip(tensors.iter()) {
            let view =
                TensorView::new(Dtype::F32, spec.shape.clone(), bytemuck::cast_slice(data)).expect("shape matches");
            views.push((format!("{prefix}{}", spec.name), view));
        }
    }
    safetensors::serialize(views, Some(metadata)).expect("serialise")
}

/// Every tensor of `table` as `prefix + name` (or `transformer.` + that), checked for shape.
fn tensors_from_bytes(bytes: &[u8], table: &[ParamSpec], prefix: &str, file: &str) -> Result<Vec<Vec<f32>>, String> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("{file} is truncated or corrupt: {e}"))?;
    table
        .iter()
        .map(|spec| {
            let name = format!("{prefix}{}", spec.name);
            let view = st
                .tensor(&name)
                .or_else(|_| st.tensor(&format!("transformer.{name}")))
                .map_err(|_| format!("{file} has no tensor {name}: it is not a checkpoint of this model shape"))?;
            if view.shape() != spec.shape.as_slice() {
                return Err(format!(
                    "{file}: {name} has shape {:?}, but config.json implies {:?}",
                    view.shape(),
                    spec.shape
                ));
            }
            match view.dtype() {
                Dtype::F32 => Ok(bytemuck::pod_collect_to_vec(view.data())),
                other => Err(format!("{file}: {name} is {other:?}; Kiln reads float32 checkpoints")),
            }
        })
        .collect()
}

fn parse_state(state: &[u8], optimizer: &[u8], table: &[ParamSpec]) -> Result<TrainState, String> {
    let v: Value = serde_json::from_slice(state).map_err(|e| format!("{STATE} is not valid JSON: {e}"))?;
    let bad = |what: &str| format!("{STATE} lacks a valid '{what}'");
    let train: TrainConfig = serde_json::from_value(v["train"].clone()).map_err(|_| bad("train"))?;
    let step = v["step"].as_u64().ok_or_else(|| bad("step"))? as usize;
    let rng_state = v["rng_state"].as_str().and_then(|s| s.parse().ok()).ok_or_else(|| bad("rng_state"))?;
    let adam_m = tensors_from_bytes(optimizer, table, "m.", OPTIMIZER)?;
    let adam_v = tensors_from_bytes(optimizer, table, "v.", OPTIMIZER)?;
    Ok(TrainState { train, step, rng_state, adam_m, adam_v, run: v["run"].clone() })
}
