//! The command line, declared once with clap: subcommands, options and their defaults.
//! Defaults come from the core's structs (`TrainConfig`, `RunSettings`, `SampleOptions`), which
//! the page reads too.

use clap::{Args, Parser, Subcommand};
use kiln::config::{RunSettings, TrainConfig};
use kiln::sample::{SampleOptions, DEFAULT_SAMPLE_TOKENS};
use kiln::task_eval::EvalOptions;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "kiln", version, about = "Train small GPT-2 language models on any GPU, through WebGPU")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub kernels: KernelArgs,
}

/// How the GPU kernels are built, for every command.
#[derive(Args, Clone, Default)]
pub struct KernelArgs {
    /// Matrix-product kernel: "auto" (a timed trial on first use of this adapter, then cached),
    /// "simple", or a tile shape WXxWY:TMxTN:BK such as 16x16:4x4:16 (loops over arrays), or the
    /// same after a "u" such as u16x16:8x8:16 (written out)
    #[arg(long, global = true, default_value = "auto")]
    pub matmul: String,
    /// LayerNorm kernels: "auto" (chosen by the same trial), "workgroup" (a workgroup per row),
    /// "rows" (an invocation per row) or "subgroup" (a workgroup per row, summed by subgroup
    /// operations: adapters that have them)
    #[arg(long, global = true, default_value = "auto")]
    pub norm: String,
    /// Rows of queries (or keys) one invocation of the flash attention kernels takes: "auto"
    /// (chosen by the same trial), or 1 to 4
    #[arg(long, global = true, default_value = "auto")]
    pub attention_rows: String,
    /// Products with fewer output tiles than this many workgroups run their shared dimension in
    /// slices side by side (weight gradients): "auto" (chosen by the same trial), "off", or a
    /// count of workgroups
    #[arg(long, global = true, default_value = "auto")]
    pub split_k: String,
    /// Whether the register-tiled products' epilogue has "add a residual" and "add into out"
    /// compiled in (a pipeline for each combination) or tests them at run time (one pipeline, so
    /// fewer compiles before the first step): "auto" (compiled, or tested where a software
    /// adapter has no trial's choice), "compiled" or "tested"
    #[arg(long, global = true, default_value = "auto")]
    pub epilogue: String,
    /// Keep wgpu's runtime bounds checks in the shaders (slower; for chasing a kernel bug)
    #[arg(long, global = true)]
    pub checked: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// Pre-train a GPT-2 on a text corpus (the embedded Shakespeare by default)
    Train(Box<TrainArgs>),
    /// Fine-tune a checkpoint on a task file (prompt/completion JSON lines), fully or with LoRA
    Finetune(Box<FinetuneArgs>),
    /// Merge LoRA adapters into their base model's weights: a plain GPT-2 checkpoint
    Merge(MergeArgs),
    /// Generate text from a checkpoint, streaming tokens as they come
    Sample(SampleArgs),
    /// Score a checkpoint: loss and perplexity over a text (--data), or a task zero- or few-shot (--task)
    Eval(EvalArgs),
    /// Time training steps: ms per step, tokens/s, TFLOP/s, per-kernel times
    Bench(BenchArgs),
    /// Show the GPU adapter, its backend, features and limits
    Info,
    /// Serve the web page (index.html, web/, tasks/) on 127.0.0.1
    Serve(ServeArgs),
}

/// A model's shape and batch, as `train` and `bench` take them: a preset, and single options
/// that override it.
#[derive(Args, Clone)]
pub struct ShapeArgs {
    /// Model preset: tiny, small, shakespeare, gpt2 (default: tiny on a software adapter,
    /// shakespeare on a GPU)
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
}

impl ShapeArgs {
    /// The preset's shape with the single options over it, for a vocabulary of `vocab`.
    pub fn model(&self, p: &kiln::config::Preset, vocab: usize) -> kiln::config::ModelConfig {
        kiln::config::ModelConfig {
            vocab_size: vocab,
            n_layer: self.layers.unwrap_or(p.n_layer),
            n_head: self.heads.unwrap_or(p.n_head),
            n_embd: self.embd.unwrap_or(p.n_embd),
            block_size: self.block.unwrap_or(p.block_size),
        }
    }
}

