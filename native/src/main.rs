//! `kiln`, the native command-line program: argument parsing and dispatch to the subcommands.
//!
//! Every failure a user can cause ends in one line on stderr and exit status 2, never a panic.

mod args;
mod bench_cmd;
mod bench_op;
mod checkpoint_io;
mod eval_cmd;
mod finetune_cmd;
mod gpu_open;
mod input;
mod plot;
mod report;
mod sample_cmd;
mod serve_cmd;
mod train_cmd;

use clap::Parser;

fn main() {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help and --version print to stdout
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprint!("{e}"); // plain `kiln`: the list of commands
            std::process::exit(2);
        }
        Err(e) => {
            // clap's message, first line only, and the house exit status for bad input.
            let msg = e.to_string();
            let line = msg.lines().next().unwrap_or("bad arguments").trim_start_matches("error: ");
            eprintln!("kiln: {line} (see kiln --help)");
            std::process::exit(2);
        }
    };
    // wgpu panics when a device is lost while Kiln waits on it; `Gpu::wait` catches that and the
    // run ends with the failure in one line, so that panic's message is not printed.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or_default();
        if !message.contains(kiln::gpu::Gpu::LOST_WHILE_WAITING) {
            default_hook(info);
        }
    }));
    if let Err(e) = gpu_open::configure(cli.kernels.clone()) {
        eprintln!("kiln: {e}");
        std::process::exit(2);
    }
    let result = match cli.command {
        args::Command::Train(a) => train_cmd::run(*a),
        args::Command::Finetune(a) => finetune_cmd::run(*a),
        args::Command::Merge(a) => finetune_cmd::merge(a),
        args::Command::Sample(a) => sample_cmd::run(a),
        args::Command::Eval(a) => eval_cmd::run(a),
        args::Command::Bench(a) => bench_cmd::run(a),
        args::Command::Info => info(),
        args::Command::Serve(a) => serve_cmd::run(a),
    };
    if let Err(e) = result {
        eprintln!("kiln: {e}");
        std::process::exit(2);
    }
}

fn info() -> Result<(), String> {
    let gpu = crate::gpu_open::open()?;
    println!("adapter: {gpu}");
    println!("driver: {} {}", gpu.info.driver, gpu.info.driver_info);
    let (k, how) = gpu_open::choice(&gpu);
    println!(
        "kernels: matmul {} (small products {}, large {}), layernorm {}, attention {} rows an invocation, {}, epilogue {}, bounds checks {} ({how})",
        k.matmul,
        k.matmul_small,
        k.matmul_large,
        k.norm,
        k.attention,
        match k.split.0 {
            0 => "no product split over K".to_string(),
            n => format!("products of fewer than {n} workgroups split over K"),
        },
        match k.epilogue {
            kiln::gpu::Epilogue::Compiled => "compiled in",
            kiln::gpu::Epilogue::Tested => "tested at run time",
        },
        if k.checked { "on" } else { "off" }
    );
    println!("features: {:?}", gpu.features);
    println!("limits: {:#?}", gpu.limits);
    Ok(())
}
