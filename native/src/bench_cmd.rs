//! `kiln bench`: times training steps of a preset on this adapter, with what moved across the
//! bus, and per-kernel times where the adapter has timestamp queries.

use crate::args::BenchArgs;
use crate::train_cmd::default_preset;
use kiln::config::{preset, TrainConfig};
use kiln::gpt::{GpuGpt, Layout, Mode};
use kiln::gpu::by_kernel;
use kiln::plan::MemoryPlan;
use serde_json::json;
use std::time::Instant;

pub fn run(a: BenchArgs) -> Result<(), String> {
    if let Some(op) = a.op {
        return crate::bench_op::run(&a, op);
    }
    if a.steps == 0 {
        return Err("--steps must be at least 1".into());
    }
    if let Some(p) = &a.shape.preset {
        preset(p)?;
    }
    // From here to the end of the first step: what a person waits before training moves
    // (adapter, pipelines, buffers, the first step itself).
    let start = Instant::now();
    let gpu = crate::gpu_open::open()?;
    let name = a.shape.preset.clone().unwrap_or_else(|| default_preset(&gpu).to_string());
    let p = preset(&name)?;
    // The preset gives the shape; single options override it, as in `kiln train`.
    let cfg = a.shape.model(&p, a.vocab);
    cfg.validate()?;
    let (b, t) = (a.shape.batch.unwrap_or(p.batch_size), cfg.block_size);
    let train = TrainConfig { batch_size: b, seq_len: t, ..TrainConfig::default() };
    train.validate(&cfg)?;
    let layout = Layout::for_limits(&gpu.limits);
    let plan = MemoryPlan::new(&cfg, b, t, Mode::Train, &layout);
    if a.plan {
        println!("{name} shape, batch {b} x block {t}: holds {}", plan.summary());
        return plan.check(&gpu.limits).map(|()| println!("fits this adapter ({gpu})"));
    }
    plan.check(&gpu.limits)?;
    let params = kiln::cpu::init_params(&cfg, 1);
    let model = GpuGpt::new(&gpu, cfg, &params, b, t, &train)?;
    let mut rng = kiln::cpu::Rng::new(7);
    let tokens: Vec<u32> = (0..b * t).map(|_| (rng.next_u64() % cfg.vocab_size as u64) as u32).collect();
    model.upload_batch(&gpu, &tokens, &tokens);

    let warmup = 3;
    pollster::block_on(model.train_step(&gpu, 1, 1e-4, &train, true))?;
    let first_step_s = start.elapsed().as_secs_f64();
    for s in 2..=warmup {
        pollster::block_on(model.train_step(&gpu, s, 1e-4, &train, s == warmup))?;
    }
    let before = model.traffic.get();
    let started = Instant::now();
    for s in 1..=a.steps {
        // The loss is read only after the last step: the one sync of the timed loop.
        pollster::block_on(model.train_step(&gpu, warmup + s, 1e-4, &train, s == a.steps))?;
    }
    let secs = started.elapsed().as_secs_f64();
    let after = model.traffic.get();
    let ms = 1000.0 * secs / a.steps as f64;
    let tokens_per_s = (b * t * a.steps) as f64 / secs;
    // FLOPs per token: 6 per parameter (forward and backward) without the position table,
    // plus attention's 12 L T C (nanoGPT's and llm.c's count).
    let n = kiln::model::num_params(&cfg) - cfg.block_size * cfg.n_embd;
    let flops_per_token = 6.0 * n as f64 + 12.0 * (cfg.n_layer * t * cfg.n_embd) as f64;
    let tflops = flops_per_token * tokens_per_s / 1e12;
    let submits = (after.0 - before.0) as f64 / a.steps as f64;
    let bytes = (after.1 - before.1) as f64 / a.steps as f64;
    let kernels = pollster::block_on(model.profile_step(&gpu, true))?.map(|times| by_kernel(&times));

    if a.json {
        let per_kernel: Vec<_> =
            kernels.iter().flatten().map(|(k, ns, n)| json!({"kernel": k, "ms": ns / 1e6, "launches": n})).collect();
        println!(
            "{}",
            json!({"event": "bench", "preset": name, "params": kiln::model::num_params(&cfg), "batch": b, "block": t,
            "vocab": cfg.vocab_size, "steps": a.steps, "ms_per_step": ms, "tokens_per_s": tokens_per_s, "tflops": tflops,
            "submits_per_step": submits, "start_to_first_step_s": first_step_s, "readback_bytes_per_step": bytes, "adapter": gpu.to_string(), "kernels": per_kernel,
            "memory_bytes": plan.total_bytes(), "weight_bytes": plan.weight_bytes, "optimizer_bytes": plan.optimizer_bytes,
            "activation_bytes": plan.activation_bytes})
        );
        return Ok(());
    }
    println!("adapter: {gpu}");
    println!(
        "model: {name} shape, {} layers, {} heads, {} channels ({:.2}M parameters), batch {b} x block {t}, vocabulary {}",
        cfg.n_layer,
        cfg.n_head,
        cfg.n_embd,
        kiln::model::num_params(&cfg) as f64 / 1e6,
        cfg.vocab_size
    );
    println!("{ms:.1} ms/step, {tokens_per_s:.0} tokens/s, {tflops:.4} TFLOP/s over {} steps", a.steps);
    println!("{first_step_s:.2} s from start to the end of the first step");
    println!("{submits:.2} queue submits per step, {bytes:.2} bytes read back per step");
    println!("holds {}", plan.summary());
    match kernels {
        Some(list) => {
            let total: f64 = list.iter().map(|k| k.1).sum();
            println!("GPU time by kernel (one profiled step, {:.1} ms in kernels):", total / 1e6);
            for (k, ns, n) in list {
                println!("  {k:28} {:9.3} ms {:5.1}%  ({n} launches)", ns / 1e6, 100.0 * ns / total);
            }
        }
        None => println!("per-kernel times: this adapter offers no timestamp queries"),
    }
    Ok(())
}