#[derive(Args, Clone)]
pub struct TrainArgs {
    /// A text file, or a folder whose .txt files are joined in sorted order (default: the
    /// embedded Shakespeare)
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub shape: ShapeArgs,
    #[arg(long, default_value_t = TrainConfig::default().steps as i64, allow_negative_numbers = true)]
    pub steps: i64,
    #[arg(long, default_value_t = TrainConfig::default().lr, allow_negative_numbers = true)]
    pub lr: f32,
    #[arg(long, default_value_t = TrainConfig::default().warmup)]
    pub warmup: usize,
    #[arg(long, default_value_t = TrainConfig::default().weight_decay)]
    pub weight_decay: f32,
    #[arg(long, default_value_t = TrainConfig::default().grad_clip)]
    pub grad_clip: f32,
    #[arg(long, default_value_t = RunSettings::default().val_fraction)]
    pub val_fraction: f32,
    /// Evaluate on the validation part every N steps
    #[arg(long, default_value_t = RunSettings::default().eval_every)]
    pub eval_every: usize,
    #[arg(long, default_value_t = RunSettings::default().eval_batches)]
    pub eval_batches: usize,
    /// Read the loss back every N steps (the only GPU sync of a training step)
    #[arg(long, default_value_t = RunSettings::default().log_every)]
    pub log_every: usize,
    /// Print a sample every N steps (0: only at the end)
    #[arg(long, default_value_t = RunSettings::default().sample_every)]
    pub sample_every: usize,
    /// Write a checkpoint every N steps (0: only at the end)
    #[arg(long, default_value_t = RunSettings::default().checkpoint_every)]
    pub checkpoint_every: usize,
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    pub seed: u64,
    /// char, bpe:N (train a byte-level BPE of N tokens) or a tokenizer.json path
    #[arg(long, default_value = "char")]
    pub tokenizer: String,
    /// Run folder: checkpoint, metrics.jsonl, loss.svg (default: runs/<preset>-<date>-<time>)
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Stop after step N with a checkpoint, to continue later with --resume
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Continue the run in this folder to its configured step count (other options are taken
    /// from the run)
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Start from this checkpoint's weights and tokenizer (a Kiln run folder, a Hugging Face
    /// GPT-2 folder, or a .kiln file) with a fresh optimizer: continued pre-training on new text.
    /// The model's shape comes from it; --block may be shorter than its positions.
    #[arg(long, conflicts_with_all = ["resume", "preset", "layers", "heads", "embd", "tokenizer"])]
    pub init: Option<PathBuf>,
    /// One JSON object per line on stdout instead of a progress bar
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Clone)]
pub struct FinetuneArgs {
    /// The model to start from: a Kiln run folder, a Hugging Face GPT-2 folder or a .kiln file
    #[arg(long, required_unless_present = "resume")]
    pub checkpoint: Option<PathBuf>,
    /// Training examples: JSON lines of {"prompt", "completion"} (or "choices" and "answer")
    #[arg(long, required_unless_present = "resume")]
    pub task: Option<PathBuf>,
    /// Validation examples (default: a seeded tenth of --task, held out of training)
    #[arg(long)]
    pub val: Option<PathBuf>,
    #[arg(long, default_value_t = TrainConfig::finetune().steps as i64, allow_negative_numbers = true)]
    pub steps: i64,
    #[arg(long, default_value_t = TrainConfig::finetune().lr, allow_negative_numbers = true)]
    pub lr: f32,
    #[arg(long, default_value_t = TrainConfig::finetune().warmup)]
    pub warmup: usize,
    #[arg(long, default_value_t = TrainConfig::finetune().weight_decay)]
    pub weight_decay: f32,
    #[arg(long, default_value_t = TrainConfig::finetune().grad_clip)]
    pub grad_clip: f32,
    /// Examples per step
    #[arg(long, default_value_t = TrainConfig::finetune().batch_size)]
    pub batch: usize,
    #[arg(long, default_value_t = TrainConfig::finetune().seed)]
    pub seed: u64,
    /// Evaluate on the validation examples every N steps
    #[arg(long, default_value_t = RunSettings::finetune().eval_every)]
    pub eval_every: usize,
    #[arg(long, default_value_t = RunSettings::finetune().log_every)]
    pub log_every: usize,
    /// Show the model's answer to a validation prompt every N steps (0: only at the end)
    #[arg(long, default_value_t = RunSettings::finetune().sample_every)]
    pub sample_every: usize,
    #[arg(long, default_value_t = RunSettings::finetune().checkpoint_every)]
    pub checkpoint_every: usize,
    /// Run folder (default: runs/finetune-<date>-<time>)
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Train LoRA adapters of this rank on every projection instead of all the weights (frozen)
    #[arg(long)]
    pub lora: Option<usize>,
    /// LoRA's alpha: the adapters' product is scaled by alpha / rank (default: 2 x rank)
    #[arg(long, requires = "lora")]
    pub lora_alpha: Option<f32>,
    /// Continue the fine-tuning run in this folder
    #[arg(long, conflicts_with_all = ["checkpoint", "task", "val", "lora"])]
    pub resume: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Clone)]
