//! What a load balancer and an operator see: `/healthz` and `/readyz`, and
//! a node that refuses to start, saying why, when its store or catalog
//! cannot work. The S3 and PostgreSQL cases use the servers started by
//! `tests/backends/start` (`TUSK_TEST_S3_*`, `TUSK_TEST_POSTGRES`).

use crate::common;

use std::process::{Command, Output};

use common::Server;
use serde_json::{Value, json};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run scripts/test, or tests/backends/start DIR and source DIR/env"
        )
    })
}

async fn get(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn healthz_and_readyz_answer_and_readyz_names_a_failing_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    assert_eq!(
        get(&server.url("/healthz")).await,
        (200, json!({ "status": "alive" }))
    );
    assert_eq!(
        get(&server.url("/readyz")).await,
        (
            200,
            json!({ "status": "ready", "store": "ok", "catalog": "ok" })
        )
    );
    // The store's folders vanish under the running node (a disk gone).
    std::fs::remove_dir_all(data.join("blobs")).unwrap();
    assert_eq!(
        get(&server.url("/readyz")).await,
        (
            503,
            json!({ "status": "not_ready", "store": "failing", "catalog": "ok" })
        )
    );
    // Alive all the same.
    assert_eq!(get(&server.url("/healthz")).await.0, 200);
}

#[tokio::test]
async fn a_node_on_s3_and_postgres_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!(
        "s3://{}/health-{}",
        env("TUSK_TEST_S3_BUCKET"),
        std::process::id()
    );
    let endpoint = env("TUSK_TEST_S3_ENDPOINT");
    let catalog = env("TUSK_TEST_POSTGRES");
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            "--store",
            &store,
            "--s3-endpoint",
            &endpoint,
            "--catalog",
            &catalog,
        ],
        &[],
    );
    assert_eq!(
        get(&server.url("/readyz")).await,
        (
            200,
            json!({ "status": "ready", "store": "ok", "catalog": "ok" })
        )
    );
    // Neither the data folder nor anything in it was needed.
    assert!(!dir.path().join("data").exists());
}

/// `tusk serve ARGS` expected to refuse to start.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out: Output = Command::new(env!("CARGO_BIN_EXE_tusk"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "started: {stdout}");
    assert!(!stdout.contains("listening"), "it listened: {stdout}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn no_node_starts_without_a_working_store_or_catalog() {
    let bucket = env("TUSK_TEST_S3_BUCKET");
    let endpoint = env("TUSK_TEST_S3_ENDPOINT");
    let store = format!("s3://{bucket}/refused");

    // An S3 endpoint nothing answers on.
    let nowhere = format!("http://127.0.0.1:{}", closed_port());
    let err = refused(&["--store", &store, "--s3-endpoint", &nowhere], &[]);
    assert!(
        err.contains(&format!("cannot use the blob store {store} at {nowhere}")),
        "{err}"
    );

    // Credentials the S3 server does not know.
    let err = refused(
        &["--store", &store, "--s3-endpoint", &endpoint],
        &[("AWS_SECRET_ACCESS_KEY", "not-the-secret")],
    );
    assert!(err.contains("cannot use the blob store"), "{err}");
    assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");

    // A PostgreSQL nothing answers on, with a password that must not show.
    let pg = format!("postgres://tusk:sekrit@127.0.0.1:{}/tusk", closed_port());
    let err = refused(&["--catalog", &pg], &[]);
    assert!(
        err.contains("cannot use the catalog postgres://tusk:***@127.0.0.1"),
        "{err}"
    );
    assert!(!err.contains("sekrit"), "the password shows: {err}");

    // A database that does not exist on a running PostgreSQL.
    let admin = env("TUSK_TEST_POSTGRES");
    let (before_query, _) = admin.split_once('?').unwrap_or((&admin, ""));
    let (server, _) = before_query.rsplit_once('/').unwrap();
    let missing = format!("{server}/no_such_database");
    let err = refused(&["--catalog", &missing], &[]);
    assert!(err.contains("no_such_database"), "{err}");

    // Not an address of any store or catalog: a usage error.
    let out = Command::new(env!("CARGO_BIN_EXE_tusk"))
        .args(["serve", "--store", "ftp://x", "--catalog", "mysql://y"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
