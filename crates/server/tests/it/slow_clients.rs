//! Slow-drip clients are cut off with 408 on every kind of body: a chunk,
//! a tus PATCH and a JSON request; the upload takes a normal client
//! afterwards.

use crate::common;

use std::time::{Duration, Instant};

use common::tus::{read_head, send_head};
use common::{MIB, TestServer, random_bytes};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(1);

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.body_timeout = TIMEOUT;
        c.min_rate = 64 * 1024;
    })
    .await
}

/// A request head announcing `len` bytes of body.
fn head(server: &TestServer, method: &str, path: &str, len: usize, extra: &[&str]) -> Vec<String> {
    let mut lines = vec![
        format!("{method} {path} HTTP/1.1"),
        format!("Host: {}", server.base.trim_start_matches("http://")),
        format!("Content-Length: {len}"),
    ];
    lines.extend(extra.iter().map(|s| s.to_string()));
    lines
}

/// Reads the 408 and its JSON body; the server closes the connection.
async fn expect_408(conn: &mut TcpStream) {
    let (status, headers) = read_head(conn).await;
    assert_eq!(status, 408, "{headers:?}");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "connection" && v.eq_ignore_ascii_case("close")),
        "{headers:?}"
    );
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).await.unwrap();
    let text = String::from_utf8_lossy(&rest);
    assert!(text.contains("\"request_timeout\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_that_stops_arriving_is_cut_off() {
    let server = server().await;
    let data = random_bytes(4 * MIB);
    let upload = server.start_upload("a.bin", &data).await;
    let id = upload["id"].as_str().unwrap();
    let mut conn = server.connect().await;
    let path = format!("/api/v1/uploads/{id}/chunks/0");
    send_head(&mut conn, &head(&server, "PUT", &path, data.len(), &[])).await;
    conn.write_all(&data[..1000]).await.unwrap();
    let started = Instant::now();
    expect_408(&mut conn).await;
    assert!(started.elapsed() >= TIMEOUT);
    // Nothing acknowledged; a well-behaved client then succeeds.
    let (_, body) = server.get_json(&format!("/api/v1/uploads/{id}")).await;
    assert_eq!(body["upload"]["received"], serde_json::json!([]));
    let (status, body) = server.put_chunk(id, 0, data.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tus_patch_sent_a_drip_at_a_time_is_cut_off() {
    let server = server().await;
    let loc = server.tus_create(MIB as u64).await;
    let mut conn = server.connect().await;
    send_head(
        &mut conn,
        &head(
            &server,
            "PATCH",
            &loc,
            MIB,
            &[
                "Tus-Resumable: 1.0.0",
                "Upload-Offset: 0",
                "Content-Type: application/offset+octet-stream",
            ],
        ),
    )
    .await;
    // 100 bytes every 100 ms: never silent for long, but far below the
    // rate. The server answers while the client is still dripping.
    let (mut read, mut write) = conn.into_split();
    let drip = tokio::spawn(async move {
        for _ in 0..100 {
            if write.write_all(&[7u8; 100]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server let a drip go on for 10 s");
    });
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n") {
        assert_eq!(
            read.read(&mut byte).await.unwrap(),
            1,
            "closed without an answer"
        );
        answer.push(byte[0]);
    }
    let status_line = String::from_utf8(answer).unwrap();
    assert!(status_line.starts_with("HTTP/1.1 408"), "{status_line}");
    drip.abort();
    // What arrived may be kept (tus resumes from there); the upload goes on.
    let r = server.tus_head(&loc).await;
    let offset = common::tus::number(&r, "upload-offset");
    assert!(offset < 10_000, "{offset}");
    let rest = vec![7u8; MIB - offset as usize];
    let r = server.tus_patch(&loc, offset, &rest).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_that_trickles_is_cut_off() {
    let server = server().await;
    let mut conn = server.connect().await;
    send_head(
        &mut conn,
        &head(
            &server,
            "POST",
            "/api/v1/uploads",
            500,
            &["Content-Type: application/json"],
        ),
    )
    .await;
    conn.write_all(b"{\"name\":").await.unwrap();
    expect_408(&mut conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_never_ends_is_dropped() {
    let server = server().await;
    let mut conn = server.connect().await;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    // The server closes the connection (with or without a 408 first).
    conn.read_to_end(&mut rest).await.unwrap();
    assert!(
        started.elapsed() >= TIMEOUT / 2,
        "closed after {:?}",
        started.elapsed()
    );
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}
