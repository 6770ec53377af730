//! Checkpoints in Hugging Face's GPT-2 format, as bytes: the front ends put them in files
//! (native) or IndexedDB and downloads (web).
//!
//! A checkpoint is a folder: `config.json` (a GPT-2 config), `model.safetensors` (GPT-2's tensor
//! names and layouts, no `transformer.` prefix, the LM head tied), `tokenizer.json`, and, for
//! resuming, `training_state.json` plus `optimizer.safetensors` (AdamW moments).
//!
//! Reading also opens any Hugging Face GPT-2 folder: tensors in F32, F16, BF16 or F64 (converted
//! to f32), with or without the `transformer.` prefix, sharded (`model.safetensors.index.json`)
//! or not, the attention mask buffers ignored and `lm_head.weight` accepted when it equals
//! `wte.weight`; and a tokenizer given as `vocab.json` + `merges.txt` instead of
//! `tokenizer.json`. What Kiln does not compute (another activation, an untied head, scaled
//! attention variants, ...) is refused, naming the field. PyTorch pickles are never read.

use crate::config::{ModelConfig, TrainConfig, LAYER_NORM_EPS};
use crate::model::{param_table, ParamSpec, WTE};
use crate::tokenizer::Tokenizer;
use half::{bf16, f16};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde_json::{json, Value};

pub const CONFIG: &str = "config.json";
pub const MODEL: &str = "model.safetensors";
pub const TOKENIZER: &str = "tokenizer.json";
pub const STATE: &str = "training_state.json";
pub const OPTIMIZER: &str = "optimizer.safetensors";
/// Sharded weights: `{"weight_map": {tensor name: shard file name}}`.
pub const MODEL_INDEX: &str = "model.safetensors.index.json";
/// GPT-2's tokenizer as OpenAI and older `transformers` versions ship it.
pub const VOCAB: &str = "vocab.json";
pub const MERGES: &str = "merges.txt";

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
            files.extend(state_files(&table, s));
        }
        files
    }

    /// Reads a checkpoint through `read` (file name -> bytes, None when missing). Training
    /// state is read when both of its files are there. Errors name the file and what is wrong.
    pub fn from_files(read: impl Fn(&str) -> Option<Vec<u8>>) -> Result<Checkpoint, String> {
        Checkpoint::from_folder("the checkpoint", &[], read)
    }

    /// Like `from_files`, for a folder: `dir` names it in messages and `names` lists the files in
    /// it (empty when unknown), so that a folder holding only PyTorch pickles is told how to
    /// convert them.
    pub fn from_folder(
        dir: &str,
        names: &[String],
        read: impl Fn(&str) -> Option<Vec<u8>>,
    ) -> Result<Checkpoint, String> {
        let need = |name: &str| read(name).ok_or_else(|| format!("{dir} has no {name}"));
        let cfg = parse_config_json(&need(CONFIG)?)?;
        let table = param_table(&cfg);
        let params = read_weights(dir, names, &read, &table)?;
        let tokenizer_json = read_tokenizer(dir, &read, cfg.vocab_size)?;
        let state = match (read(STATE), read(OPTIMIZER)) {
            (Some(s), Some(o)) => Some(parse_state(&s, &o, &table)?),
            _ => None,
        };
        Ok(Checkpoint { cfg, params, tokenizer_json, state })
    }
}

/// The model's parameters from `model.safetensors`, or from the shards that
/// `model.safetensors.index.json` names; `lm_head.weight`, when there, must be `wte.weight`.
fn read_weights(
    dir: &str,
    names: &[String],
    read: &impl Fn(&str) -> Option<Vec<u8>>,
    table: &[ParamSpec],
) -> Result<Vec<Vec<f32>>, String> {
    let files = if let Some(bytes) = read(MODEL) {
        vec![(MODEL.to_string(), bytes)]
    } else if let Some(index) = read(MODEL_INDEX) {
        shard_names(&index)?
            .into_iter()
            .map(|name| match read(&name) {
                Some(bytes) => Ok((name, bytes)),
                None => Err(format!("{dir} has no {name}, a shard that {MODEL_INDEX} names")),
            })
            .collect::<Result<_, _>>()?
    } else {
        let pickles: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| n.ends_with(".bin") || n.ends_with(".pt") || n.ends_with(".pth"))
            .collect();
        if !pickles.is_empty() {
            return Err(format!(
                "{dir} has PyTorch pickle weights ({}) but no {MODEL}; Kiln never reads pickles: convert them once \
                 with python3 -c \"from transformers import GPT2LMHeadModel as M; \
                 M.from_pretrained('{dir}').save_pretrained('{dir}', safe_serialization=True)\"",
                pickles.join(", ")
            ));
        }
        return Err(format!(
            "{dir} has no {MODEL} (nor {MODEL_INDEX}): Kiln reads GPT-2 weights from safetensors files"
        ));
    };
    let weights = Weights::parse(files.iter().map(|(name, bytes)| (name.as_str(), bytes.as_slice())))?;
    let params = weights.table(table, "")?;
    if let Some((file, view)) = weights.find("lm_head.weight") {
        let head = weights.convert(file, "lm_head.weight", &view)?;
        if view.shape() != table[WTE].shape.as_slice() || head != params[WTE] {
            return Err(format!(
                "{file}: lm_head.weight differs from wte.weight: this model has an untied LM head, and Kiln ties \
                 it to wte"
            ));
        }
    }
    Ok(params)
}

