//! Requests repeated after a lost answer: a form post of small files, a
//! check that became an instant upload, or a proof of possession, sent
//! again with the same `Idempotency-Key`, end with the files the first one
//! recorded and record nothing more. Without a key each request records
//! its files; a key reused for other files is refused and changes nothing.

use crate::common;

use common::who::answers;
use common::{MIB, TestServer, hash, random_bytes};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `POST /api/v1/files` of `files` (name, bytes), with `key` if given.
async fn post_form(
    s: &TestServer,
    files: &[(&str, &[u8])],
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = reqwest::multipart::Form::new();
    for (name, data) in files {
        let part = reqwest::multipart::Part::bytes(data.to_vec()).file_name(name.to_string());
        form = form.part("file", part);
    }
    let mut request = s.http.post(s.url("/api/v1/files")).multipart(form);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

/// `POST /api/v1/uploads` for `data` named `name`, with `key` if given.
async fn check(s: &TestServer, name: &str, data: &[u8], key: Option<&str>) -> (StatusCode, Value) {
    let mut request = s
        .http
        .post(s.url("/api/v1/uploads"))
        .json(&json!({ "name": name, "size": data.len(), "hash": hash(data) }));
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

fn ids(body: &Value) -> Vec<String> {
    body["files"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

/// How many files of the listing carry each name.
async fn names(s: &TestServer) -> Vec<String> {
    let mut names: Vec<String> = s
        .all_files()
        .await
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_repeated_form_post_records_its_files_once() {
    let s = TestServer::start().await;
    let (a, b) = (random_bytes(1000), random_bytes(3));
    let files: [(&str, &[u8]); 3] = [("a.bin", &a), ("b.bin", &b), ("empty", b"")];
    let key = "\"batch-1\"";
    let (status, first) = post_form(&s, &files, Some(key)).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = post_form(&s, &files, Some(key)).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(ids(&again), ids(&first), "the same files");
    assert_eq!(names(&s).await, ["a.bin", "b.bin", "empty"]);
    assert_eq!(s.blob_count(), 3, "the repeat left no blob behind");

    // Another key is another request; so is one without a key.
    let (status, other) = post_form(&s, &files, Some("\"batch-2\"")).await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    assert_ne!(ids(&other), ids(&first));
    let (status, _) = post_form(&s, &files[..1], None).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = post_form(&s, &files[..1], None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(s.all_files().await.len(), 8);
}

#[tokio::test]
async fn a_key_reused_for_other_files_is_refused() {
    let s = TestServer::start().await;
    let (a, b) = (random_bytes(100), random_bytes(200));
    let key = Some("\"k\"");
    let (status, _) = post_form(&s, &[("a.bin", &a)], key).await;
    assert_eq!(status, StatusCode::CREATED);
    for files in [[("a.bin", &b[..])], [("other.bin", &a[..])]] {
        let (status, body) = post_form(&s, &files, key).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["code"], "idempotency_key_reused", "{body}");
    }
    assert_eq!(names(&s).await, ["a.bin"], "nothing more recorded");
}

#[tokio::test]
async fn a_repeated_instant_upload_records_its_file_once() {
    let s = TestServer::start().await;
    let data = random_bytes(5000);
    s.upload("first.bin", &data).await;
    let key = Some("\"check-1\"");
    let (status, first) = check(&s, "second.bin", &data, key).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["status"], "complete", "{first}");
    let (status, again) = check(&s, "second.bin", &data, key).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["file"]["id"], first["file"]["id"]);
    assert_eq!(names(&s).await, ["first.bin", "second.bin"]);
    // Without a key, every check records a file.
    check(&s, "second.bin", &data, None).await;
    assert_eq!(names(&s).await, ["first.bin", "second.bin", "second.bin"]);
}

#[tokio::test]
async fn malformed_keys_are_refused() {
    let s = TestServer::start().await;
    let long = format!("\"{}\"", "k".repeat(256));
    for key in ["\"\"", "\"unterminated", "1.5", long.as_str()] {
        let (status, body) = post_form(&s, &[("a.bin", b"x")], Some(key)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key}: {body}");
        assert_eq!(body["error"]["code"], "invalid_request", "{body}");
        let (status, body) = check(&s, "a.bin", b"x", Some(key)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key}: {body}");
    }
    assert!(s.all_files().await.is_empty());
}

/// A proof whose answer was lost: proving again finds the upload gone (the
/// proof ended it), and the client's fresh check with the same key finds
/// the file the proof recorded.
#[tokio::test]
async fn a_repeated_proof_records_its_file_once() {
    let s = TestServer::start().await;
    let data = random_bytes(5 * MIB + 7);
    let key = "\"proof-1\"";
    let (status, created) = check(&s, "b.bin", &data, Some(key)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // The content is stored meanwhile, under another name.
    s.upload("a.bin", &data).await;
    let id = created["upload"]["id"].as_str().unwrap();
    let digests = answers(&created["challenge"], &data);
    let prove = async || {
        let r = s
            .http
            .post(s.url(&format!("/api/v1/uploads/{id}/proof")))
            .header("idempotency-key", key)
            .json(&json!({ "digests": digests }))
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json::<Value>().await.unwrap())
    };
    let (status, proved) = prove().await;
    assert_eq!(status, StatusCode::OK, "{proved}");
    assert_eq!(proved["status"], "complete", "{proved}");
    let (status, again) = prove().await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{again}");
    let (status, checked) = check(&s, "b.bin", &data, Some(key)).await;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert_eq!(checked["file"]["id"], proved["file"]["id"]);
    assert_eq!(names(&s).await, ["a.bin", "b.bin"]);
}
