//! Bounds on `multipart/form-data` bodies: a body without its boundary,
//! endless part headers, an endless field that is not a file, and too
//! many parts are refused as soon as the bound is passed — while the
//! client is still sending — and store nothing. Files stream as before.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{MIB, TestServer};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the bodies sent by [`endless`] are.
const BODY: usize = 64 * MIB;

/// What the server answered and how much of the body had been handed to
/// the connection by then.
struct Answer {
    status: u16,
    body: Value,
    sent: usize,
}

/// Posts a form (boundary `zz`) of `BODY` bytes: `start`, then `fill`
/// for ever; returns the server's answer once it has come.
async fn endless(base: &str, start: &[u8], fill: u8) -> Answer {
    let addr = base.trim_start_matches("http://");
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST /api/v1/files HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: multipart/form-data; boundary=zz\r\nContent-Length: {BODY}\r\n\r\n"
    );
    write.write_all(head.as_bytes()).await.unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let start = start.to_vec();
    let writer = tokio::spawn(async move {
        if write.write_all(&start).await.is_err() {
            return;
        }
        counter.store(start.len(), Ordering::SeqCst);
        let piece = vec![fill; 64 * 1024];
        while counter.load(Ordering::SeqCst) < BODY {
            let n = piece.len().min(BODY - counter.load(Ordering::SeqCst));
            if write.write_all(&piece[..n]).await.is_err() {
                return;
            }
            counter.fetch_add(n, Ordering::SeqCst);
        }
    });
    // The answer: a head, then a body of Content-Length bytes.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let (status, body) = loop {
        let n = read.read(&mut buf).await.unwrap();
        assert!(n > 0, "the connection closed without an answer");
        got.extend_from_slice(&buf[..n]);
        let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
        let status: u16 = head[9..12].parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0);
        if got.len() >= end + 4 + len {
            break (
                status,
                serde_json::from_slice(&got[end + 4..end + 4 + len]).unwrap(),
            );
        }
    };
    let sent = sent.load(Ordering::SeqCst);
    writer.abort();
    Answer { status, body, sent }
}

/// The answer came long before the body was sent: the server read no
/// more than its bound plus what the sockets hold.
fn early(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], code, "{}", answer.body);
    assert!(
        answer.sent < BODY / 2,
        "answered only after {} of {BODY} bytes",
        answer.sent
    );
}

#[tokio::test]
async fn a_body_without_its_boundary_is_refused_at_once() {
    let s = TestServer::start().await;
    let answer = endless(&s.base, b"", b'A').await;
    early(&answer, 400, "invalid_request");
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("boundary"), "{message}");
    assert!(s.all_files().await.is_empty());
}

#[tokio::test]
async fn endless_part_headers_are_refused_at_once() {
    let s = TestServer::start().await;
    let start =
        b"--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nX-Pad: ";
    let answer = endless(&s.base, start, b'A').await;
    early(&answer, 400, "invalid_request");
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("16 KiB"), "{message}");
    assert!(s.all_files().await.is_empty());
}

#[tokio::test]
async fn an_endless_field_is_refused_at_once() {
    let s = TestServer::start().await;
    let start = b"--zz\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n";
    let answer = endless(&s.base, start, b'A').await;
    early(&answer, 413, "request_too_large");
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("note"), "{message}");
    assert!(s.all_files().await.is_empty());
}

#[tokio::test]
async fn too_many_parts_are_refused_and_store_nothing() {
    let s = TestServer::start().await;
    let mut body = b"--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"first.txt\"\r\n\r\nfirst\r\n".to_vec();
    for _ in 0..10_000 {
        body.extend_from_slice(b"--zz\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\nx\r\n");
    }
    body.extend_from_slice(b"--zz--\r\n");
    let r = s
        .http
        .post(s.url("/api/v1/files"))
        .header("content-type", "multipart/form-data; boundary=zz")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "request_too_large");
    assert!(
        s.all_files().await.is_empty(),
        "the first file was taken back"
    );
}

#[tokio::test]
async fn forms_within_the_bounds_still_go_through() {
    let s = TestServer::start().await;
    let large = common::random_bytes(20 * MIB + 3);
    // Some text before the first boundary, a field, a long file.
    let mut body = b"a preamble, which readers ignore\r\n".to_vec();
    body.extend_from_slice(b"--zz\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n");
    body.extend_from_slice(&vec![b'n'; 60 * 1024]);
    body.extend_from_slice(b"\r\n--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"large.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n");
    body.extend_from_slice(&large);
    body.extend_from_slice(b"\r\n--zz--\r\n");
    let r = s
        .http
        .post(s.url("/api/v1/files"))
        .header("content-type", "multipart/form-data; boundary=zz")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let files = s.all_files().await;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["hash"], common::hash(&large));
}