/// The distinct shard files of a `model.safetensors.index.json`, in sorted order.
fn shard_names(index: &[u8]) -> Result<Vec<String>, String> {
    let v: Value = serde_json::from_slice(index).map_err(|e| format!("{MODEL_INDEX} is not valid JSON: {e}"))?;
    let map = v["weight_map"].as_object().ok_or_else(|| format!("{MODEL_INDEX} lacks a 'weight_map' object"))?;
    let mut shards = std::collections::BTreeSet::new();
    for (tensor, file) in map {
        let file = file.as_str().ok_or_else(|| format!("{MODEL_INDEX}: weight_map['{tensor}'] is not a file name"))?;
        if file.contains('/') || file.contains('\\') || file.starts_with('.') {
            return Err(format!("{MODEL_INDEX} names a shard '{file}' outside its folder"));
        }
        shards.insert(file.to_string());
    }
    Ok(shards.into_iter().collect())
}

/// The tokenizer as a `tokenizer.json` string: `tokenizer.json` as it is, or GPT-2's byte-level
/// BPE built from `vocab.json` and `merges.txt`. No token id may reach past the model's vocabulary.
fn read_tokenizer(dir: &str, read: &impl Fn(&str) -> Option<Vec<u8>>, vocab_size: usize) -> Result<String, String> {
    let (json, source) = match (read(TOKENIZER), read(VOCAB), read(MERGES)) {
        (Some(json), _, _) => (String::from_utf8(json).map_err(|_| format!("{TOKENIZER} is not UTF-8"))?, TOKENIZER),
        (None, Some(vocab), Some(merges)) => (Tokenizer::from_vocab_merges(&vocab, &merges)?.to_json(), VOCAB),
        _ => return Err(format!("{dir} has no {TOKENIZER} (nor {VOCAB} and {MERGES})")),
    };
    let n = Tokenizer::from_json(json.as_bytes())?.id_count();
    if n > vocab_size {
        return Err(format!(
            "{source} has {n} tokens but {CONFIG} has vocab_size {vocab_size}: the tokenizer does not belong to \
             this model"
        ));
    }
    Ok(json)
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

/// Reads a GPT-2 `config.json`, Kiln's or Hugging Face's. What Kiln does not compute is
/// refused, naming the field; absent optional fields take GPT-2's defaults.
pub fn parse_config_json(bytes: &[u8]) -> Result<ModelConfig, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("{CONFIG} is not valid JSON: {e}"))?;
    let refuse = |field: &str, why: &str| Err(format!("{CONFIG}: {field} {why}"));
    match v.get("model_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t == "gpt2" => {}
        Some(t) => return refuse("model_type", &format!("is {t}; Kiln trains GPT-2 (model_type \"gpt2\")")),
    }
    let field = |name: &str| match v.get(name).and_then(Value::as_u64) {
        // Beyond 2^24 no GPT-2 fits in memory, and shapes computed from it could overflow.
        Some(x) if x <= 1 << 24 => Ok(x as usize),
        Some(x) => Err(format!("{CONFIG}: {name} is {x}, too large for Kiln (at most 16777216)")),
        None => Err(format!("{CONFIG} lacks '{name}' (a whole number); a GPT-2 config.json has it")),
    };
    let cfg = ModelConfig {
        vocab_size: field("vocab_size")?,
        n_layer: field("n_layer")?,
        n_head: field("n_head")?,
        n_embd: field("n_embd")?,
        block_size: field("n_positions")?,
    };
    match v.get("activation_function") {
        None | Some(Value::Null) => {}
        Some(Value::String(a)) if a == "gelu_new" || a == "gelu_pytorch_tanh" => {}
        Some(a) => return refuse("activation_function", &format!("is {a}; Kiln computes GPT-2's gelu_new only")),
    }
    match v.get("n_inner") {
        None | Some(Value::Null) => {}
        Some(x) if x.as_u64() == Some(4 * cfg.n_embd as u64) => {}
        Some(x) => return refuse("n_inner", &format!("is {x}; Kiln's MLP is 4 x n_embd = {} wide", 4 * cfg.n_embd)),
    }
    // (field, the value GPT-2 has and Kiln computes)
    for (name, want) in [
        ("scale_attn_weights", true),
        ("scale_attn_by_inverse_layer_idx", false),
        ("add_cross_attention", false),
        ("tie_word_embeddings", true),
    ] {
        match v.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) if *b == want => {}
            Some(x) => return refuse(name, &format!("is {x}; Kiln computes GPT-2 as published, with {name}: {want}")),
        }
    }
    match v.get("layer_norm_epsilon") {
        None | Some(Value::Null) => {}
        Some(x) if x.as_f64().is_some_and(|e| (e - LAYER_NORM_EPS as f64).abs() <= 1e-9) => {}
        Some(x) => return refuse("layer_norm_epsilon", &format!("is {x}; Kiln's LayerNorm uses GPT-2's 1e-5")),
    }
    cfg.validate().map_err(|e| format!("{CONFIG}: {e}"))?;
    Ok(cfg)
}

