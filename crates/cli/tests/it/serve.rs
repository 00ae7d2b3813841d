//! `tusk serve` as people run it: settings from flags, environment and a
//! config file, usage errors, JSON logs, and a clean stop on SIGTERM.

use crate::common;

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

use common::Server;
use serde_json::{Value, json};

#[tokio::test]
async fn sigterm_stops_cleanly_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let http = reqwest::Client::new();
    let mut server = Server::start(&data_dir);
    let r = http
        .post(server.url("/api/v1/files"))
        .multipart(reqwest::multipart::Form::new().part(
            "f",
            reqwest::multipart::Part::bytes(b"kept".to_vec()).file_name("k.txt"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "tusk exited with {exit}");

    let server = Server::start(&data_dir);
    let files: Value = http
        .get(server.url("/api/v1/files"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(files["files"][0]["name"], "k.txt");
}

#[tokio::test]
async fn settings_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    // Flags name only the data folder; the size limit comes from TUSK_MAX_FILE_SIZE.
    let server = Server::start_with(
        &dir.path().join("data"),
        &[],
        &[("TUSK_MAX_FILE_SIZE", "1MiB")],
    );
    let http = reqwest::Client::new();
    let check = |size: u64| {
        http.post(server.url("/api/v1/uploads"))
            .json(&json!({ "name": "x", "size": size, "hash": format!("sha256-4m:{}", "0".repeat(64)) }))
            .send()
    };
    let r = check(1 << 20).await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let r = check((1 << 20) + 1).await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "file_too_large");
    assert_eq!(body["error"]["max_file_size"], 1 << 20);
}

#[test]
fn usage_errors_exit_2_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [&[&str]; 3] = [
        &["serve", "--max-file-size", "lots"],
        &["serve", "--listen", "not-an-address"],
        &["serve", "--no-such-flag"],
    ];
    for args in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_tusk"))
            .args(args)
            .arg("--data")
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("error:") && err.contains(args[1]),
            "{args:?}: {err}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tusk"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("serve"));
}

#[test]
fn an_unusable_data_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"not a folder").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tusk"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("data folder") || err.contains("blob store"),
        "{err}"
    );
}

#[test]
fn a_second_server_on_the_same_data_folder_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Server::start(&data);
    let out = Command::new(env!("CARGO_BIN_EXE_tusk"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another tusk serve"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    // Once the first is gone (even by kill -9), the folder is free again.
    first.kill9();
    let second = Server::start(&data);
    drop(second);
}

/// A `tusk serve` whose stderr is kept, for tests that read its logs.
struct Logged {
    child: Child,
    base: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Logged {
    /// Starts `tusk serve ARGS` with `env` added and waits for its
    /// "listening on" line.
    fn start(args: &[OsString], env: &[(&str, &str)]) -> Logged {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tusk"))
            .arg("serve")
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tusk");
        // Read stderr all along, so that a full pipe never blocks the server.
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            err.read_to_string(&mut text).unwrap();
            text
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the listening line");
        let base = match line.split_whitespace().find(|w| w.starts_with("http://")) {
            Some(base) => base.to_owned(),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no address in {line:?}; stderr: {}", stderr.join().unwrap());
            }
        };
        Logged {
            child,
            base,
            stderr: Some(stderr),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM; returns how it exited and all it wrote on stderr.
    fn stop(mut self) -> (ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        (exit, stderr)
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every line of `stderr` as a JSON object.
fn json_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

#[tokio::test]
async fn json_logs_name_each_request_without_its_query() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = os(&["--listen", "127.0.0.1:0", "--log-format", "json", "--data"]);
    args.push(dir.path().join("data").into());
    let server = Logged::start(&args, &[]);
    let http = reqwest::Client::new();
    let r = http
        .get(server.url("/healthz?signature=SECRET-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .delete(server.url("/api/v1/files/nope?token=SECRET-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (exit, stderr) = server.stop();
    assert!(exit.success(), "tusk exited with {exit}: {stderr}");

    assert!(
        !stderr.contains("SECRET"),
        "a query string was logged: {stderr}"
    );
    let lines = json_lines(&stderr);
    for line in &lines {
        for field in ["timestamp", "level", "target", "message"] {
            assert!(line.get(field).is_some(), "no {field} in {line}");
        }
    }
    let served = |method: &str, path: &str| {
        lines
            .iter()
            .find(|l| l["message"] == "served" && l["span"]["path"] == path)
            .map(|l| {
                assert_eq!(l["span"]["method"], method, "{l}");
                assert_eq!(l["level"], "INFO", "{l}");
                assert!(l["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{l}");
                l["status"].clone()
            })
            .unwrap_or_else(|| panic!("{method} {path} is not logged: {stderr}"))
    };
    assert_eq!(served("GET", "/healthz"), 200);
    assert_eq!(served("DELETE", "/api/v1/files/nope"), 404);
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("SIGTERM"))),
        "{stderr}"
    );
}

/// Writes `text` as `tusk.toml` in `dir`.
fn config_file(dir: &Path, text: &str) -> OsString {
    let path = dir.join("tusk.toml");
    std::fs::write(&path, text).unwrap();
    path.into()
}

#[tokio::test]
async fn a_config_file_sets_what_flags_and_the_environment_leave() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("from-file");
    let file = config_file(
        dir.path(),
        &format!(
            r#"
listen = "127.0.0.1:0"
data = '{}'
log_format = "json"
max-file-size = "1MiB"
cors-origin = ["https://a.example", "https://b.example"]
"#,
            data.display()
        ),
    );
    let config = file.to_str().unwrap();
    // The file is named by the environment; the size limit is overridden
    // by a flag, the origins by the environment.
    let server = Logged::start(
        &os(&["--max-file-size", "2MiB"]),
        &[
            ("TUSK_CONFIG", config),
            ("TUSK_CORS_ORIGIN", "https://c.example"),
        ],
    );
    let http = reqwest::Client::new();
    let check = |size: u64| {
        http.post(server.url("/api/v1/uploads"))
            .json(&json!({ "name": "x", "size": size, "hash": format!("sha256-4m:{}", "0".repeat(64)) }))
            .send()
    };
    assert_eq!(check(2 << 20).await.unwrap().status(), 201);
    assert_eq!(check((2 << 20) + 1).await.unwrap().status(), 413);
    let allowed = |origin: &'static str| {
        let http = http.clone();
        let url = server.url("/healthz");
        async move {
            let r = http.get(url).header("origin", origin).send().await.unwrap();
            r.headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_owned())
        }
    };
    assert_eq!(
        allowed("https://c.example").await.as_deref(),
        Some("https://c.example")
    );
    assert_eq!(allowed("https://b.example").await, None);
    let (exit, stderr) = server.stop();
    assert!(exit.success(), "tusk exited with {exit}: {stderr}");
    // The data folder and the log format came from the file.
    assert!(data.join("catalog.db").exists());
    let lines = json_lines(&stderr);
    assert!(
        lines.iter().any(|l| l["file"] == config),
        "the file is named in the log: {stderr}"
    );
}

#[test]
fn a_bad_config_file_stops_the_start_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        ("max-file-size = \"lots\"", "max-file-size"),
        ("maximum = 1", "maximum"),
    ] {
        let file = config_file(dir.path(), text);
        let out = Command::new(env!("CARGO_BIN_EXE_tusk"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{text}: {err}");
        assert!(err.contains(file.to_str().unwrap()), "{text}: {err}");
        assert!(out.stdout.is_empty(), "it must not start: {text}");
    }
}
