//! Checkpoint folders on disk (and packed `.kiln` files): writes that switch all files at once,
//! one-line errors on reads.
//!
//! A checkpoint is several files (weights, optimizer state, training state, config, tokenizer)
//! that must change together. Each new file is written and synced under a temporary name; then a
//! journal naming them is written and synced: from that moment the new checkpoint is complete on
//! disk. The files are renamed into place and the journal removed. A crash before the journal
//! leaves the previous checkpoint whole (the next writer drops the temporary files); a crash after
//! it is finished by the next writer (`recover`, roll forward), and readers meanwhile read the
//! journal's files (`read_current`). So at any moment the folder holds one whole checkpoint, and a
//! crash costs at most the steps since the last one.

use kiln::checkpoint::Checkpoint;
use kiln::lora::LoraRun;
use std::io::Write;
use std::path::Path;

pub fn save(dir: &Path, ckpt: &Checkpoint) -> Result<(), String> {
    save_files(dir, ckpt.to_files())
}

/// The journal: the names of a complete new checkpoint's files, one per line, while they are
/// renamed into place.
const JOURNAL: &str = ".checkpoint-commit";

fn tmp_name(name: &str) -> String {
    format!(".{name}.tmp")
}

/// Writes `files` (name, bytes) into `dir` as `save` does: all written and synced, the journal,
/// then all renamed.
pub fn save_files(dir: &Path, files: Vec<(&'static str, Vec<u8>)>) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    recover(dir)?;
    let write = |path: &Path, bytes: &[u8]| {
        let mut f = std::fs::File::create(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    for (name, bytes) in &files {
        let tmp = dir.join(tmp_name(name));
        write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        test_pause();
    }
    let names: String = files.iter().map(|(n, _)| format!("{n}\n")).collect();
    write(&dir.join(JOURNAL), names.as_bytes()).map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
    sync_dir(dir);
    test_pause();
    // The new checkpoint is complete on disk: switch to it.
    finish(dir, files.iter().map(|(n, _)| *n))
}

/// Renames the journal's files into place, then removes the journal.
fn finish<'a>(dir: &Path, names: impl Iterator<Item = &'a str>) -> Result<(), String> {
    for name in names {
        let tmp = dir.join(tmp_name(name));
        if tmp.exists() {
            std::fs::rename(&tmp, dir.join(name))
                .map_err(|e| format!("cannot finish writing {name} in {}: {e}", dir.display()))?;
            test_pause();
        }
    }
    sync_dir(dir);
    std::fs::remove_file(dir.join(JOURNAL))
        .map_err(|e| format!("cannot finish the checkpoint in {}: {e}", dir.display()))?;
    sync_dir(dir);
    Ok(())
}

/// The names a journal lists, refusing any that is not a plain file name (a folder from
/// elsewhere must not make a rename reach outside it).
fn journal_names(dir: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(dir.join(JOURNAL)).ok()?;
    let plain = |n: &&str| !n.is_empty() && Path::new(n).file_name().is_some_and(|f| f == *n) && !n.starts_with('.');
    Some(text.lines().filter(plain).map(str::to_string).collect())
}

/// Brings a run folder to one whole checkpoint after a crash: finishes a write whose journal
/// is there, and drops the temporary files of one that never got that far. For writers (a
/// resumed run, a new checkpoint); readers use `read_current` and change nothing.
pub fn recover(dir: &Path) -> Result<(), String> {
    if let Some(names) = journal_names(dir) {
        finish(dir, names.iter().map(String::as_str))?;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for name in entries.filter_map(|e| e.ok()?.file_name().into_string().ok()) {
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(dir.join(&name));
        }
    }
    Ok(())
}

/// A file of a checkpoint folder as its newest whole checkpoint has it: the journal's
/// temporary file while a switch is under way, else the file itself.
pub fn read_current(dir: &Path, name: &str) -> Option<Vec<u8>> {
    if journal_names(dir).is_some_and(|names| names.iter().any(|n| n == name)) {
        if let Ok(bytes) = std::fs::read(dir.join(tmp_name(name))) {
            return Some(bytes);
        }
    }
    std::fs::read(dir.join(name)).ok()
}

/// For the crash test (native/tests/crash.rs): `KILN_TEST_CHECKPOINT_PAUSE_MS` stretches each
/// stage of a checkpoint write, so that kills at random moments land in every stage of it.
fn test_pause() {
    static PAUSE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let ms = *PAUSE
        .get_or_init(|| std::env::var("KILN_TEST_CHECKPOINT_PAUSE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0));
    if ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// Makes renames and removals in `dir` durable (where the platform can sync a folder).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Whether `dir` holds LoRA adapters rather than a whole model.
pub fn is_adapter_folder(dir: &Path) -> bool {
    dir.join(kiln::lora::ADAPTER_CONFIG).is_file() && !dir.join(kiln::checkpoint::MODEL).exists()
}

/// A LoRA run folder (or PEFT adapters beside a config.json and tokenizer.json).
pub fn load_lora_run(dir: &Path) -> Result<LoraRun, String> {
    LoraRun::from_files(|name| read_current(dir, name))
        .map_err(|e| format!("cannot load the adapters in {}: {e}", dir.display()))
}

/// The base model with the adapters in `adapters` (PEFT's two files) merged into its weights.
pub fn load_merged(base: &Path, adapters: &Path) -> Result<Checkpoint, String> {
    let mut ckpt = load(base)?;
    let (lora, tensors) = kiln::lora::read_adapter_files(&ckpt.cfg, |name| read_current(adapters, name))
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
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.extend(journal_names(dir).unwrap_or_default());
    let shown = dir.display().to_string();
    Checkpoint::from_folder(&shown, &names, |name| read_current(dir, name)).map_err(|e| {
        if e.starts_with(&shown) {
            e
        } else {
            format!("cannot load the checkpoint {shown}: {e}")
        }
    })
}
