//! Generation with the KV cache gives the logits of the full forward pass, position by
//! position, and the sampler honours temperature, top-k and top-p.

mod common;
use common::{assert_close, random, random_tokens};
use kiln::config::ModelConfig;
use kiln::cpu::{CpuGpt, Rng};
use kiln::gpt::{GpuWeights, Layout};
use kiln::sample::{argmax, sample_token, Generator, SampleOptions};
use std::rc::Rc;

fn model(cfg: &ModelConfig) -> Vec<Vec<f32>> {
    // Perturbed away from the plain init so zero biases and unit norms hide nothing.
    let mut params = kiln::cpu::init_params(cfg, 3);
    for (i, p) in params.iter_mut().enumerate() {
        let noise = random(p.len(), 100 + i as u64, 0.1);
        for (x, r) in p.iter_mut().zip(noise) {
            *x += r;
        }
    }
    params
}

/// Under the adapter's own layout and under one that splits wte over three buffers (at most
/// 10 rows each), as a large vocabulary is.
#[test]
fn kv_cache_matches_full_forward() {
    let Some(gpu) = common::gpu() else { return };
    let cfg = ModelConfig { vocab_size: 29, n_layer: 2, n_head: 3, n_embd: 48, block_size: 16 };
    let params = model(&cfg);
    let split = Layout { max_buffer_bytes: (4 * 48 * 10) as u64, logits_chunk_bytes: 1 << 20 };
    for layout in [Layout::for_limits(&gpu.limits), split] {
        let weights = Rc::new(GpuWeights::upload(&gpu, cfg, layout, &params).unwrap());
        assert_eq!(weights.tensors[0].parts.len(), if layout == split { 3 } else { 1 });
        check_decode(&gpu, Generator::new(&gpu, weights), &cfg, &params);
    }
}

fn check_decode(gpu: &kiln::gpu::Gpu, mut gen: Generator, cfg: &ModelConfig, params: &[Vec<f32>]) {
    let tokens = random_tokens(20, cfg.vocab_size, 7);
    let mut cpu = CpuGpt::new(*cfg, params.to_vec());
    let (want, _) = cpu.forward(&tokens[..16], None, 1, 16);
    let v = cfg.vocab_size;
    for (i, &t) in tokens[..16].iter().enumerate() {
        let got = pollster::block_on(gen.feed(gpu, t)).unwrap();
        assert_close(&format!("decode logits at position {i}"), &got, &want[i * v..(i + 1) * v], 1e-4, 1e-5);
    }
    // The cache is full: the next token slides the window to the newest half (tokens 8..16)
    // plus itself, all from position 0.
    let got = pollster::block_on(gen.feed(gpu, tokens[16])).unwrap();
    let (want, _) = cpu.forward(&tokens[8..17], None, 1, 9);
    assert_close("decode logits after the window slid", &got, &want[8 * v..9 * v], 1e-4, 1e-5);

    // A prompt fed whole (the prefill program) gives the logits of feeding it token by token,
    // whatever was in the cache before, and decoding goes on from its cache alike; a prompt longer
    // than the cache slides as decoding does.
    for len in [1, 2, 3, 11, 15, 16] {
        let prompt = &tokens[..len];
        let whole = pollster::block_on(gen.prefill(gpu, prompt)).unwrap();
        gen.reset();
        let mut one_by_one = vec![];
        for &t in prompt {
            one_by_one = pollster::block_on(gen.feed(gpu, t)).unwrap();
        }
        assert_close(&format!("prefill of {len} against one by one"), &whole, &one_by_one, 1e-4, 1e-5);
        assert_close(&format!("prefill of {len}"), &whole, &want_at(&mut cpu, prompt, v), 1e-4, 1e-5);
        if len < 16 {
            let _ = pollster::block_on(gen.prefill(gpu, prompt)).unwrap();
            let next = pollster::block_on(gen.feed(gpu, tokens[len])).unwrap();
            let want = want_at(&mut cpu, &tokens[..len + 1], v);
            assert_close(&format!("decoding after a prefill of {len}"), &next, &want, 1e-4, 1e-5);
        }
    }
    let long = pollster::block_on(gen.prefill(gpu, &tokens[..19])).unwrap();
    assert!(long.iter().all(|x| x.is_finite()) && long.len() == v);
}

/// The CPU model's logits for the last token of `prompt`.
fn want_at(cpu: &mut CpuGpt, prompt: &[u32], v: usize) -> Vec<f32> {
    let (all, _) = cpu.forward(prompt, None, 1, prompt.len());
    all[(prompt.len() - 1) * v..].to_vec()
}

#[test]
fn sampler_options() {
    let logits = vec![0.1, 2.0, -1.0, 1.9, 0.0];
    let mut rng = Rng::new(1);
    let greedy = SampleOptions { temperature: 0.0, ..Default::default() };
    assert_eq!(sample_token(&logits, &greedy, &mut rng), 1);
    let top1 = SampleOptions { temperature: 1.0, top_k: 1, ..Default::default() };
    let tiny_p = SampleOptions { temperature: 1.0, top_p: 0.01, ..Default::default() };
    let top2 = SampleOptions { temperature: 1.0, top_k: 2, ..Default::default() };
    let mut seen = [0usize; 5];
    for _ in 0..2000 {
        assert_eq!(sample_token(&logits, &top1, &mut rng), argmax(&logits));
        assert_eq!(sample_token(&logits, &tiny_p, &mut rng), argmax(&logits));
        seen[sample_token(&logits, &top2, &mut rng) as usize] += 1;
    }
    assert_eq!(seen[0] + seen[2] + seen[4], 0, "top-k 2 drew outside the two best: {seen:?}");
    // exp(2.0) / (exp(2.0) + exp(1.9)) = 0.525
    let share = seen[1] as f64 / 2000.0;
    assert!((share - 0.525).abs() < 0.05, "token 1 drawn {share} of the time, expected about 0.525");
}
