//! Kiln: train GPT-2 language models on any WebGPU device, natively or in a browser tab.
//!
//! Data flows one way: text -> tokenizer -> data -> model on the GPU -> the front end's
//! reporting. The core knows nothing of terminals or pages, files or clocks.

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod corpus;
pub mod cpu;
pub mod data;
pub mod gpt;
pub mod gpu;
pub mod lora;
pub mod model;
pub mod plan;
pub mod sample;
pub mod task;
pub mod task_eval;
pub mod tokenizer;
pub mod train;
