//! Corpora: the embedded default text and the checks every corpus passes before training.

/// About 1 MB of Shakespeare, compiled in so training needs no files (provenance: data/README.md).
pub const DEFAULT_CORPUS: &str = include_str!("../data/shakespeare.txt");

/// Turns raw bytes into training text, or says in one line why they cannot be.
/// `what` names the source in the message (a path, "the pasted text").
pub fn text_from_bytes(bytes: Vec<u8>, what: &str) -> Result<String, String> {
    if bytes.is_empty() {
        return Err(format!("{what} is empty: give a text file with some writing in it"));
    }
    if bytes.contains(&0) {
        return Err(format!("{what} looks binary (it contains NUL bytes): give a plain text file"));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{what} is not UTF-8 text (invalid byte at offset {}): convert it to UTF-8 first",
            e.utf8_error().valid_up_to()
        )
    })
}
