//! What the terminal shows: a progress bar and plain lines for people, or one JSON object per
//! line on stdout for machines (`--json`). Both also go to the run folder's metrics.jsonl when
//! one is open.

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::io::Write;

pub struct Reporter {
    json: bool,
    bar: Option<ProgressBar>,
    metrics: Option<std::fs::File>,
}

impl Reporter {
    pub fn new(json: bool) -> Reporter {
        Reporter { json, bar: None, metrics: None }
    }

    /// Also append every event to this file (metrics.jsonl of a run folder).
    pub fn keep_metrics(&mut self, file: std::fs::File) {
        self.metrics = Some(file);
    }

    pub fn start_progress(&mut self, total: usize, done: usize) {
        if self.json {
            return;
        }
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30.cyan/blue} step {pos}/{len} {msg} [{elapsed_precise} < {eta_precise}]",
            )
            .expect("valid template"),
        );
        bar.set_position(done as u64);
        self.bar = Some(bar);
    }

    pub fn progress(&self, step: usize, msg: String) {
        if let Some(bar) = &self.bar {
            bar.set_position(step as u64);
            bar.set_message(msg);
        }
    }

    pub fn finish_progress(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }

    /// One event: a JSON line on stdout under --json, else `human` on stderr (if not empty).
    pub fn event(&mut self, value: Value, human: &str) {
        if let Some(f) = &mut self.metrics {
            let _ = writeln!(f, "{value}");
        }
        if self.json {
            println!("{value}");
        } else if !human.is_empty() {
            // A hidden bar (stderr is not a terminal) would swallow its println.
            match &self.bar {
                Some(bar) if !bar.is_hidden() => bar.println(human),
                _ => eprintln!("{human}"),
            }
        }
    }
}

/// Rounds for display and JSON: losses to 4 decimals are plenty and keep lines short.
pub fn round4(x: f32) -> Value {
    json!((x as f64 * 1e4).round() / 1e4)
}

/// A run that ends early (an error returned through `?`) leaves its progress bar finished, so
/// the error line that follows starts on a line of its own.
impl Drop for Reporter {
    fn drop(&mut self) {
        self.finish_progress();
    }
}
