//! Every kind of bad input gets a 4xx with a stable code and changes
//! nothing: no upload, file, blob or part file appears or moves.

use crate::common;

use common::{MIB, TestServer, hash, random_bytes};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What the server holds, as seen from outside.
async fn snapshot(s: &TestServer, upload: &str) -> (Value, usize, usize, usize) {
    let (_, shown) = s.get_json(&format!("/api/v1/uploads/{upload}")).await;
    (
        shown,
        s.all_files().await.len(),
        s.blob_count(),
        s.part_count(),
    )
}

async fn expect(r: reqwest::Response, status: StatusCode, code: &str) {
    let got = r.status();
    let body: Value = r.json().await.expect("a JSON error body");
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn bad_checks_are_refused() {
    let s = TestServer::start_with(|c| c.max_file_size = 10 * MIB as u64).await;
    let data = random_bytes(100);
    let upload = s.start_upload("existing", &data).await;
    let uid = upload["id"].as_str().unwrap().to_owned();
    let before = snapshot(&s, &uid).await;
    let good = hash(&data);

    let raw = |body: &str| {
        s.http
            .post(s.url("/api/v1/uploads"))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
    };
    for body in [
        "{",
        "not json",
        "{\"name\":\"a\",}",
        "[1,2",
        "{\"name\":\"a\",\"size\":1,\"hash\":\"x\"} trailing",
    ] {
        expect(
            raw(body).await.unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        )
        .await;
    }
    expect(
        raw(&"x".repeat(100 * 1024)).await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
    )
    .await;

    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (json!({}), StatusCode::BAD_REQUEST, "invalid_request"),
        (json!([]), StatusCode::BAD_REQUEST, "invalid_request"),
        (
            json!({ "size": 1, "hash": good }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({ "name": "a", "hash": good }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({ "name": "a", "size": 1 }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({ "name": "a", "size": -1, "hash": good }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({ "name": "a", "size": "100", "hash": good }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({ "name": "a", "size": 1.5, "hash": good }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({ "name": "a", "size": null, "hash": good }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({ "name": 7, "size": 1, "hash": good }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({ "name": "a", "size": 1, "hash": good, "chunk_size": -4 }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({ "name": "a", "size": 1, "hash": "abc" }),
            StatusCode::BAD_REQUEST,
            "invalid_hash",
        ),
        (
            json!({ "name": "a", "size": 1, "hash": good.replace("sha256-4m:", "sha256:") }),
            StatusCode::BAD_REQUEST,
            "invalid_hash",
        ),
        (
            json!({ "name": "a", "size": 1, "hash": format!("{good}0") }),
            StatusCode::BAD_REQUEST,
            "invalid_hash",
        ),
        (
            json!({ "name": "a", "size": 1, "hash": good.replace(&good[12..14], "zz") }),
            StatusCode::BAD_REQUEST,
            "invalid_hash",
        ),
        (
            json!({ "name": "a", "size": 1, "hash": good, "md5": "xyz" }),
            StatusCode::BAD_REQUEST,
            "invalid_hash",
        ),
        (
            json!({ "name": "a", "size": 1, "hash": good, "sha256": "00" }),
            StatusCode::BAD_REQUEST,
            "invalid_hash",
        ),
        (
            json!({ "name": "a", "size": 10 * MIB + 1, "hash": good }),
            StatusCode::PAYLOAD_TOO_LARGE,
            "file_too_large",
        ),
        (
            json!({ "name": "a", "size": 1, "hash": good, "chunk_size": 0 }),
            StatusCode::BAD_REQUEST,
            "invalid_chunk_size",
        ),
        (
            json!({ "name": "a", "size": 1, "hash": good, "chunk_size": 5 * MIB }),
            StatusCode::BAD_REQUEST,
            "invalid_chunk_size",
        ),
        (
            json!({ "name": "a", "size": 1, "hash": good, "chunk_size": 2048 * MIB }),
            StatusCode::BAD_REQUEST,
            "invalid_chunk_size",
        ),
        (
            json!({ "name": "", "size": 1, "hash": good }),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            json!({ "name": "/../.", "size": 1, "hash": good }),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            json!({ "name": "\u{0}\u{1}", "size": 1, "hash": good }),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            json!({ "name": "n".repeat(1025), "size": 1, "hash": good }),
            StatusCode::BAD_REQUEST,
            "name_too_long",
        ),
        (
            json!({ "name": "a", "size": 1, "hash": good, "mime": "not a type" }),
            StatusCode::BAD_REQUEST,
            "invalid_mime",
        ),
    ];
    for (body, status, code) in cases {
        let r = s
            .http
            .post(s.url("/api/v1/uploads"))
            .json(&body)
            .send()
            .await
            .unwrap();
        expect(r, status, code).await;
    }
    // The limit is inclusive; a name of exactly 1,024 bytes is fine.
    let (status, body) = s
        .create(&json!({ "name": "n".repeat(1024), "size": 1, "hash": hash(b"z") }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let r = s
        .http
        .delete(s.url(&format!(
            "/api/v1/uploads/{}",
            body["upload"]["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    assert_eq!(snapshot(&s, &uid).await, before);
}

#[tokio::test]
async fn bad_chunks_are_refused() {
    let s = TestServer::start().await;
    let data = random_bytes(9 * MIB);
    let upload = s.start_upload("target", &data).await;
    let uid = upload["id"].as_str().unwrap().to_owned();
    let (status, _) = s.put_chunk(&uid, 1, data[8 * MIB..].to_vec()).await;
    assert_eq!(status, StatusCode::OK);
    let before = snapshot(&s, &uid).await;

    let put = |index: &str, body: Vec<u8>| {
        s.http
            .put(s.url(&format!("/api/v1/uploads/{uid}/chunks/{index}")))
            .body(body)
            .send()
    };
    expect(
        put("2", vec![0; 10]).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "chunk_index_out_of_range",
    )
    .await;
    expect(
        put("99999999999", vec![0; 10]).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "chunk_index_out_of_range",
    )
    .await;
    for index in ["-1", "one", "1.0", "0x1", "%20"] {
        expect(
            put(index, vec![0; 10]).await.unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_chunk_index",
        )
        .await;
    }
    // Too short, too long, empty.
    for len in [8 * MIB - 1, 8 * MIB + 1, 0] {
        expect(
            put("0", vec![7; len]).await.unwrap(),
            StatusCode::BAD_REQUEST,
            "chunk_length_mismatch",
        )
        .await;
    }
    // The last chunk is the remainder, not a whole chunk_size.
    expect(
        put("1", vec![7; 8 * MIB]).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "chunk_length_mismatch",
    )
    .await;
    for digest in ["sha-256=abc", "sha-256=:AAAA:", "sha-256", "((("] {
        let r = s
            .http
            .put(s.url(&format!("/api/v1/uploads/{uid}/chunks/0")))
            .header("content-digest", digest)
            .body(data[..8 * MIB].to_vec())
            .send()
            .await
            .unwrap();
        expect(r, StatusCode::BAD_REQUEST, "invalid_digest").await;
    }
    for bad in [
        "abc",
        "sha256-4m:00",
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let r = s
            .http
            .put(s.url(&format!("/api/v1/uploads/{uid}/chunks/0")))
            .header("chunk-hash", bad)
            .body(data[..8 * MIB].to_vec())
            .send()
            .await
            .unwrap();
        expect(r, StatusCode::BAD_REQUEST, "invalid_digest").await;
    }
    assert_eq!(snapshot(&s, &uid).await, before);
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let s = TestServer::start().await;
    let file = s.upload("kept", b"kept").await;
    let before = (s.all_files().await, s.blob_count());
    for id in [
        "0123456789abcdef0123456789abcdef",
        "nope",
        "..%2F..%2Fetc",
        "0123456789ABCDEF0123456789ABCDEF",
    ] {
        let (up, f) = (
            format!("/api/v1/uploads/{id}"),
            format!("/api/v1/files/{id}"),
        );
        let calls = [
            (reqwest::Method::GET, up.clone(), "upload_not_found"),
            (reqwest::Method::DELETE, up.clone(), "upload_not_found"),
            (
                reqwest::Method::POST,
                format!("{up}/complete"),
                "upload_not_found",
            ),
            (
                reqwest::Method::PUT,
                format!("{up}/chunks/0"),
                "upload_not_found",
            ),
            (reqwest::Method::GET, f.clone(), "file_not_found"),
            (reqwest::Method::DELETE, f, "file_not_found"),
            (
                reqwest::Method::GET,
                format!("/files/{id}"),
                "file_not_found",
            ),
        ];
        for (method, path, code) in calls {
            let r = s
                .http
                .request(method, s.url(&path))
                .body(vec![1; 5])
                .send()
                .await
                .unwrap();
            expect(r, StatusCode::NOT_FOUND, code).await;
        }
    }
    // A file id is not an upload id and the other way round.
    let fid = file["id"].as_str().unwrap();
    expect(
        s.http
            .get(s.url(&format!("/api/v1/uploads/{fid}")))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "upload_not_found",
    )
    .await;
    assert_eq!((s.all_files().await, s.blob_count()), before);
}

#[tokio::test]
async fn bad_listings_forms_routes_and_methods() {
    let s = TestServer::start().await;
    expect(
        s.http
            .get(s.url("/api/v1/files?cursor=zzz"))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
    )
    .await;
    for q in [
        "limit=0",
        "limit=abc",
        "limit=1001",
        "limit=-5",
        "limit=1&limit=2",
    ] {
        expect(
            s.http
                .get(s.url(&format!("/api/v1/files?{q}")))
                .send()
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    let r = s
        .http
        .post(s.url("/api/v1/files"))
        .body("plain")
        .send()
        .await
        .unwrap();
    expect(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let r = s
        .http
        .post(s.url("/api/v1/files"))
        .header("content-type", "multipart/form-data")
        .body("x")
        .send()
        .await
        .unwrap();
    expect(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let form = reqwest::multipart::Form::new().text("just", "text");
    expect(
        s.http
            .post(s.url("/api/v1/files"))
            .multipart(form)
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "no_files",
    )
    .await;
    let r = s
        .http
        .post(s.url("/api/v1/files"))
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\nunterminated")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    expect(
        s.http.get(s.url("/api/v2/nothing")).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect(
        s.http.patch(s.url("/api/v1/uploads")).send().await.unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    expect(
        s.http.get(s.url("/api/v1/uploads")).send().await.unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    assert!(s.all_files().await.is_empty());
    assert_eq!((s.blob_count(), s.part_count()), (0, 0));
}
