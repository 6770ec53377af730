//! Kiln in the browser: the wasm-bindgen face of the core. The page's worker calls these.

use wasm_bindgen::prelude::*;

/// The adapter WebGPU gives this page, as one line, or why there is none.
#[wasm_bindgen]
pub async fn adapter_info() -> Result<String, JsValue> {
    let gpu = kiln::gpu::Gpu::new().await.map_err(|e| JsValue::from_str(&e))?;
    Ok(gpu.to_string())
}

/// Parameter count of a GPT-2 shape, for the page's model picker.
#[wasm_bindgen]
pub fn parameter_count(vocab: usize, layers: usize, heads: usize, embd: usize, block: usize) -> usize {
    let cfg = kiln::config::ModelConfig { vocab_size: vocab, n_layer: layers, n_head: heads, n_embd: embd, block_size: block };
    kiln::model::num_params(&cfg)
}
