//! `tusk token` and the client's `--token`, against the real binary: a
//! server without tokens refuses to listen beyond loopback; a token opens
//! it to its owner only; revoking closes it again; and the client proves
//! possession of content another owner stored.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::Server;
use serde_json::Value;

const MIB: usize = 1 << 20;

fn tusk(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tusk"))
        .args(args)
        .env("TUSK_CACHE_DIR", cache)
        .env_remove("TUSK_SERVER")
        .env_remove("TUSK_TOKEN")
        .output()
        .expect("run tusk")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "tusk failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn create_token(cache: &Path, data: &Path, name: &str) -> String {
    let out = tusk(
        cache,
        &[
            "token",
            "create",
            "--name",
            name,
            "--data",
            data.to_str().unwrap(),
        ],
    );
    let token = stdout(&out).trim().to_owned();
    assert!(token.starts_with("tusk_") && token.len() == 69, "{token:?}");
    token
}

fn random_file(path: &Path, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::fill(&mut data[..]);
    std::fs::write(path, &data).unwrap();
    data
}

#[test]
fn an_open_server_refuses_to_listen_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = tusk(
        dir.path(),
        &[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--data",
            data.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing"), "{stderr}");
    assert!(stderr.contains("--public-uploads"), "{stderr}");
    assert!(out.stdout.is_empty(), "it never listened");
}

#[test]
fn tokens_open_the_server_to_their_owner_until_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cache = dir.path().join("cache");
    let server = Server::start(&data);
    // Created beside the running server.
    let ann = create_token(&cache, &data, "ann");
    let bob = create_token(&cache, &data, "bob");

    let file = dir.path().join("a.bin");
    let content = random_file(&file, 3 * MIB);
    let base = server.base.as_str();
    let out = tusk(
        &cache,
        &["upload", file.to_str().unwrap(), "--json", "--server", base],
    );
    assert_eq!(out.status.code(), Some(1), "no token: refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let up = stdout(&tusk(
        &cache,
        &[
            "upload",
            file.to_str().unwrap(),
            "--json",
            "--server",
            base,
            "--token",
            &ann,
        ],
    ));
    let up: Value = serde_json::from_str(up.lines().next().unwrap()).unwrap();
    assert_eq!(up["status"], "uploaded");
    let id = up["id"].as_str().unwrap();

    // Ann lists and downloads it; Bob sees nothing and cannot fetch it.
    let ls = stdout(&tusk(
        &cache,
        &["ls", "--json", "--server", base, "--token", &ann],
    ));
    assert_eq!(ls.lines().count(), 1);
    let ls = stdout(&tusk(
        &cache,
        &["ls", "--json", "--server", base, "--token", &bob],
    ));
    assert_eq!(ls.lines().count(), 0);
    let back = dir.path().join("back.bin");
    let out = tusk(
        &cache,
        &[
            "download",
            id,
            "-o",
            back.to_str().unwrap(),
            "--server",
            base,
            "--token",
            &bob,
        ],
    );
    assert!(!out.status.success());
    stdout(&tusk(
        &cache,
        &[
            "download",
            id,
            "-o",
            back.to_str().unwrap(),
            "--server",
            base,
            "--token",
            &ann,
        ],
    ));
    assert_eq!(std::fs::read(&back).unwrap(), content);

    // Listed, then revoked: Ann is shut out at once.
    let listed = stdout(&tusk(
        &cache,
        &["token", "list", "--json", "--data", data.to_str().unwrap()],
    ));
    let owners: Vec<String> = listed
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["owner"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(owners, ["ann", "bob"]);
    stdout(&tusk(
        &cache,
        &["token", "revoke", "ann", "--data", data.to_str().unwrap()],
    ));
    let out = tusk(&cache, &["ls", "--server", base, "--token", &ann]);
    assert_eq!(out.status.code(), Some(1));
    let out = tusk(
        &cache,
        &[
            "token",
            "revoke",
            "nobody",
            "--data",
            data.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "nothing to revoke is an error");
}

#[test]
fn the_client_proves_possession_of_content_another_owner_stored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let ann = create_token(&dir.path().join("c0"), &data, "ann");
    let bob = create_token(&dir.path().join("c0"), &data, "bob");
    let file = dir.path().join("big.bin");
    random_file(&file, 20 * MIB + 5);
    let base = server.base.as_str();
    let up = |cache: &str, token: &str| -> Value {
        let out = stdout(&tusk(
            &dir.path().join(cache),
            &[
                "upload",
                file.to_str().unwrap(),
                "--json",
                "--server",
                base,
                "--token",
                token,
            ],
        ));
        serde_json::from_str(out.lines().next().unwrap()).unwrap()
    };
    let first = up("c1", &ann);
    assert_eq!(first["status"], "uploaded");
    let second = up("c2", &bob);
    assert_eq!(second["status"], "instant", "{second}");
    assert_eq!(second["bytes_sent"], 0);
    assert_ne!(second["id"], first["id"]);
}
