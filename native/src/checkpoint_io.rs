//! Checkpoint folders on disk (and packed `.kiln` files): atomic writes, one-line errors on reads.
//!
//! Each file is written under a temporary name and renamed into place, `training_state.json`
//! last, so a crash mid-write leaves the previous checkpoint's files whole.

use kiln::checkpoint::Checkpoint;
use kiln::lora::LoraRun;
use std::io::Write;
use std::path::Path;

pub fn save(dir: &Path, ckpt: &Checkpoint) -> Result<(), String> {
    save_files(dir, ckpt.to_files())
}

/// Writes `files` (name, bytes) into `dir` as `save` does: all written, then all renamed.
pub fn save_files(dir: &Path, files: Vec<(&'static str, Vec<u8>)>) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Write every file first, then rename them all: the old checkpoint stays readable until
    // the new one is complete on disk.
    for (name, bytes) in &files {
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut f = std::fs::File::create(&tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    }
    for (name, _) in &files {
        std::fs::rename(dir.join(format!(".{name}.tmp")), dir.join(name))
            .map_err(|e| format!("cannot finish writing {name} in {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Whether `dir` holds LoRA adapters rather than a whole model.
pub fn is_adapter_folder(dir: &Path) -> bool {
    dir.join(kiln::lora::ADAPTER_CONFIG).is_file() && !dir.join(kiln::checkpoint::MODEL).exists()
}

/// A LoRA run folder (or PEFT adapters beside a config.json and tokenizer.json).
pub fn load_lora_run(dir: &Path) -> Result<LoraRun, String> {
    LoraRun::from_files(|name| std::fs::read(dir.join(name)).ok())
        .map_err(|e| format!("cannot load the adapters in {}: {e}", dir.display()))
}

/// The base model with the adapters in `adapters` (PEFT's two files) merged into its weights.
pub fn load_merged(base: &Path, adapters: &Path) -> Result<Checkpoint, String> {
    let mut ckpt = load(base)?;
    let (lora, tensors) = kiln::lora::read_adapter_files(&ckpt.cfg, |name| std::fs::read(adapters.join(name)).ok())
        .map_err(|e| format!("{}: {e}", adapters.display()))?;
    ckpt.params = kiln::lora::merge(&ckpt.cfg, &lora, &ckpt.params, &tensors);
    ckpt.state = None;
    Ok(ckpt)
}

/// Loads a checkpoint folder (Kiln's, or any Hugging Face GPT-2 one), a packed `.kiln` file
/// (the browser's download), or a LoRA run folder: its base model (the path its
/// adapter_config.json names) with the adapters merged in.
pub fn load(dir: &Path) -> Result<Checkpoint, String> {
    if is_adapter_folder(dir) {
        let run = load_lora_run(dir)?;
        if run.base.is_empty() {
            return Err(format!(
                "{}: adapter_config.json names no base model: use kiln merge --adapter",
                dir.display()
            ));
        }
        return load_merged(Path::new(&run.base), dir);
    }
    if dir.is_file() {
        let bytes = std::fs::read(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        return Checkpoint::from_packed(&bytes)
            .map_err(|e| format!("cannot load the checkpoint {}: {e}", dir.display()));
    }
    if !dir.is_dir() {
        return Err(format!("no checkpoint folder at {}", dir.display()));
    }
    // The file names, so that a folder of PyTorch pickles is told how to convert them.
    let names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    let shown = dir.display().to_string();
    Checkpoint::from_folder(&shown, &names, |name| std::fs::read(dir.join(name)).ok()).map_err(|e| {
        if e.starts_with(&shown) {
            e
        } else {
            format!("cannot load the checkpoint {shown}: {e}")
        }
    })
}