pub struct MergeArgs {
    /// A LoRA run folder (its base is the one it names), or with --adapter the base model
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// A folder of PEFT adapters (adapter_model.safetensors + adapter_config.json) for --checkpoint
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Where the merged checkpoint goes (a new or empty folder)
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Clone)]
pub struct SampleArgs {
    /// A checkpoint folder (a run folder, or a Hugging Face GPT-2 folder)
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[arg(long, default_value = "")]
    pub prompt: String,
    #[arg(long, default_value_t = DEFAULT_SAMPLE_TOKENS)]
    pub tokens: usize,
    #[arg(long, default_value_t = SampleOptions::default().temperature)]
    pub temperature: f32,
    /// Keep only the K most likely tokens (0: all)
    #[arg(long, default_value_t = SampleOptions::default().top_k)]
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches P (1: all)
    #[arg(long, default_value_t = SampleOptions::default().top_p)]
    pub top_p: f32,
    #[arg(long, default_value_t = SampleOptions::default().seed)]
    pub seed: u64,
}

#[derive(Args, Clone)]
pub struct EvalArgs {
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// A text file or a folder of .txt files: its mean loss and perplexity
    #[arg(long, required_unless_present = "task", conflicts_with = "task")]
    pub data: Option<PathBuf>,
    /// A task file (JSON lines): accuracy over its choices, or exact match and F1 of greedy answers
    #[arg(long)]
    pub task: Option<PathBuf>,
    /// Solved examples placed before each question (0: zero-shot)
    #[arg(long, default_value_t = EvalOptions::default().shots, requires = "task")]
    pub shots: usize,
    /// Where the shots come from (a task file; default: --task itself, never the question)
    #[arg(long, requires = "task")]
    pub shots_from: Option<PathBuf>,
    /// Seed of the shots drawn
    #[arg(long, default_value_t = EvalOptions::default().seed)]
    pub seed: u64,
    /// Windows (or choice rows) per GPU batch
    #[arg(long, default_value_t = EvalOptions::default().batch)]
    pub batch: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Clone)]
pub struct BenchArgs {
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// Timed steps (after 3 warm-up steps)
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Vocabulary size of the timed model (65 is a char-level Shakespeare, 50257 GPT-2's)
    #[arg(long, default_value_t = 65)]
    pub vocab: usize,
    #[arg(long)]
    pub json: bool,
    /// Print the memory the model would hold (and whether it fits this adapter), then stop
    #[arg(long)]
    pub plan: bool,
    /// Time one operation instead of a training step: matmul (with --m --n --k) or attention
    /// (with --batch --heads --block --head-dim); prints one JSON line per program
    #[arg(long, value_enum)]
    pub op: Option<BenchOp>,
    #[arg(long, default_value_t = 1024)]
    pub m: usize,
    #[arg(long, default_value_t = 1024)]
    pub n: usize,
    #[arg(long, default_value_t = 1024)]
    pub k: usize,
    /// Read A (K, M) transposed, as a weight gradient does
    #[arg(long)]
    pub trans_a: bool,
    /// Read B (N, K) transposed, as an input gradient does
    #[arg(long)]
    pub trans_b: bool,
    /// Add the product into out, as the LM head's input gradient does over vocabulary chunks
    #[arg(long)]
    pub accumulate: bool,
    /// Channels per attention head
    #[arg(long, default_value_t = 64)]
    pub head_dim: usize,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum BenchOp {
    Matmul,
    Attention,
}

#[derive(Args, Clone)]
pub struct ServeArgs {
    /// Port (0 picks a free one)
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on; anything but a loopback address makes the page reachable by others
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Connections served at once; more get "503 busy" at once
    #[arg(long, default_value_t = 32)]
    pub max_connections: usize,
    /// Seconds a client has to send its whole request (and to read the answer)
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    /// Folder holding index.html and web/ (default: the current folder)
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}
