//! Reading user files: a corpus from a file or a folder of .txt files.

use std::path::Path;

/// The corpus text at `path` (a file, or a folder whose .txt files are joined in sorted order),
/// or the embedded Shakespeare when no path is given.
pub fn read_corpus(path: Option<&Path>) -> Result<(String, String), String> {
    let Some(path) = path else {
        return Ok((kiln::corpus::DEFAULT_CORPUS.to_string(), "embedded Shakespeare".into()));
    };
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read corpus {shown}: {e}"))?;
    let bytes = if meta.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| format!("cannot list {shown}: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "txt") && p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(format!("the folder {shown} holds no .txt files"));
        }
        let mut all = Vec::new();
        for f in &files {
            let mut b = std::fs::read(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
            if !all.is_empty() && !b.is_empty() {
                all.push(b'\n');
            }
            all.append(&mut b);
        }
        all
    } else {
        std::fs::read(path).map_err(|e| format!("cannot read corpus {shown}: {e}"))?
    };
    let text = kiln::corpus::text_from_bytes(bytes, &format!("the corpus {shown}"))?;
    Ok((text, shown))
}
