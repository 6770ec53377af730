//! `kiln sample`: load a checkpoint, stream generated text to stdout token by token.

use crate::args::SampleArgs;
use crate::checkpoint_io;
use kiln::gpt::{GpuWeights, Layout, Mode};
use kiln::plan::MemoryPlan;
use kiln::sample::{Generator, SampleOptions};
use kiln::tokenizer::Tokenizer;
use std::io::Write;
use std::rc::Rc;

pub fn run(a: SampleArgs) -> Result<(), String> {
    if a.temperature < 0.0 || !a.temperature.is_finite() {
        return Err(format!("--temperature must be 0 or more, got {}", a.temperature));
    }
    if !(a.top_p > 0.0 && a.top_p <= 1.0) {
        return Err(format!("--top-p must be in (0, 1], got {}", a.top_p));
    }
    let ckpt = checkpoint_io::load(&a.checkpoint)?;
    let tokenizer = Tokenizer::from_json(ckpt.tokenizer_json.as_bytes())?;
    let gpu = crate::gpu_open::open()?;
    let layout = Layout::for_limits(&gpu.limits);
    MemoryPlan::new(&ckpt.cfg, 1, 1, Mode::Eval, &layout).check(&gpu.limits)?;
    let weights = Rc::new(GpuWeights::upload(&gpu, ckpt.cfg, layout, &ckpt.params)?);
    drop(ckpt.params);
    let mut generator = Generator::new(&gpu, weights);
    let prompt = tokenizer.encode(&a.prompt)?;
    let opts = SampleOptions { temperature: a.temperature, top_k: a.top_k, top_p: a.top_p, seed: a.seed };
    let mut stdout = std::io::stdout();
    let _ = write!(stdout, "{}", a.prompt);
    // Decode the whole generated tail each time and print what is new: a byte-level BPE token
    // may be half of a character, which only the next token completes.
    let mut generated: Vec<u32> = Vec::new();
    let mut shown = 0usize;
    pollster::block_on(generator.generate(&gpu, &prompt, a.tokens, &opts, |t| {
        generated.push(t);
        let text = tokenizer.decode(&generated);
        if text.len() > shown && text.is_char_boundary(shown) && !text.ends_with('\u{FFFD}') {
            let _ = write!(stdout, "{}", &text[shown..]);
            let _ = stdout.flush();
            shown = text.len();
        }
        true
    }))?;
    let text = tokenizer.decode(&generated);
    if text.len() > shown && text.is_char_boundary(shown) {
        let _ = write!(stdout, "{}", &text[shown..]);
    }
    let _ = writeln!(stdout);
    Ok(())
}
