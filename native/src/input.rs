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

/// `PRESET-YYYYMMDD-HHMMSS` in UTC, for a default run folder.
pub fn run_folder_name(preset: &str) -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{preset}-{y:04}{m:02}{d:02}-{:02}{:02}{:02}", rem / 3600, rem / 60 % 60, rem % 60)
}

/// A task file's examples; a bad line is named by its number.
pub fn read_task(path: &Path) -> Result<Vec<kiln::task::Example>, String> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the task file {shown}: {e}"))?;
    let text = kiln::corpus::text_from_bytes(bytes, &format!("the task file {shown}"))?;
    kiln::task::parse_examples(&text, &shown)
}
