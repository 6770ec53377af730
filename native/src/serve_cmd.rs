//! `kiln serve`: serves the web page for the browser build, on 127.0.0.1 unless `--bind` says
//! otherwise.
//!
//! A small static file server on std's TcpListener, written to be safe to leave running:
//! - only the page's own files are served, by an allowlist (`served`): index.html, the page's
//!   scripts and style in web/, the built package in web/pkg/, the built-in tasks' JSON lines;
//!   never `.git/`, `runs/`, `target/` or sources, and no symlink that leads out of the allowlist;
//! - a request must arrive whole (at most `MAX_HEAD` bytes) within `--timeout` seconds, so a silent
//!   or slow client cannot hold a thread; at most `--max-connections` are served at once (the
//!   rest get 503 at once);
//! - GET and HEAD only, no directory listings; every answer says `nosniff` and carries a
//!   Content-Security-Policy that allows no remote script (`CSP`).
//!
//! No HTTP crate: what is needed is this much, and each line of it is tested.

use crate::args::ServeArgs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most a request line and its headers may take; the page's requests need under 2 KiB.
const MAX_HEAD: u64 = 16 * 1024;

/// Scripts, styles, workers, fetches and WebAssembly from this origin only; nothing inline.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

pub fn run(a: ServeArgs) -> Result<(), String> {
    let root = std::fs::canonicalize(&a.dir).map_err(|e| format!("cannot serve {}: {e}", a.dir.display()))?;
    if !root.join("index.html").is_file() {
        return Err(format!(
            "{} has no index.html: run kiln serve from the repository root, or pass --dir",
            root.display()
        ));
    }
    if a.max_connections == 0 || a.timeout == 0 {
        return Err("--max-connections and --timeout must be at least 1".into());
    }
    if !root.join("web/pkg/kiln_web_bg.wasm").is_file() {
        eprintln!("kiln: warning: web/pkg is not built yet: run bash scripts/build-web.sh");
    }
    let listener =
        TcpListener::bind((a.bind, a.port)).map_err(|e| format!("cannot listen on {}:{}: {e}", a.bind, a.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    if !a.bind.is_loopback() {
        eprintln!("kiln: warning: serving on {} makes the page reachable from other machines", a.bind);
    }
    // The exact line tests wait for.
    println!("serving {} on http://{addr}/", root.display());
    let active = Arc::new(AtomicUsize::new(0));
    let timeout = Duration::from_secs(a.timeout);
    for mut stream in listener.incoming().flatten() {
        if active.fetch_add(1, Ordering::SeqCst) >= a.max_connections {
            active.fetch_sub(1, Ordering::SeqCst);
            // Refused without reading the request; a short write timeout, so a client that does
            // not read cannot stall the accepting loop either.
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = respond(&mut stream, "503 Service Unavailable", "text/plain", b"busy: try again\n", true);
            continue;
        }
        let (root, active) = (root.clone(), active.clone());
        std::thread::spawn(move || {
            let _ = handle(stream, &root, timeout);
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

/// Reads from a socket until a deadline for the whole request, not per read: a client sending a
/// byte at a time cannot stretch it.
struct Deadline {
    stream: TcpStream,
    until: Instant,
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

fn handle(mut stream: TcpStream, root: &Path, timeout: Duration) -> std::io::Result<()> {
    stream.set_write_timeout(Some(timeout))?;
    let source = Deadline { stream: stream.try_clone()?, until: Instant::now() + timeout };
    let mut reader = BufReader::new(source.take(MAX_HEAD));
    let mut request = String::new();
    let mut complete = false;
    let mut line = String::new();
    let mut first = true;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) if !line.ends_with('\n') => break, // cut off by MAX_HEAD
            Ok(_) if line == "\r\n" || line == "\n" => {
                complete = true;
                break;
            }
            Ok(_) if first => request = std::mem::take(&mut line),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
                return respond(&mut stream, "408 Request Timeout", "text/plain", b"request too slow\n", true);
            }
            Err(_) => return Ok(()), // not text, or the client went away
        }
        first = false;
    }
    if !complete {
        if reader.get_ref().limit() == 0 {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"request too large\n",
                true,
            );
        }
        return Ok(()); // the client closed before finishing its request
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    if method != "GET" && method != "HEAD" {
        return respond(&mut stream, "405 Method Not Allowed", "text/plain", b"GET only\n", true);
    }
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let Some(file) = resolve(root, path) else {
        return respond(&mut stream, "404 Not Found", "text/plain", b"not found\n", true);
    };
    match std::fs::read(&file) {
        Ok(body) => respond(&mut stream, "200 OK", mime(&file), &body, method == "GET"),
        Err(_) => respond(&mut stream, "404 Not Found", "text/plain", b"not found\n", true),
    }
}

/// Whether a path relative to the root is one of the page's own files.
fn served(rel: &Path) -> bool {
    let parts: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
    if parts.len() != rel.iter().count() || parts.iter().any(|p| p.starts_with('.')) {
        return false; // not UTF-8, or hidden
    }
    let ext = |name: &str, allowed: &[&str]| {
        Path::new(name).extension().and_then(|e| e.to_str()).is_some_and(|e| allowed.contains(&e))
    };
    match parts.as_slice() {
        ["index.html"] => true,
        ["web", name] => ext(name, &["js", "css"]),
        ["web", "pkg", name] => ext(name, &["js", "wasm"]),
        ["tasks", _, name] => ext(name, &["jsonl"]),
        _ => false,
    }
}

/// The file a URL path names inside `root`, if it is one of the page's own files there, after
/// following any symlinks (a link must lead to another served file of the same root).
fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let rel = url_path.trim_start_matches('/');
    let rel = Path::new(if rel.is_empty() { "index.html" } else { rel });
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) || !served(rel) {
        return None;
    }
    let real = std::fs::canonicalize(root.join(rel)).ok()?;
    let real_rel = real.strip_prefix(root).ok()?;
    (served(real_rel) && real.is_file()).then_some(real)
}

fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "jsonl" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &[u8], send_body: bool) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\n\
         X-Content-Type-Options: nosniff\r\nContent-Security-Policy: {CSP}\r\nReferrer-Policy: no-referrer\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )?;
    if send_body {
        stream.write_all(body)?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pages_own_files_are_served() {
        for ok in ["index.html", "web/app.js", "web/style.css", "web/pkg/kiln_web_bg.wasm", "tasks/genre/test.jsonl"] {
            assert!(served(Path::new(ok)), "{ok}");
        }
        for no in [
            "Cargo.toml",
            ".git/config",
            "web/.hidden.js",
            "web/Cargo.toml",
            "web/src/lib.rs",
            "web/pkg/sub/x.js",
            "runs/a/model.safetensors",
            "target/release/kiln",
            "tasks/README.md",
            "tasks/genre/../../Cargo.toml",
        ] {
            assert!(!served(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn paths_stay_inside_the_root() {
        let root = std::env::temp_dir().join(format!("kiln-serve-{}", std::process::id()));
        std::fs::create_dir_all(root.join("web")).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        std::fs::write(root.join("index.html"), "x").unwrap();
        std::fs::write(root.join("web/app.js"), "x").unwrap();
        assert_eq!(resolve(&root, "/"), Some(root.join("index.html")));
        assert_eq!(resolve(&root, "/web/app.js"), Some(root.join("web/app.js")));
        assert_eq!(resolve(&root, "/../etc/passwd"), None);
        assert_eq!(resolve(&root, "/web/../../x"), None);
        assert_eq!(resolve(&root, "/web/missing.js"), None);
        assert_eq!(mime(Path::new("a.wasm")), "application/wasm");
    }
}
