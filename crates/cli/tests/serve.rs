//! `tusk serve` as people run it: settings from flags and environment,
//! usage errors, and a clean stop on SIGTERM.

mod common;

use std::process::Command;

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
