//! Prints per-kernel GPU time of one training step of the tiny shape (a development aid; the
//! user-facing benchmark is `kiln bench`).

fn main() {
    let gpu = pollster::block_on(kiln::gpu::Gpu::new()).unwrap();
    let cfg = kiln::config::ModelConfig { vocab_size: 76, n_layer: 2, n_head: 2, n_embd: 64, block_size: 64 };
    let train = kiln::config::TrainConfig::default();
    let params = kiln::cpu::init_params(&cfg, 1);
    let model = kiln::gpt::GpuGpt::new(&gpu, cfg, &params, 16, 64, &train).unwrap();
    let tokens: Vec<u32> = (0..1024).map(|i| (i * 7 % 76) as u32).collect();
    model.upload_batch(&gpu, &tokens, &tokens);
    pollster::block_on(model.profile_step(&gpu));
    let times = pollster::block_on(model.profile_step(&gpu)).expect("timestamps");
    let total: f64 = times.iter().map(|t| t.1).sum();
    println!("{} dispatches, {:.2} ms in kernels", times.len(), total / 1e6);
    if std::env::var("ALL").is_ok() { for (i, (k, ns)) in times.iter().enumerate() { println!("{i:3} {:28} {:8.3} ms", k.name(), ns / 1e6); } }
    for (name, ns, n) in kiln::gpu::by_kernel(&times) {
        println!("{name:32} {:8.3} ms  ({n} launches)", ns / 1e6);
    }
}
