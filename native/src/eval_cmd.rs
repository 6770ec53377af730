//! `kiln eval`: mean loss and perplexity of a checkpoint over a whole text.

use crate::args::EvalArgs;
use crate::checkpoint_io;
use crate::input::read_corpus;
use kiln::gpu::Gpu;
use kiln::tokenizer::Tokenizer;
use serde_json::json;

pub fn run(a: EvalArgs) -> Result<(), String> {
    let ckpt = checkpoint_io::load(&a.checkpoint)?;
    let (text, source) = read_corpus(Some(&a.data))?;
    let tokenizer = Tokenizer::from_json(ckpt.tokenizer_json.as_bytes())?;
    let tokens = tokenizer.encode(&text)?;
    if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= ckpt.cfg.vocab_size) {
        return Err(format!(
            "the tokenizer gives token {bad}, outside the model's vocabulary of {}",
            ckpt.cfg.vocab_size
        ));
    }
    let gpu = pollster::block_on(Gpu::new())?;
    let layout = kiln::gpt::Layout::for_limits(&gpu.limits);
    kiln::plan::MemoryPlan::new(&ckpt.cfg, 1, ckpt.cfg.block_size, kiln::gpt::Mode::Eval, &layout)
        .check(&gpu.limits)?;
    let weights = std::rc::Rc::new(kiln::gpt::GpuWeights::upload(&gpu, ckpt.cfg, layout, &ckpt.params)?);
    let (loss, windows) = pollster::block_on(kiln::train::text_loss(&gpu, weights, &tokens, a.batch))?;
    let predicted = windows * ckpt.cfg.block_size;
    if a.json {
        println!(
            "{}",
            json!({"event": "eval", "loss": loss, "perplexity": loss.exp(), "windows": windows,
                              "tokens": tokens.len(), "predicted": predicted, "data": source})
        );
    } else {
        println!(
            "loss {loss:.4}, perplexity {:.2} over {predicted} predicted tokens ({windows} windows of {}) of {source}",
            loss.exp(),
            ckpt.cfg.block_size
        );
    }
    Ok(())
}
