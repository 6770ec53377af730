//! The page's teaching views: attention patterns, next-token probabilities, the model's shape.

use crate::{err, Run};
use kiln::config::ModelConfig;
use kiln::gpu::Gpu;
use serde_json::json;
use wasm_bindgen::JsValue;

/// Attention probabilities of every layer and head for the prompt's positions:
/// layers[l][h][t][t2] for t2 <= t.
pub async fn attention(gpu: &Gpu, run: &mut Run, prompt: &str) -> Result<JsValue, JsValue> {
    let cfg = run.cfg;
    let mut ids = run.tokenizer.encode(prompt).map_err(err)?;
    ids.truncate(cfg.block_size);
    if ids.is_empty() {
        return Err(err("the prompt has no characters this model knows: type some from its corpus"));
    }
    let (nh, max_t) = (cfg.n_head, cfg.block_size);
    let mut layers = vec![vec![Vec::new(); nh]; cfg.n_layer];
    run.generator.reset();
    for (t, &id) in ids.iter().enumerate() {
        run.generator.feed(gpu, id).await.map_err(err)?;
        for (l, heads) in layers.iter_mut().enumerate() {
            let att = run.generator.att[l].read_f32(gpu).await.map_err(err)?;
            for (h, rows) in heads.iter_mut().enumerate() {
                rows.push(att[h * max_t..h * max_t + t + 1].to_vec());
            }
        }
    }
    let tokens: Vec<String> = ids.iter().map(|&i| run.tokenizer.token_text(i)).collect();
    Ok(JsValue::from_str(&json!({"tokens": tokens, "layers": layers}).to_string()))
}

/// The `count` most likely next tokens after the prompt, with their probabilities.
pub async fn next_tokens(gpu: &Gpu, run: &mut Run, prompt: &str, count: usize) -> Result<JsValue, JsValue> {
    let ids = run.tokenizer.encode(prompt).map_err(err)?;
    if ids.is_empty() {
        return Err(err("the prompt has no characters this model knows: type some from its corpus"));
    }
    let logits = run.generator.prefill(gpu, &ids).await.map_err(err)?;
    let probs = kiln::sample::softmax(&logits);
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let top: Vec<_> = order
        .iter()
        .take(count)
        .map(|&i| json!({"token": run.tokenizer.token_text(i as u32), "p": probs[i]}))
        .collect();
    Ok(JsValue::from_str(&json!(top).to_string()))
}

/// Rows of the model's shape: embeddings, each block, the final norm; with parameter counts.
pub fn shape(cfg: &ModelConfig) -> String {
    let table = kiln::model::param_table(cfg);
    let count = |prefix: &str| table.iter().filter(|p| p.name.starts_with(prefix)).map(|p| p.numel()).sum::<usize>();
    let (c, v, t) = (cfg.n_embd, cfg.vocab_size, cfg.block_size);
    let mut rows = vec![
        json!({"part": "token embedding wte", "shape": format!("{v} x {c}"), "params": v * c, "note": "also the output layer (tied)"}),
        json!({"part": "position embedding wpe", "shape": format!("{t} x {c}"), "params": t * c}),
    ];
    for l in 0..cfg.n_layer {
        rows.push(json!({"part": format!("block {l}: attention ({} heads of {})", cfg.n_head, cfg.head_size()),
            "shape": format!("{c} -> 3x{c} -> {c}"), "params": count(&format!("h.{l}.attn.")) + count(&format!("h.{l}.ln_1."))}));
        rows.push(json!({"part": format!("block {l}: MLP"), "shape": format!("{c} -> {} -> {c}", 4 * c),
            "params": count(&format!("h.{l}.mlp.")) + count(&format!("h.{l}.ln_2."))}));
    }
    rows.push(json!({"part": "final layer norm", "shape": format!("{c}"), "params": count("ln_f.")}));
    json!({"rows": rows, "total": kiln::model::num_params(cfg)}).to_string()
}
