//! The whole upload flow over real HTTP: new uploads, chunks in any order
//! and in parallel, resume, instant upload, verification, dedup, forms.

use crate::common;

use std::time::Duration;

use common::{MIB, TestServer, hash, hex, random_bytes};
use futures::StreamExt;
use md5::Md5;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// The same hex digest with its first digit changed.
fn flip_first_digit(hex: &str) -> String {
    let first = if hex.starts_with('0') { "1" } else { "0" };
    format!("{first}{}", &hex[1..])
}

fn chunk_of(data: &[u8], upload: &Value, index: usize) -> Vec<u8> {
    let cs = upload["chunk_size"].as_u64().unwrap() as usize;
    data[index * cs..((index + 1) * cs).min(data.len())].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_out_of_order_and_in_parallel() {
    let s = TestServer::start().await;
    let data = random_bytes(30 * MIB + 5);
    let upload = s.start_upload("videos/holiday.mp4", &data).await;
    assert_eq!(upload["chunk_size"], 8 * MIB);
    assert_eq!(upload["chunk_count"], 4);
    assert_eq!(upload["received"], json!([]));
    let uid = id(&upload);

    for (index, expect) in [(3, json!([3])), (1, json!([1, 3]))] {
        let (status, body) = s
            .put_chunk(&uid, index, chunk_of(&data, &upload, index as usize))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["upload"]["received"], expect);
    }
    let (a, b) = tokio::join!(
        s.put_chunk(&uid, 2, chunk_of(&data, &upload, 2)),
        s.put_chunk(&uid, 0, chunk_of(&data, &upload, 0)),
    );
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    let (_, shown) = s.get_json(&format!("/api/v1/uploads/{uid}")).await;
    assert_eq!(shown["upload"]["received"], json!([0, 1, 2, 3]));

    let (status, body) = s.complete(&uid).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let file = &body["file"];
    assert_eq!(file["name"], "videos/holiday.mp4");
    assert_eq!(file["size"], data.len());
    assert_eq!(file["hash"], hash(&data));
    assert_eq!(file["mime"], "video/mp4");
    assert_eq!(file["url"], format!("/files/{}/holiday.mp4", id(file)));
    assert!(s.download(file).await == data, "downloaded bytes differ");
    assert_eq!(s.all_files().await.len(), 1);
    assert_eq!((s.blob_count(), s.part_count()), (1, 0));

    let (_, shown) = s.get_json(&format!("/api/v1/uploads/{uid}")).await;
    assert_eq!(shown["upload"]["file_id"], file["id"]);
    // Completing again returns the same file; chunks re-sent now change nothing.
    let (status, again) = s.complete(&uid).await;
    assert_eq!((status, id(&again["file"])), (StatusCode::OK, id(file)));
    let (status, _) = s.put_chunk(&uid, 0, chunk_of(&data, &upload, 0)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn an_unfinished_upload_is_resumed() {
    let s = TestServer::start().await;
    let data = random_bytes(20 * MIB);
    let upload = s.start_upload("big.iso", &data).await;
    let uid = id(&upload);
    s.put_chunk(&uid, 1, chunk_of(&data, &upload, 1)).await;

    let (status, body) = s
        .create(&json!({ "name": "big.iso", "size": data.len(), "hash": hash(&data) }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "uploading");
    assert_eq!(body["upload"]["id"], uid.as_str());
    assert_eq!(body["upload"]["received"], json!([1]));

    // The same content under another name is another file: a new upload.
    let (status, other) = s
        .create(&json!({ "name": "copy.iso", "size": data.len(), "hash": hash(&data) }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    assert_ne!(other["upload"]["id"], uid.as_str());

    // Only the missing chunks are needed to finish.
    for i in [0, 2] {
        assert_eq!(
            s.put_chunk(&uid, i, chunk_of(&data, &upload, i as usize))
                .await
                .0,
            StatusCode::OK
        );
    }
    let (status, body) = s.complete(&uid).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(s.download(&body["file"]).await == data);
}

#[tokio::test]
async fn known_content_is_an_instant_upload() {
    let s = TestServer::start().await;
    let data = random_bytes(9 * MIB);
    let first = s.upload("a.bin", &data).await;

    let (status, body) = s
        .create(&json!({ "name": "b.bin", "size": data.len(), "hash": hash(&data) }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "complete");
    let second = &body["file"];
    assert_eq!(
        (second["name"].as_str(), second["hash"].as_str()),
        (Some("b.bin"), first["hash"].as_str())
    );
    assert_ne!(id(second), id(&first));
    assert_eq!(s.blob_count(), 1, "the content is stored once");
    assert_eq!(s.all_files().await.len(), 2);
    assert!(s.download(second).await == data);

    // The blob lives while any file uses it.
    let del = |f: &Value| {
        s.http
            .delete(s.url(&format!("/api/v1/files/{}", id(f))))
            .send()
    };
    assert_eq!(del(&first).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(s.blob_count(), 1);
    assert!(s.download(second).await == data);
    assert_eq!(del(second).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(s.blob_count(), 0);
    assert!(s.all_files().await.is_empty());
    // Gone content must be uploaded again.
    let (status, _) = s
        .create(&json!({ "name": "c.bin", "size": data.len(), "hash": hash(&data) }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_lying_hash_is_refused_and_never_deduplicated() {
    let s = TestServer::start().await;
    let claimed = random_bytes(5 * MIB);
    let sent = random_bytes(5 * MIB);
    let (status, body) = s
        .create(&json!({ "name": "x", "size": claimed.len(), "hash": hash(&claimed) }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let upload = &body["upload"];
    let uid = id(upload);
    for i in 0..upload["chunk_count"].as_u64().unwrap() as usize {
        assert_eq!(
            s.put_chunk(&uid, i as u64, chunk_of(&sent, upload, i))
                .await
                .0,
            StatusCode::OK
        );
    }
    let (status, body) = s.complete(&uid).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "hash_mismatch");
    // The upload is discarded and nothing of it was kept.
    let (status, gone) = s.get_json(&format!("/api/v1/uploads/{uid}")).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(gone["error"]["code"], "upload_gone");
    assert_eq!(gone["error"]["reason"], "rejected");
    assert_eq!((s.blob_count(), s.part_count()), (0, 0));
    assert!(s.all_files().await.is_empty());
    // Neither the claimed nor the sent content is known now.
    for data in [&claimed, &sent] {
        let (status, body) = s
            .create(&json!({ "name": "y", "size": data.len(), "hash": hash(data) }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

#[tokio::test]
async fn md5_and_sha256_claims_are_verified() {
    let s = TestServer::start().await;
    let data = random_bytes(6 * MIB + 7);
    let md5 = hex(&Md5::digest(&data));
    let sha256 = hex(&Sha256::digest(&data));
    let create = |name: &str, md5: &str, sha: &str| json!({ "name": name, "size": data.len(), "hash": hash(&data), "md5": md5, "sha256": sha });

    // A wrong md5 fails the upload even though the bytes match the hash.
    let (_, body) = s.create(&create("bad", &"0".repeat(32), &sha256)).await;
    let upload = body["upload"].clone();
    for i in 0..upload["chunk_count"].as_u64().unwrap() as usize {
        s.put_chunk(&id(&upload), i as u64, chunk_of(&data, &upload, i))
            .await;
    }
    let (status, body) = s.complete(&id(&upload)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("hash_mismatch"))
    );
    assert_eq!(s.blob_count(), 0);

    // Right claims: kept on the file.
    let (_, body) = s.create(&create("good", &md5, &sha256)).await;
    let upload = body["upload"].clone();
    for i in 0..upload["chunk_count"].as_u64().unwrap() as usize {
        s.put_chunk(&id(&upload), i as u64, chunk_of(&data, &upload, i))
            .await;
    }
    let (status, body) = s.complete(&id(&upload)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["file"]["md5"].as_str(),
            body["file"]["sha256"].as_str()
        ),
        (Some(md5.as_str()), Some(sha256.as_str()))
    );

    // Instant uploads check claims against the stored content too.
    let (status, body) = s.create(&create("again", &md5, &sha256)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("complete"))
    );
    let (status, body) = s
        .create(&create("liar", &flip_first_digit(&md5), &sha256))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("hash_mismatch"))
    );
    assert_eq!(s.all_files().await.len(), 2);
}

#[tokio::test]
async fn content_digest_and_chunk_hash_guard_each_chunk() {
    let s = TestServer::start().await;
    let data = random_bytes(12 * MIB + 1);
    let upload = s.start_upload("d", &data).await;
    let uid = id(&upload);
    let send = |header: &'static str, value: String, index: usize| {
        s.http
            .put(s.url(&format!("/api/v1/uploads/{uid}/chunks/{index}")))
            .header(header, value)
            .body(chunk_of(&data, &upload, index))
            .send()
    };
    let refused = |r: reqwest::Response| async move {
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"]["code"],
            "digest_mismatch"
        );
    };
    let digest = tusk_client::api::content_digest;
    // Chunk 0 by RFC 9530 Content-Digest, chunk 1 by its own sha256-4m hash.
    refused(
        send("content-digest", digest(b"something else"), 0)
            .await
            .unwrap(),
    )
    .await;
    refused(
        send("chunk-hash", hash(b"something else"), 1)
            .await
            .unwrap(),
    )
    .await;
    // Chunk 1's hash is not chunk 0's: each chunk is checked against itself.
    refused(
        send("chunk-hash", hash(&chunk_of(&data, &upload, 0)), 1)
            .await
            .unwrap(),
    )
    .await;
    let (_, shown) = s.get_json(&format!("/api/v1/uploads/{uid}")).await;
    assert_eq!(shown["upload"]["received"], json!([]));

    let r = send("content-digest", digest(&chunk_of(&data, &upload, 0)), 0)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = send("chunk-hash", hash(&chunk_of(&data, &upload, 1)), 1)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["upload"]["received"],
        json!([0, 1])
    );
}

#[tokio::test]
async fn content_digest_of_one_block_chunks_is_checked() {
    // With 4 MiB chunks a chunk is one block: the server answers its
    // Content-Digest from the block digest. It must still refuse a wrong one.
    let s = TestServer::start().await;
    let data = random_bytes(4 * MIB + 1000);
    let (_, body) = s
        .create(&json!({"name": "blocks", "size": data.len(), "hash": hash(&data), "chunk_size": 4 * MIB}))
        .await;
    let uid = body["upload"]["id"].as_str().unwrap().to_owned();
    let digest = tusk_client::api::content_digest;
    let put = |index: usize, bytes: &[u8], claimed: &[u8]| {
        s.http
            .put(s.url(&format!("/api/v1/uploads/{uid}/chunks/{index}")))
            .header("content-digest", digest(claimed))
            .body(bytes.to_vec())
            .send()
    };
    let (first, last) = data.split_at(4 * MIB);
    for (index, bytes) in [(0, first), (1, last)] {
        let r = put(index, bytes, b"other bytes").await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "chunk {index}"
        );
        let r = put(index, bytes, bytes).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "chunk {index}");
    }
    let (status, _) = s.complete(&uid).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_content_at_the_same_time_is_stored_once() {
    let s = TestServer::start().await;
    let data = random_bytes(12 * MIB);
    let (a, b) = tokio::join!(s.upload("one.bin", &data), s.upload("two.bin", &data));
    assert_ne!(id(&a), id(&b));
    assert_eq!(a["hash"], b["hash"]);
    assert_eq!(s.blob_count(), 1);
    assert_eq!(s.all_files().await.len(), 2);
    assert!(s.download(&a).await == data && s.download(&b).await == data);
}

/// A body sent in small frames, yielding between them, so that two bodies
/// for one chunk interleave on the server.
fn trickle(data: Vec<u8>) -> reqwest::Body {
    let frames: Vec<Vec<u8>> = data.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
    reqwest::Body::wrap_stream(futures::stream::iter(frames).then(|f| async move {
        tokio::task::yield_now().await;
        Ok::<_, std::io::Error>(f)
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_chunk_twice_at_once_never_mixes() {
    let s = TestServer::start().await;
    for round in 0..4 {
        let data = random_bytes(8 * MIB + 100);
        let upload = s.start_upload(&format!("r{round}"), &data).await;
        let uid = id(&upload);
        let good = chunk_of(&data, &upload, 0);
        // A copy damaged in transit: its Content-Digest is of the good bytes.
        let mut bad = good.clone();
        bad[3 * MIB] ^= 0xff;
        let put = |body: Vec<u8>| {
            s.http
                .put(s.url(&format!("/api/v1/uploads/{uid}/chunks/0")))
                .header("content-digest", tusk_client::api::content_digest(&good))
                .header("content-length", body.len())
                .body(trickle(body))
                .send()
        };
        let (g, b, g2) = tokio::join!(put(good.clone()), put(bad), put(good.clone()));
        let (g, b, g2) = (
            g.unwrap().status(),
            b.unwrap().status(),
            g2.unwrap().status(),
        );
        assert_eq!((g, g2), (StatusCode::OK, StatusCode::OK));
        // The damaged copy is refused unless a good copy landed first (then it is dropped unread).
        assert!(
            b == StatusCode::UNPROCESSABLE_ENTITY || b == StatusCode::OK,
            "{b}"
        );
        assert_eq!(
            s.put_chunk(&uid, 1, chunk_of(&data, &upload, 1)).await.0,
            StatusCode::OK
        );
        let (status, body) = s.complete(&uid).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            s.download(&body["file"]).await == data,
            "round {round}: mixed bytes"
        );
    }
}

#[tokio::test]
async fn a_resent_chunk_changes_nothing() {
    let s = TestServer::start().await;
    let data = random_bytes(5 * MIB);
    let upload = s.start_upload("r", &data).await;
    let uid = id(&upload);
    s.put_chunk(&uid, 0, chunk_of(&data, &upload, 0)).await;
    let garbage = vec![0u8; data.len()];
    let (status, body) = s.put_chunk(&uid, 0, garbage).await;
    assert_eq!(
        (status, &body["upload"]["received"]),
        (StatusCode::OK, &json!([0]))
    );
    let (status, body) = s.complete(&uid).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(s.download(&body["file"]).await == data);
}

#[tokio::test]
async fn completion_names_the_missing_chunks() {
    let s = TestServer::start().await;
    let data = random_bytes(17 * MIB);
    let upload = s.start_upload("m", &data).await;
    let uid = id(&upload);
    s.put_chunk(&uid, 1, chunk_of(&data, &upload, 1)).await;
    let (status, body) = s.complete(&uid).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "missing_chunks");
    assert_eq!(body["error"]["missing"], json!([0, 2]));
}

#[tokio::test]
async fn empty_files() {
    let s = TestServer::start().await;
    let upload = s.start_upload("empty.txt", b"").await;
    assert_eq!(
        (upload["chunk_count"].as_u64(), upload["size"].as_u64()),
        (Some(0), Some(0))
    );
    let (status, body) = s.complete(&id(&upload)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["file"]["hash"],
        "sha256-4m:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert!(s.download(&body["file"]).await.is_empty());
}

#[tokio::test]
async fn deleting_an_upload_frees_its_space() {
    let s = TestServer::start().await;
    let data = random_bytes(MIB);
    let upload = s.start_upload("gone", &data).await;
    let uid = id(&upload);
    s.put_chunk(&uid, 0, data.clone()).await;
    assert_eq!(s.part_count(), 1);
    let r = s
        .http
        .delete(s.url(&format!("/api/v1/uploads/{uid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.part_count(), 0);
    let (status, gone) = s.get_json(&format!("/api/v1/uploads/{uid}")).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(gone["error"]["reason"], "terminated");
}

#[tokio::test]
async fn names_are_display_names_never_paths() {
    let s = TestServer::start().await;
    let cases = [
        ("../../etc/passwd", "etc/passwd"),
        ("C:\\Users\\me\\notes.txt", "C:/Users/me/notes.txt"),
        ("/abs//./dir/../x.bin", "abs/dir/x.bin"),
        ("tab\there", "tabhere"),
    ];
    for (i, (raw, want)) in cases.iter().enumerate() {
        let file = s.upload(raw, format!("content {i}").as_bytes()).await;
        assert_eq!(file["name"], *want);
    }
    // Every byte landed inside the data folder's blob store.
    assert_eq!(s.blob_count(), cases.len());
    assert!(!s.data().join("etc").exists());
}

#[tokio::test]
async fn form_posts_store_small_files() {
    let s = TestServer::start().await;
    let a = random_bytes(5 * MIB + 3);
    let b = b"hello form".to_vec();
    let form = reqwest::multipart::Form::new()
        .text("comment", "ignored")
        .part(
            "f1",
            reqwest::multipart::Part::bytes(a.clone()).file_name("photos/a.jpg"),
        )
        .part(
            "f2",
            reqwest::multipart::Part::bytes(b.clone())
                .file_name("b.txt")
                .mime_str("text/plain")
                .unwrap(),
        )
        .part(
            "f3",
            reqwest::multipart::Part::bytes(Vec::new()).file_name("empty"),
        )
        .part(
            "f4",
            reqwest::multipart::Part::bytes(a.clone()).file_name("dup.jpg"),
        )
        // A file input with nothing chosen: no file.
        .part(
            "f5",
            reqwest::multipart::Part::bytes(Vec::new()).file_name(""),
        );
    let r = s
        .http
        .post(s.url("/api/v1/files"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let files = body["files"].as_array().unwrap();
    let summary: Vec<(&str, u64, &str)> = files
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap(),
                f["size"].as_u64().unwrap(),
                f["mime"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("photos/a.jpg", a.len() as u64, "image/jpeg"),
            ("b.txt", b.len() as u64, "text/plain"),
            ("empty", 0, "application/octet-stream"),
            ("dup.jpg", a.len() as u64, "image/jpeg"),
        ]
    );
    assert_eq!(files[0]["hash"], hash(&a));
    assert_eq!(files[1]["hash"], hash(&b));
    assert_eq!(s.blob_count(), 3, "the duplicate is stored once");
    assert_eq!(s.part_count(), 0);
    assert!(s.download(&files[3]).await == a);
    // Form content counts for instant uploads like any other.
    let (status, body) = s
        .create(&json!({ "name": "z", "size": b.len(), "hash": hash(&b) }))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("complete"))
    );
}

#[tokio::test]
async fn chunks_can_come_as_form_parts() {
    let s = TestServer::start().await;
    let data = random_bytes(9 * MIB);
    let upload = s.start_upload("via-form.bin", &data).await;
    let uid = id(&upload);
    for i in 0..2 {
        let form = reqwest::multipart::Form::new()
            .text("chunk", i.to_string())
            .part(
                "file",
                reqwest::multipart::Part::bytes(chunk_of(&data, &upload, i)).file_name("blob"),
            )
            .text("after", "x");
        let r = s
            .http
            .put(s.url(&format!("/api/v1/uploads/{uid}/chunks/{i}")))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }
    // A part of the wrong length is refused.
    let other = s.start_upload("other", &data).await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(vec![1u8; 100]).file_name("b"),
    );
    let r = s
        .http
        .put(s.url(&format!("/api/v1/uploads/{}/chunks/0", id(&other))))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "chunk_length_mismatch"
    );
    let (status, body) = s.complete(&uid).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(s.download(&body["file"]).await == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_uploads_with_parallel_streams() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payload.bin");
    let data = random_bytes(37 * MIB + 11);
    std::fs::write(&path, &data).unwrap();
    let opts = tusk_client::UploadOptions {
        parallel: 4,
        ..Default::default()
    };
    let report = tusk_client::upload_file(&s.client, &path, &opts)
        .await
        .unwrap();
    assert!(!report.instant);
    assert_eq!(report.chunks_sent, 5);
    assert_eq!(report.file.hash, hash(&data));
    let again = tokio::time::timeout(
        Duration::from_secs(60),
        tusk_client::upload_file(&s.client, &path, &opts),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(again.instant);
    assert_eq!(again.chunks_sent, 0);
    assert!(s.client.download(&again.file).await.unwrap() == data);
}
