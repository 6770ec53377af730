//! Checkpoint folders on disk (and packed `.kiln` files): atomic writes, one-line errors on reads.
//!
//! Each file is written under a temporary name and renamed into place, `training_state.json`
//! last, so a crash mid-write leaves the previous checkpoint's files whole.

use kiln::checkpoint::Checkpoint;
use std::io::Write;
use std::path::Path;

pub fn save(dir: &Path, ckpt: &Checkpoint) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let files = ckpt.to_files();
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

/// Loads a checkpoint folder (Kiln's, or any Hugging Face GPT-2 one), or a packed `.kiln` file
/// (the browser's download).
pub fn load(dir: &Path) -> Result<Checkpoint, String> {
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
