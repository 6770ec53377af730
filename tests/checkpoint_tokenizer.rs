//! Checkpoints round-trip and read Hugging Face's own GPT-2 files; tokenizers round-trip text
//! and their tokenizer.json. No GPU needed.

use kiln::checkpoint::{Checkpoint, TrainState, CONFIG, MODEL};
use kiln::config::{ModelConfig, TrainConfig};
use kiln::model::param_table;
use kiln::tokenizer::Tokenizer;
use std::collections::HashMap;

fn small() -> ModelConfig {
    ModelConfig { vocab_size: 13, n_layer: 2, n_head: 2, n_embd: 8, block_size: 6 }
}

#[test]
fn checkpoint_round_trips_with_training_state() {
    let cfg = small();
    let params = kiln::cpu::init_params(&cfg, 5);
    let state = TrainState {
        train: TrainConfig::default(),
        step: 42,
        rng_state: u64::MAX - 3, // beyond f64's exact integers: must survive JSON
        adam_m: kiln::cpu::init_params(&cfg, 6),
        adam_v: kiln::cpu::init_params(&cfg, 7),
        run: serde_json::json!({"eval_every": 5}),
    };
    let tok = Tokenizer::char_level("hello world").unwrap().to_json();
    let ckpt = Checkpoint { cfg, params: params.clone(), tokenizer_json: tok.clone(), state: Some(state.clone()) };
    let files: HashMap<_, _> = ckpt.to_files().into_iter().collect();
    let back = Checkpoint::from_files(|n| files.get(n).cloned()).unwrap();
    assert_eq!(back.cfg, cfg);
    assert_eq!(back.params, params);
    assert_eq!(back.tokenizer_json, tok);
    let s = back.state.unwrap();
    assert_eq!((s.step, s.rng_state, s.adam_m, s.adam_v), (42, u64::MAX - 3, state.adam_m, state.adam_v));
    assert_eq!(s.train, state.train);
}

#[test]
fn reads_hugging_face_names_and_refuses_wrong_shapes() {
    let cfg = small();
    let params = kiln::cpu::init_params(&cfg, 5);
    let tok = Tokenizer::char_level("abc").unwrap().to_json();
    let ckpt = Checkpoint { cfg, params: params.clone(), tokenizer_json: tok, state: None };
    let mut files: HashMap<_, _> = ckpt.to_files().into_iter().collect();
    // Rewrite the model as transformers' save_pretrained would: prefixed names, the causal
    // mask buffers and an explicit lm_head.weight.
    let table = param_table(&cfg);
    let mut named: Vec<(String, Vec<f32>, Vec<usize>)> = table
        .iter()
        .zip(&params)
        .map(|(s, p)| (format!("transformer.{}", s.name), p.clone(), s.shape.clone()))
        .collect();
    named.push(("transformer.h.0.attn.bias".into(), vec![1.0; 36], vec![1, 1, 6, 6]));
    named.push(("lm_head.weight".into(), params[0].clone(), vec![13, 8]));
    let views: Vec<_> = named
        .iter()
        .map(|(n, d, s)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), bytemuck::cast_slice(d))
                    .unwrap(),
            )
        })
        .collect();
    files.insert(MODEL, safetensors::serialize(views, None).unwrap());
    let back = Checkpoint::from_files(|n| files.get(n).cloned()).unwrap();
    assert_eq!(back.params, params);

    let wider = String::from_utf8(files[CONFIG].clone()).unwrap().replace("\"n_embd\": 8", "\"n_embd\": 10");
    files.insert(CONFIG, wider.into_bytes());
    let err = Checkpoint::from_files(|n| files.get(n).cloned()).err().unwrap();
    assert!(err.contains("shape"), "{err}");
    files.remove(CONFIG);
    let err = Checkpoint::from_files(|n| files.get(n).cloned()).err().unwrap();
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn char_tokenizer_is_the_sorted_character_set() {
    let text = "To be, or not to be:\nthat is the question.";
    let tok = Tokenizer::char_level(text).unwrap();
    let mut chars: Vec<char> = text.chars().collect();
    chars.sort();
    chars.dedup();
    assert_eq!(tok.vocab_size(), chars.len());
    let ids = tok.encode(text).unwrap();
    assert_eq!(ids.len(), text.chars().count());
    assert_eq!(ids[0] as usize, chars.iter().position(|&c| c == 'T').unwrap());
    assert_eq!(tok.decode(&ids), text);
    let again = Tokenizer::from_json(tok.to_json().as_bytes()).unwrap();
    assert_eq!(again.encode(text).unwrap(), ids);
}

#[test]
fn bpe_tokenizer_trains_and_round_trips() {
    let text = &kiln::corpus::DEFAULT_CORPUS[..200_000];
    let tok = Tokenizer::bpe(text, 400).unwrap();
    assert_eq!(tok.vocab_size(), 400);
    let sample = "O Romeo, Romeo! wherefore art thou Romeo?\n";
    let ids = tok.encode(sample).unwrap();
    assert!(
        ids.len() < sample.len() * 3 / 4,
        "a 400-token BPE should compress: {} tokens for {} bytes",
        ids.len(),
        sample.len()
    );
    assert_eq!(tok.decode(&ids), sample);
    assert!(Tokenizer::bpe(text, 100).is_err());
}

#[test]
fn unknown_json_is_refused() {
    assert!(Tokenizer::from_json(b"{}").is_err());
}

#[test]
fn packed_checkpoint_round_trips() {
    let cfg = small();
    let state = TrainState {
        train: TrainConfig::default(),
        step: 3,
        rng_state: 99,
        adam_m: kiln::cpu::init_params(&cfg, 6),
        adam_v: kiln::cpu::init_params(&cfg, 7),
        run: serde_json::json!({}),
    };
    let tok = Tokenizer::char_level("hello world").unwrap().to_json();
    let ckpt = Checkpoint { cfg, params: kiln::cpu::init_params(&cfg, 5), tokenizer_json: tok, state: Some(state) };
    let packed = ckpt.to_packed();
    let back = Checkpoint::from_packed(&packed).unwrap();
    assert_eq!(back.params, ckpt.params);
    assert_eq!(back.tokenizer_json, ckpt.tokenizer_json);
    assert_eq!(back.state.unwrap().adam_v, ckpt.state.unwrap().adam_v);
    assert!(Checkpoint::from_packed(&packed[..packed.len() / 3]).is_err());
    let plain: HashMap<_, _> = Checkpoint { state: None, ..back }.to_files().into_iter().collect();
    assert!(Checkpoint::from_packed(&plain[MODEL]).err().unwrap().contains("not a packed"));
}