/// One safetensors file holding each group's tensors as `prefix + name`, float32.
pub(crate) fn tensors_to_bytes(table: &[ParamSpec], groups: &[(&str, &Vec<Vec<f32>>)]) -> Vec<u8> {
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

/// The tensors of one or more safetensors files (a model's shards), read as f32.
struct Weights<'a> {
    files: Vec<(&'a str, SafeTensors<'a>)>,
}

impl<'a> Weights<'a> {
    /// Parses each file's header. `deserialize` checks that every tensor lies inside the bytes
    /// given, so a header that claims more than the file holds is refused before anything
    /// is allocated for it.
    fn parse(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Result<Weights<'a>, String> {
        let files = files
            .into_iter()
            .map(|(name, bytes)| match SafeTensors::deserialize(bytes) {
                Ok(st) => Ok((name, st)),
                Err(e) => Err(format!("{name} is truncated or corrupt: {e}")),
            })
            .collect::<Result<_, String>>()?;
        Ok(Weights { files })
    }

    /// The file holding `name` (or `transformer.` + `name`, Hugging Face's full-model prefix).
    fn find(&self, name: &str) -> Option<(&'a str, TensorView<'a>)> {
        let prefixed = format!("transformer.{name}");
        self.files
            .iter()
            .find_map(|(file, st)| st.tensor(name).or_else(|_| st.tensor(&prefixed)).ok().map(|t| (*file, t)))
    }

    /// Every tensor of `table` as `prefix + name`, checked for shape, in table order.
    fn table(&self, table: &[ParamSpec], prefix: &str) -> Result<Vec<Vec<f32>>, String> {
        let files = || self.files.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", ");
        table
            .iter()
            .map(|spec| {
                let name = format!("{prefix}{}", spec.name);
                let (file, view) = self.find(&name).ok_or_else(|| {
                    format!("{} has no tensor {name}: it is not a checkpoint of this model shape", files())
                })?;
                if view.shape() != spec.shape.as_slice() {
                    return Err(format!(
                        "{file}: {name} has shape {:?}, but {CONFIG} implies {:?}",
                        view.shape(),
                        spec.shape
                    ));
                }
                self.convert(file, &name, &view)
            })
            .collect()
    }

    /// The tensor's values as f32: exact from F16 and BF16, rounded from F64.
    fn convert(&self, file: &str, name: &str, view: &TensorView) -> Result<Vec<f32>, String> {
        let d = view.data();
        Ok(match view.dtype() {
            Dtype::F32 => bytemuck::pod_collect_to_vec(d),
            Dtype::F16 => d.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => d.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::F64 => bytemuck::pod_collect_to_vec::<u8, f64>(d).into_iter().map(|x| x as f32).collect(),
            other => {
                return Err(format!(
                    "{file}: {name} is {other:?}; Kiln reads F32, F16, BF16 or F64 weights: convert it to one of those"
                ))
            }
        })
    }
}

/// Every tensor of `table` (as `prefix + name`) from one safetensors file, checked for shape,
/// converted to f32.
pub(crate) fn read_table(file: &str, bytes: &[u8], table: &[ParamSpec], prefix: &str) -> Result<Vec<Vec<f32>>, String> {
    Weights::parse([(file, bytes)])?.table(table, prefix)
}

/// `optimizer.safetensors` (the moments of `table`'s tensors) and `training_state.json`, in that
/// order.
pub(crate) fn state_files(table: &[ParamSpec], s: &TrainState) -> Vec<(&'static str, Vec<u8>)> {
    let state = json!({"step": s.step, "rng_state": s.rng_state.to_string(), "train": s.train, "run": s.run});
    vec![
        (OPTIMIZER, tensors_to_bytes(table, &[("m.", &s.adam_m), ("v.", &s.adam_v)])),
        (STATE, serde_json::to_vec_pretty(&state).expect("json")),
    ]
}

pub(crate) fn parse_state(state: &[u8], optimizer: &[u8], table: &[ParamSpec]) -> Result<TrainState, String> {
    let v: Value = serde_json::from_slice(state).map_err(|e| format!("{STATE} is not valid JSON: {e}"))?;
    let bad = |what: &str| format!("{STATE} lacks a valid '{what}'");
    let train: TrainConfig = serde_json::from_value(v["train"].clone()).map_err(|_| bad("train"))?;
    let step = v["step"].as_u64().ok_or_else(|| bad("step"))? as usize;
    let rng_state = v["rng_state"].as_str().and_then(|s| s.parse().ok()).ok_or_else(|| bad("rng_state"))?;
    let moments = Weights::parse([(OPTIMIZER, optimizer)])?;
    let adam_m = moments.table(table, "m.")?;
    let adam_v = moments.table(table, "v.")?;
    Ok(TrainState { train, step, rng_state, adam_m, adam_v, run: v["run"].clone() })
}
