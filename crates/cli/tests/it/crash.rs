//! The real `tusk` binary, killed with SIGKILL in the middle of uploads and
//! started again on the same data folder: every acknowledged chunk is still
//! there, no half-written chunk is counted, and the file completes
//! byte-identical.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tusk_core::ContentHash;

use crate::common;

use common::Server;

const MIB: usize = 1 << 20;

fn random_bytes(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ len as u64 ^ std::process::id() as u64;
    for b in &mut v {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    v
}

async fn received(http: &reqwest::Client, server: &Server, id: &str) -> Vec<u64> {
    let body: Value = http
        .get(server.url(&format!("/api/v1/uploads/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["upload"]["received"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

async fn put(
    http: &reqwest::Client,
    server: &Server,
    id: &str,
    index: usize,
    bytes: Vec<u8>,
) -> reqwest::Result<reqwest::Response> {
    http.put(server.url(&format!("/api/v1/uploads/{id}/chunks/{index}")))
        .body(bytes)
        .send()
        .await
}

fn chunk(data: &[u8], index: usize) -> Vec<u8> {
    data[index * 8 * MIB..((index + 1) * 8 * MIB).min(data.len())].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_chunks_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data = random_bytes(72 * MIB + 999); // 10 chunks of 8 MiB
    let http = reqwest::Client::new();
    let hash = ContentHash::of_bytes(&data).to_string();

    let server = Server::start(&data_dir);
    let created: Value = http
        .post(server.url("/api/v1/uploads"))
        .json(&json!({ "name": "crash.bin", "size": data.len(), "hash": hash }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["upload"]["id"].as_str().unwrap().to_owned();
    for i in [0, 1, 2] {
        assert!(
            put(&http, &server, &id, i, chunk(&data, i))
                .await
                .unwrap()
                .status()
                .is_success()
        );
    }

    // Chunk 3 half sent when the server dies: its body stalls after 5 MiB.
    let (mut tx, rx) = futures::channel::mpsc::channel::<std::io::Result<Bytes>>(1);
    let stalled = {
        let (http, url) = (
            http.clone(),
            server.url(&format!("/api/v1/uploads/{id}/chunks/3")),
        );
        tokio::spawn(async move {
            http.put(url)
                .header("content-length", 8 * MIB)
                .body(reqwest::Body::wrap_stream(rx))
                .send()
                .await
        })
    };
    let third = chunk(&data, 3);
    for piece in third[..5 * MIB].chunks(MIB) {
        tx.send(Ok(Bytes::copy_from_slice(piece))).await.unwrap();
    }
    // Wait until the server has written the start of chunk 3 in place.
    wait_for_bytes(&data_dir, 3 * 8 * MIB as u64, &third[..4 * MIB]).await;
    assert!(
        put(&http, &server, &id, 4, chunk(&data, 4))
            .await
            .unwrap()
            .status()
            .is_success()
    );
    server.kill9();
    assert!(
        stalled.await.unwrap().is_err(),
        "the stalled chunk cannot have been acknowledged"
    );
    drop(tx);

    let server = Server::start(&data_dir);
    assert_eq!(
        received(&http, &server, &id).await,
        vec![0, 1, 2, 4],
        "acknowledged chunks only"
    );

    // Now kill it at arbitrary moments while chunks flow four at a time.
    let acked = Arc::new(Mutex::new(vec![0u64, 1, 2, 4]));
    let mut server = server;
    for round in 0..3 {
        let todo: Vec<usize> = (0..10).filter(|i| !received_now(&acked, *i)).collect();
        let (first_ack_tx, mut first_ack) = mpsc::channel::<()>(16);
        let base = server.base.clone();
        let senders = {
            let (http, id, data, acked) = (http.clone(), id.clone(), data.clone(), acked.clone());
            tokio::spawn(async move {
                futures::stream::iter(todo)
                    .map(|i| {
                        let (http, id, base, acked, tx) = (
                            http.clone(),
                            id.clone(),
                            base.clone(),
                            acked.clone(),
                            first_ack_tx.clone(),
                        );
                        let bytes = chunk(&data, i);
                        async move {
                            let r = http
                                .put(format!("{base}/api/v1/uploads/{id}/chunks/{i}"))
                                .body(bytes)
                                .send()
                                .await;
                            if r.is_ok_and(|r| r.status().is_success()) {
                                acked.lock().unwrap().push(i as u64);
                                let _ = tx.send(()).await;
                            }
                        }
                    })
                    .buffer_unordered(4)
                    .collect::<Vec<()>>()
                    .await
            })
        };
        // Kill right after the first acknowledgement of this round.
        let _ = tokio::time::timeout(Duration::from_secs(120), first_ack.recv()).await;
        server.kill9();
        senders.await.unwrap();
        server = Server::start(&data_dir);
        let now = received(&http, &server, &id).await;
        for a in acked.lock().unwrap().iter() {
            assert!(
                now.contains(a),
                "round {round}: acknowledged chunk {a} lost; server has {now:?}"
            );
        }
        *acked.lock().unwrap() = now;
    }

    // Finish: only what is missing, then the bytes must be identical.
    for i in (0..10).filter(|i| !received_now(&acked, *i)) {
        assert!(
            put(&http, &server, &id, i, chunk(&data, i))
                .await
                .unwrap()
                .status()
                .is_success()
        );
    }
    let done: Value = http
        .post(server.url(&format!("/api/v1/uploads/{id}/complete")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = done["file"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{done}"));
    let got = http
        .get(server.url(url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(got == data, "the completed file differs from what was sent");
}

fn received_now(acked: &Arc<Mutex<Vec<u64>>>, i: usize) -> bool {
    acked.lock().unwrap().contains(&(i as u64))
}

/// Polls the one part file until `want` is at `offset` (written, not
/// necessarily durable), or fails after a minute.
async fn wait_for_bytes(data_dir: &Path, offset: u64, want: &[u8]) {
    use std::os::unix::fs::FileExt;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut buf = vec![0u8; want.len()];
    loop {
        let part = std::fs::read_dir(data_dir.join("parts"))
            .unwrap()
            .flatten()
            .next()
            .map(|e| e.path());
        if let Some(part) = part
            && std::fs::File::open(&part)
                .and_then(|f| f.read_exact_at(&mut buf, offset))
                .is_ok()
            && buf == want
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never wrote the stalled chunk's start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A tus upload: one PATCH acknowledged, the next one cut off by `kill -9`
/// after the server wrote part of it. After a restart the offset is exactly
/// the acknowledged one (bytes of an unfinished PATCH were never counted,
/// though some reached the disk), and resuming there completes the file
/// byte-identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tus_upload_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data = random_bytes(40 * MIB + 3);
    let http = reqwest::Client::new();
    let tus = |req: reqwest::RequestBuilder| req.header("tus-resumable", "1.0.0");
    let patch = |server: &Server, path: &str, offset: usize| {
        tus(http.patch(server.url(path)))
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset)
    };
    let offset_of = async |server: &Server, path: &str| -> usize {
        let r = tus(http.head(server.url(path))).send().await.unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        r.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };

    let server = Server::start(&data_dir);
    let r = tus(http.post(server.url("/tus/")))
        .header("upload-length", data.len())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let path = r.headers()["location"].to_str().unwrap().to_owned();
    // Acknowledged: an unaligned amount, so the next PATCH starts mid-block.
    let acked = 13 * MIB + 1;
    let r = patch(&server, &path, 0)
        .body(data[..acked].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NO_CONTENT);

    // The next PATCH stalls after 3 MiB; the server dies with it open.
    let (mut tx, rx) = futures::channel::mpsc::channel::<std::io::Result<Bytes>>(1);
    let stalled = tokio::spawn(
        patch(&server, &path, acked)
            .header("content-length", data.len() - acked)
            .body(reqwest::Body::wrap_stream(rx))
            .send(),
    );
    for piece in data[acked..acked + 3 * MIB].chunks(MIB) {
        tx.send(Ok(Bytes::copy_from_slice(piece))).await.unwrap();
    }
    wait_for_bytes(&data_dir, acked as u64, &data[acked..acked + 2 * MIB]).await;
    server.kill9();
    assert!(stalled.await.unwrap().is_err(), "never acknowledged");
    drop(tx);

    let server = Server::start(&data_dir);
    assert_eq!(offset_of(&server, &path).await, acked);
    let r = patch(&server, &path, acked)
        .body(data[acked..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NO_CONTENT);
    let id = path.rsplit('/').next().unwrap();
    let upload: Value = http
        .get(server.url(&format!("/api/v1/uploads/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file_id = upload["upload"]["file_id"].as_str().unwrap();
    let file: Value = http
        .get(server.url(&format!("/api/v1/files/{file_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        file["file"]["hash"],
        ContentHash::of_bytes(&data).to_string()
    );
    let got = http
        .get(server.url(file["file"]["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(got == data, "the download differs from what was sent");
}
