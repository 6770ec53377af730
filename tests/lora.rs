//! LoRA against PEFT: Kiln reads the adapters PEFT saved (tests/fixtures/lora_tiny), and on the
//! tiny GPT-2 with the weights frozen reproduces PEFT's logits, masked loss, every adapter's
//! gradient and the adapters after one AdamW step (float64 reference made by
//! scripts/make_lora_fixture.py); merging the adapters into the weights gives the adapted model's
//! logits; and adapters that do not fit the base model are refused.

mod common;
use common::{assert_close, max_rel_error};
use kiln::config::TrainConfig;
use kiln::gpt::{GpuGpt, IGNORE};
use kiln::lora::{self, read_adapter_files, LoraConfig};
use safetensors::SafeTensors;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn fixture_dir(name: &str) -> impl Fn(&str) -> Option<Vec<u8>> {
    let dir = format!("{ROOT}/tests/fixtures/{name}");
    move |file| std::fs::read(format!("{dir}/{file}")).ok()
}

fn f32s(st: &SafeTensors, name: &str) -> Vec<f32> {
    bytemuck::pod_collect_to_vec(st.tensor(name).unwrap_or_else(|_| panic!("fixture lacks {name}")).data())
}

fn ints(st: &SafeTensors, name: &str) -> Vec<i64> {
    bytemuck::pod_collect_to_vec(st.tensor(name).unwrap().data())
}

#[test]
fn peft_adapters_match_kiln_forward_backward_step_and_merge() {
    let base = common::gpt2_tiny();
    let cfg = base.cfg;
    let (lora, adapters) = read_adapter_files(&cfg, fixture_dir("lora_tiny")).unwrap();
    assert_eq!(lora, LoraConfig { rank: 4, alpha: 8.0 });
    let meta: Value =
        serde_json::from_slice(&std::fs::read(format!("{ROOT}/tests/fixtures/lora_tiny_reference.json")).unwrap())
            .unwrap();
    let bytes = std::fs::read(format!("{ROOT}/tests/fixtures/lora_tiny_reference.safetensors")).unwrap();
    let reference = SafeTensors::deserialize(&bytes).unwrap();
    let inputs: Vec<u32> = ints(&reference, "inputs").iter().map(|&t| t as u32).collect();
    let targets: Vec<u32> =
        ints(&reference, "targets").iter().map(|&t| if t < 0 { IGNORE } else { t as u32 }).collect();
    let (b, t) = (2, inputs.len() / 2);
    let Some(gpu) = common::gpu() else { return };

    let train = TrainConfig {
        batch_size: b,
        seq_len: t,
        lr: meta["lr"].as_f64().unwrap() as f32,
        beta1: meta["beta1"].as_f64().unwrap() as f32,
        beta2: meta["beta2"].as_f64().unwrap() as f32,
        eps: meta["eps"].as_f64().unwrap() as f32,
        weight_decay: 0.0,
        grad_clip: 1e9, // PEFT's step is unclipped
        lora: Some(lora),
        ..TrainConfig::default()
    };
    let model = GpuGpt::new(&gpu, cfg, &base.params, b, t, &train).unwrap();
    model.write_adapters(&gpu, &adapters).unwrap();
    model.upload_batch(&gpu, &inputs, &targets);

    let v = cfg.vocab_size;
    let kept = 256;
    let head = |logits: &[f32]| -> Vec<f32> { logits.chunks(v).flat_map(|row| row[..kept].to_vec()).collect() };
    let logits = pollster::block_on(model.logits(&gpu)).unwrap();
    let err = max_rel_error(&head(&logits), &f32s(&reference, "logits"));
    assert!(err < 1e-5, "adapted logits differ from PEFT's by {err:e}");

    let loss = pollster::block_on(model.forward_backward(&gpu)).unwrap();
    let want = meta["loss"].as_f64().unwrap() as f32;
    assert!(((loss - want) / want).abs() < 1e-5, "masked loss {loss} vs PEFT's {want}");
    let grads = pollster::block_on(model.read_grads(&gpu)).unwrap();
    let table = lora::adapter_table(&cfg, &lora);
    let mut worst = 0.0f32;
    for (spec, g) in table.iter().zip(&grads) {
        let err = max_rel_error(g, &f32s(&reference, &format!("grad.{}", spec.name)));
        worst = worst.max(err);
        assert!(err < 1e-4, "{}: gradient differs from PEFT's by {err:e}", spec.name);
    }
    eprintln!("LoRA: logits {:e}, loss {loss} vs {want}, worst adapter gradient {worst:e}", err);

    pollster::block_on(model.train_step(&gpu, 1, train.lr, &train, false)).unwrap();
    let after = pollster::block_on(model.read_adapters(&gpu)).unwrap().unwrap();
    for (spec, a) in table.iter().zip(&after) {
        assert_close(
            &format!("{} after one step", spec.name),
            a,
            &f32s(&reference, &format!("after.{}", spec.name)),
            1e-4,
            1e-6,
        );
    }
    // The frozen weights did not move.
    let params = pollster::block_on(model.read_params(&gpu)).unwrap();
    assert_eq!(params, base.params, "LoRA training changed a base weight");

    // Merged into the weights, the adapters give the adapted model's logits.
    let merged = lora::merge(&cfg, &lora, &base.params, &after);
    let adapted = pollster::block_on(model.logits(&gpu)).unwrap();
    let plain = GpuGpt::for_eval(&gpu, cfg, &merged, b, t).unwrap();
    plain.upload_batch(&gpu, &inputs, &targets);
    let merged_logits = pollster::block_on(plain.logits(&gpu)).unwrap();
    let err = max_rel_error(&merged_logits, &adapted);
    assert!(err < 1e-5, "merged logits differ from the adapted model's by {err:e}");
}

#[test]
fn adapters_that_do_not_fit_the_base_are_refused() {
    let cfg = kiln::config::ModelConfig { vocab_size: 100, n_layer: 2, n_head: 4, n_embd: 48, block_size: 32 };
    let err = read_adapter_files(&cfg, fixture_dir("lora_tiny")).unwrap_err();
    assert!(err.contains("do not match the base model"), "{err}");
    let missing = |name: &str| Some(name.to_string()).filter(|n| n.ends_with("json")).and(None);
    assert!(read_adapter_files(&cfg, missing).unwrap_err().contains("no adapter_config.json"));
    let tiny = common::gpt2_tiny().cfg;
    let read = fixture_dir("lora_tiny");
    let dora = move |name: &str| {
        let bytes = read(name)?;
        if name == "adapter_config.json" {
            let mut v: Value = serde_json::from_slice(&bytes).unwrap();
            v["use_dora"] = Value::Bool(true);
            return Some(serde_json::to_vec(&v).unwrap());
        }
        Some(bytes)
    };
    assert!(read_adapter_files(&tiny, dora).unwrap_err().contains("DoRA"));
}

#[test]
fn kiln_adapter_files_read_back() {
    let cfg = kiln::config::ModelConfig { vocab_size: 50, n_layer: 2, n_head: 2, n_embd: 16, block_size: 8 };
    let l = LoraConfig { rank: 2, alpha: 4.0 };
    let mut adapters = lora::init_adapters(&cfg, &l, 3);
    adapters.iter_mut().flatten().enumerate().for_each(|(i, x)| *x += i as f32 * 1e-3);
    let files: std::collections::HashMap<_, _> = lora::adapter_files(&cfg, &l, &adapters, "base").into_iter().collect();
    let (l2, a2) = read_adapter_files(&cfg, |n| files.get(n).cloned()).unwrap();
    assert_eq!((l2, a2), (l, adapters));
}
