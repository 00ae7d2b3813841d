//! Real third-party tus clients against the real `tusk serve`: tuspy (Python)
//! and tus-js-client (Node), as installed by `tests/tus/setup`, driven
//! through the small CLIs in `tests/tus/`, which report every acknowledged
//! chunk as a JSON line.
//!
//! It proves that both clients upload a 64 MiB file in 5 MiB PATCHes through
//! the `/tus/` door, that after `kill -9` of the client the server still
//! holds what it acknowledged (`HEAD` answers an `Upload-Offset` between 0 and
//! the size) and the client, run again with its URL store, resumes from
//! exactly that offset instead of starting over (tuspy also with
//! `Upload-Checksum` on every PATCH), that tus-js-client's `parallelUploads`
//! (partial uploads joined by a final concatenation) completes, and that in
//! every case the result is a file in tusk's JSON API, named after the
//! source, whose download equals the source byte for byte.

use crate::common;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::Server;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const SIZE: u64 = 64 << 20;
const CHUNK: u64 = 5 << 20;
const KILL_AFTER: u64 = 20 << 20;
/// Longest wait for the next line of a client, so a hang fails instead of
/// blocking the suite.
const LINE_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug)]
enum Client {
    Tuspy,
    TusJs,
}

/// `tests/tus` of this repository, with both clients installed in it.
fn tus_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/tus");
    let needed = [
        dir.join(".venv/bin/python"),
        dir.join("node_modules/tus-js-client/package.json"),
    ];
    for path in &needed {
        assert!(
            path.exists(),
            "{} is missing: run tests/tus/setup (scripts/test runs it) to install tuspy and tus-js-client",
            path.display()
        );
    }
    dir
}

/// One run of a client CLI, read line by line.
struct Run {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: PathBuf,
    what: String,
}

impl Run {
    fn spawn(client: Client, endpoint: &str, file: &Path, store: &Path, extra: &[&str]) -> Run {
        let tus = tus_dir();
        let (program, script) = match client {
            Client::Tuspy => (tus.join(".venv/bin/python"), tus.join("tuspy_upload.py")),
            Client::TusJs => (PathBuf::from("node"), tus.join("tusjs_upload.mjs")),
        };
        let stderr = store.with_extension(format!("{:?}.stderr", client).to_lowercase());
        let mut child = Command::new(&program)
            .arg(&script)
            .args(["--endpoint", endpoint, "--chunk-size", &CHUNK.to_string()])
            .arg("--file")
            .arg(file)
            .arg("--store")
            .arg(store)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let what = format!("{client:?} {}", extra.join(" "));
        Run {
            child,
            lines,
            stderr,
            what,
        }
    }

    /// The next JSON line, or `None` once the client closed its stdout.
    async fn next(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(LINE_TIMEOUT, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{}: no line for {LINE_TIMEOUT:?}", self.what))
            .unwrap()?;
        Some(
            serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{}: {e} in {line:?}", self.what)),
        )
    }

    /// The next line, which must be the event named.
    async fn expect(&mut self, event: &str) -> Value {
        match self.next().await {
            Some(v) if v["event"] == event => v,
            other => panic!(
                "{}: wanted {event}, got {other:?}; stderr: {}",
                self.what,
                self.errors()
            ),
        }
    }

    fn errors(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Reads chunk lines up to the done line and checks that the offsets grow
    /// to the file size from `from`; returns the done line's URL.
    async fn finish(mut self, from: u64) -> String {
        let mut last = from;
        let done = loop {
            let ev = self.next().await.unwrap_or_else(|| {
                panic!(
                    "{}: ended without done; stderr: {}",
                    self.what,
                    self.errors()
                )
            });
            match ev["event"].as_str() {
                Some("chunk") => {
                    let offset = ev["offset"].as_u64().unwrap();
                    assert!(offset > last, "{}: offset {offset} after {last}", self.what);
                    last = offset;
                }
                Some("done") => break ev,
                _ => panic!("{}: unexpected {ev}", self.what),
            }
        };
        assert_eq!(
            last, SIZE,
            "{}: done before the whole file was acknowledged",
            self.what
        );
        let status = self.child.wait().await.unwrap();
        assert!(
            status.success(),
            "{}: {status}; stderr: {}",
            self.what,
            self.errors()
        );
        done["url"].as_str().unwrap().to_owned()
    }

    /// Reads chunk lines until at least `at` bytes are acknowledged, then
    /// SIGKILLs the client.
    async fn kill9_after(mut self, at: u64) {
        loop {
            let ev = self.expect("chunk").await;
            if ev["offset"].as_u64().unwrap() >= at {
                break;
            }
        }
        self.child.start_kill().unwrap();
        let status = self.child.wait().await.unwrap();
        assert_eq!(status.signal(), Some(9), "{}: {status}", self.what);
    }
}

/// `size` pseudo-random bytes (xorshift64*, seeded) written to `path`.
fn random_file(path: &Path, size: u64, seed: u64) {
    let mut state = seed | 1;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; 1 << 20];
    let mut left = size as usize;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        let n = left.min(block.len());
        out.write_all(&block[..n]).unwrap();
        left -= n;
    }
    out.flush().unwrap();
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK, "GET {url}");
    r.json().await.unwrap()
}

