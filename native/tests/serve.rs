//! `kiln serve` against hostile clients: it listens on 127.0.0.1, serves only the page's own files
//! (no `.git/`, `runs/`, `target/`, sources, or symlinks out), answers every file with `nosniff`
//! and a Content-Security-Policy without remote scripts, cuts off a silent or slow client after
//! its timeout while serving others, refuses an oversized request, and caps its connections.
//! No GPU needed: the server reads files only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `kiln serve` on a scratch folder; killed on drop.
struct Server {
    child: Child,
    addr: String,
    root: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A folder laid out like the repository, with things that must never be served beside the page.
fn start(name: &str, extra: &[&str]) -> Server {
    let root = std::env::temp_dir().join(format!("kiln-serve-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    write(&root, "index.html", "<!doctype html><title>page</title>");
    write(&root, "web/app.js", "console.log('app');");
    write(&root, "web/pkg/kiln_web_bg.wasm", "\0asm");
    write(&root, "tasks/genre/test.jsonl", "{}\n");
    write(&root, "web/src/lib.rs", "// source");
    write(&root, ".git/config", "[core]");
    write(&root, "runs/a/model.safetensors", "weights");
    write(&root, "target/release/kiln", "binary");
    write(&root, "secret.txt", "secret");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("../secret.txt", root.join("web/leak.js")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("web/passwd.js")).unwrap();
        std::os::unix::fs::symlink("app.js", root.join("web/alias.js")).unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["serve", "--port", "0", "--dir"])
        .arg(&root)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kiln runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().trim_end_matches('/').to_string();
    assert!(addr.starts_with("127.0.0.1:"), "listens on loopback by default: {line}");
    Server { child, addr, root }
}

/// Sends `request` and reads the whole answer (the server closes each connection).
fn exchange(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get(addr: &str, path: &str) -> String {
    exchange(addr, format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
}

fn status(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

#[test]
fn serves_the_page_and_nothing_else() {
    let server = start("files", &[]);
    let a = &server.addr;
    for ok in
        ["/", "/index.html", "/web/app.js", "/web/pkg/kiln_web_bg.wasm", "/tasks/genre/test.jsonl", "/web/alias.js"]
    {
        let answer = get(a, ok);
        assert_eq!(status(&answer), "HTTP/1.1 200 OK", "{ok}");
        assert!(answer.contains("X-Content-Type-Options: nosniff\r\n"), "{ok}: {answer}");
        let csp = answer.lines().find(|l| l.starts_with("Content-Security-Policy: ")).expect("a CSP");
        assert!(csp.contains("script-src 'self' 'wasm-unsafe-eval';"), "{csp}");
        assert!(!csp.contains("http") && !csp.contains('*') && !csp.contains("unsafe-inline"), "{csp}");
    }
    assert!(get(a, "/web/app.js").contains("Content-Type: text/javascript"));
    for no in [
        "/secret.txt",
        "/.git/config",
        "/runs/a/model.safetensors",
        "/target/release/kiln",
        "/web/src/lib.rs",
        "/web/leak.js",
        "/web/passwd.js",
        "/web/../secret.txt",
        "/web/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "//etc/passwd",
        "/web/",
        "/tasks/",
    ] {
        let answer = get(a, no);
        assert_eq!(status(&answer), "HTTP/1.1 404 Not Found", "{no}: {answer}");
        assert!(!answer.contains("secret") && !answer.contains("root:"), "{no} leaked: {answer}");
    }
    assert_eq!(status(&exchange(a, b"POST / HTTP/1.1\r\n\r\n")), "HTTP/1.1 405 Method Not Allowed");
    let head = exchange(a, b"HEAD /web/app.js HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK") && !head.contains("console.log"), "{head}");
}

#[test]
fn a_huge_request_is_refused() {
    let server = start("huge", &[]);
    let mut request = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..4000 {
        request.extend(format!("X-Filler-{i}: {}\r\n", "y".repeat(30)).as_bytes());
    }
    request.extend(b"\r\n");
    assert_eq!(status(&exchange(&server.addr, &request)), "HTTP/1.1 431 Request Header Fields Too Large");
    assert_eq!(status(&get(&server.addr, "/")), "HTTP/1.1 200 OK", "still serving");
}

#[test]
fn slow_and_silent_clients_are_cut_off_and_others_are_served_meanwhile() {
    let server = start("slow", &["--timeout", "2"]);
    let start = Instant::now();
    let mut silent = TcpStream::connect(&server.addr).unwrap();
    // A client that sends a byte a second never finishes within the deadline for the whole request.
    let mut dribbling = TcpStream::connect(&server.addr).unwrap();
    let dribble = std::thread::spawn(move || {
        for b in b"GET / HTTP/1.1\r\nHost: x\r\n" {
            if dribbling.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let mut out = Vec::new();
        let _ = dribbling.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    assert_eq!(status(&get(&server.addr, "/")), "HTTP/1.1 200 OK", "another client is served meanwhile");
    silent.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut out = Vec::new();
    let _ = silent.read_to_end(&mut out);
    let waited = start.elapsed();
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&out));
    assert!(waited < Duration::from_secs(10), "the silent client was held {waited:?}");
    let answer = dribble.join().unwrap();
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "the dribbling client got: {answer}");
    assert!(start.elapsed() < Duration::from_secs(12), "the dribbling client was held {:?}", start.elapsed());
}

#[test]
fn connections_beyond_the_cap_are_turned_away_at_once() {
    let server = start("cap", &["--max-connections", "2", "--timeout", "3"]);
    let holders: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&server.addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300)); // both accepted and waiting for a request
    let t = Instant::now();
    assert_eq!(status(&get(&server.addr, "/")), "HTTP/1.1 503 Service Unavailable");
    assert!(t.elapsed() < Duration::from_secs(2), "turned away at once, not after {:?}", t.elapsed());
    drop(holders);
    // Once the held connections end (closed here, or timed out), the server serves again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if status(&get(&server.addr, "/")) == "HTTP/1.1 200 OK" {
            break;
        }
        assert!(Instant::now() < deadline, "never served again after the cap");
        std::thread::sleep(Duration::from_millis(200));
    }
}
