//! The command line, declared once with clap: subcommands, options and their defaults.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "kiln", version, about = "Train small GPT-2 language models on any GPU, through WebGPU")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Pre-train a GPT-2 on a text corpus (the embedded Shakespeare by default)
    Train(TrainArgs),
    /// Show the GPU adapter, its backend, features and limits
    Info,
}

#[derive(Args, Clone)]
pub struct TrainArgs {
    /// A text file, or a folder whose .txt files are joined in sorted order (default: the
    /// embedded Shakespeare)
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Model preset: tiny, small, shakespeare, gpt2 (default: tiny on a software adapter)
    #[arg(long)]
    pub preset: Option<String>,
    #[arg(long)]
    pub layers: Option<usize>,
    #[arg(long)]
    pub heads: Option<usize>,
    /// Channels (embedding width)
    #[arg(long)]
    pub embd: Option<usize>,
    /// Block size: tokens per training window
    #[arg(long)]
    pub block: Option<usize>,
    #[arg(long)]
    pub batch: Option<usize>,
    #[arg(long, default_value_t = 300)]
    pub steps: i64,
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    pub lr: f32,
    #[arg(long, default_value_t = 30)]
    pub warmup: usize,
    #[arg(long, default_value_t = 0.1)]
    pub weight_decay: f32,
    #[arg(long, default_value_t = 1.0)]
    pub grad_clip: f32,
    #[arg(long, default_value_t = 0.1)]
    pub val_fraction: f32,
    /// Evaluate on the validation part every N steps
    #[arg(long, default_value_t = 100)]
    pub eval_every: usize,
    #[arg(long, default_value_t = 20)]
    pub eval_batches: usize,
    /// Read the loss back every N steps (the only GPU sync of a training step)
    #[arg(long, default_value_t = 10)]
    pub log_every: usize,
    #[arg(long, default_value_t = 1337)]
    pub seed: u64,
    /// char, bpe:N (train a byte-level BPE of N tokens) or a tokenizer.json path
    #[arg(long, default_value = "char")]
    pub tokenizer: String,
    /// One JSON object per line on stdout instead of a progress bar
    #[arg(long)]
    pub json: bool,
}