/// The server's `Upload-Offset` for a tus upload URL.
async fn head_offset(http: &reqwest::Client, url: &str) -> u64 {
    let r = http
        .head(url)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "HEAD {url}: {}", r.status());
    r.headers()["upload-offset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The tus upload at `tus_url` completed into a file named after `source`
/// whose download equals `source`.
async fn assert_stored(http: &reqwest::Client, server: &Server, tus_url: &str, source: &Path) {
    let id = tus_url.trim_end_matches('/').rsplit('/').next().unwrap();
    let v = get_json(http, &server.url(&format!("/api/v1/uploads/{id}"))).await;
    let upload = v.get("upload").unwrap_or(&v);
    let file_id = upload["file_id"]
        .as_str()
        .unwrap_or_else(|| panic!("upload {id} has no file: {v}"));
    let v = get_json(http, &server.url(&format!("/api/v1/files/{file_id}"))).await;
    let file = v.get("file").unwrap_or(&v);
    let name = source.file_name().unwrap().to_str().unwrap();
    assert_eq!(file["name"], name, "{v}");
    assert_eq!(file["size"], SIZE, "{v}");
    let url = server.url(file["url"].as_str().unwrap());
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK, "GET {url}");
    let got = r.bytes().await.unwrap();
    let want = std::fs::read(source).unwrap();
    assert_eq!(got.len(), want.len(), "downloaded length");
    if let Some(at) = got.iter().zip(&want).position(|(a, b)| a != b) {
        panic!("the download differs from the source from byte {at} on");
    }
}

/// Upload, `kill -9` the client after 20 MiB, check the server's offset,
/// resume with the same URL store and check the result.
async fn resumes_after_kill(
    client: Client,
    first: &[&str],
    second: &[&str],
    seed: u64,
    server_args: &[String],
) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir, server_args);
    let http = reqwest::Client::new();
    let file = dir.path().join(format!("{client:?}-resumed.bin"));
    random_file(&file, SIZE, seed);
    let store = dir.path().join("urls.json");
    let endpoint = server.url("/tus/");

    let mut run = Run::spawn(client, &endpoint, &file, &store, first);
    let start = run.expect("start").await;
    assert_eq!(start["offset"], 0, "a new upload starts at 0: {start}");
    let url = start["url"].as_str().unwrap().to_owned();
    run.kill9_after(KILL_AFTER).await;

    let offset = head_offset(&http, &url).await;
    assert!(0 < offset && offset < SIZE, "offset {offset} after kill -9");

    let mut run = Run::spawn(client, &endpoint, &file, &store, second);
    let start = run.expect("start").await;
    assert_eq!(
        start["url"],
        url.as_str(),
        "resumed the same upload: {start}"
    );
    assert_eq!(
        start["offset"], offset,
        "resumed from the server's offset: {start}"
    );
    let done = run.finish(offset).await;
    assert_eq!(done, url);
    assert_eq!(head_offset(&http, &url).await, SIZE);
    assert_stored(&http, &server, &url, &file).await;
}

#[tokio::test]
async fn tuspy_resumes_after_kill() {
    resumes_after_kill(Client::Tuspy, &[], &["--checksum"], 0x7475_7370_7921, &[]).await;
}

/// The same on S3 + PostgreSQL: PATCHes smaller than an S3 part are staged.
#[tokio::test]
async fn tuspy_resumes_after_kill_on_s3() {
    let (args, _) = common::scale_out_args().await;
    resumes_after_kill(Client::Tuspy, &[], &["--checksum"], 0x7475_7370_7933, &args).await;
}

#[tokio::test]
async fn tus_js_client_resumes_after_kill() {
    resumes_after_kill(Client::TusJs, &[], &[], 0x7475_736a_7321, &[]).await;
}

#[tokio::test]
async fn tus_js_client_resumes_after_kill_on_s3() {
    let (args, _) = common::scale_out_args().await;
    resumes_after_kill(Client::TusJs, &[], &[], 0x7475_736a_7333, &args).await;
}

/// A `tusk serve` in `dir` with extra arguments.
fn start(dir: &tempfile::TempDir, args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_with(&dir.path().join("data"), &args, &[])
}

#[tokio::test]
async fn tus_js_client_parallel_uploads() {
    parallel_uploads(&[]).await;
}

/// Concatenation on S3 + PostgreSQL.
#[tokio::test]
async fn tus_js_client_parallel_uploads_on_s3() {
    let (args, _) = common::scale_out_args().await;
    parallel_uploads(&args).await;
}

async fn parallel_uploads(server_args: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir, server_args);
    let http = reqwest::Client::new();
    let file = dir.path().join("parallel.bin");
    random_file(&file, SIZE, 0x7061_7261_6c6c);
    let store = dir.path().join("urls.json");

    let mut run = Run::spawn(
        Client::TusJs,
        &server.url("/tus/"),
        &file,
        &store,
        &["--parallel", "4"],
    );
    run.expect("start").await;
    // The offsets are sums over the partial uploads: they too grow to SIZE.
    let url = run.finish(0).await;
    assert_stored(&http, &server, &url, &file).await;
}
