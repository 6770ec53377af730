//! `kiln`, the native command-line program: argument parsing and dispatch to the subcommands.
//!
//! Every failure a user can cause ends in one line on stderr and exit status 2, never a panic.

mod args;
mod input;
mod report;
mod train_cmd;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
    let result = match cli.command {
        args::Command::Train(a) => train_cmd::run(a),
        args::Command::Info => info(),
    };
    if let Err(e) = result {
        eprintln!("kiln: {e}");
        std::process::exit(2);
    }
}

fn info() -> Result<(), String> {
    let gpu = pollster::block_on(kiln::gpu::Gpu::new())?;
    println!("adapter: {gpu}");
    println!("driver: {} {}", gpu.info.driver, gpu.info.driver_info);
    println!("features: {:?}", gpu.features);
    println!("limits: {:#?}", gpu.limits);
    Ok(())
}
