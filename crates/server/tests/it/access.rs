//! Owners and tokens over real HTTP: who may see, change and download
//! what, on every door; instant upload across owners only with a proof of
//! possession; signed and public links.

use crate::common;

use common::tus::b64;
use common::who::{Who, answers};
use common::{MIB, TestServer, hash, random_bytes};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The shape of a JSON value: its keys and the kinds of its leaves.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => json!(["array", a.len()]),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_a_token_exists_every_request_needs_a_valid_one() {
    let server = TestServer::start().await;
    // Open mode: no token needed.
    let (status, _) = server.get_json("/api/v1/files").await;
    assert_eq!(status, StatusCode::OK);

    let ann = Who::new(&server, "ann").await;
    let r = server
        .http
        .get(server.url("/api/v1/files"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    for bad in ["Bearer tusk_0000", "Basic YW5uOnB3", "Bearer", "tusk_x"] {
        let r = server
            .http
            .get(server.url("/api/v1/files"))
            .header("authorization", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
    }
    // The tus door and the form door too.
    let r = server
        .http
        .post(server.url("/tus/"))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    assert!(ann.files().await.is_empty());
    // The metrics are for admins.
    let (status, body) = ann.send(ann.req(Method::GET, "/metrics")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let root = server
        .service
        .create_token("root", None, true)
        .await
        .unwrap();
    let r = server
        .http
        .get(server.url("/metrics"))
        .bearer_auth(&root.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("tusk_http_requests_total"));
    // Revoked: refused at once, and the server stays closed.
    assert_eq!(server.service.revoke_tokens("ann").await.unwrap(), 1);
    let (status, body) = ann.send(ann.req(Method::GET, "/api/v1/files")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = server.get_json("/api/v1/files").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_see_and_touch_only_their_own_on_every_door() {
    let server = TestServer::start().await;
    let ann = Who::new(&server, "ann").await;
    let bob = Who::new(&server, "bob").await;

    let data = random_bytes(5 * MIB);
    let file = ann.upload("ann.bin", &data).await;
    let fid = file["id"].as_str().unwrap().to_owned();
    let (_, open) = ann.check("open.bin", &random_bytes(MIB)).await;
    let uid = open["upload"]["id"].as_str().unwrap().to_owned();
    let r = ann
        .req(Method::POST, "/tus/")
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let tus = r.headers()["location"].to_str().unwrap().to_owned();
    let tus_path = tus.strip_prefix(&server.base).unwrap_or(&tus).to_owned();

    // Every route that names one of Ann's things is a 404 for Bob.
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/uploads/{uid}"), None),
        (Method::DELETE, format!("/api/v1/uploads/{uid}"), None),
        (
            Method::POST,
            format!("/api/v1/uploads/{uid}/complete"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/uploads/{uid}/proof"),
            Some(json!({ "digests": [] })),
        ),
        (Method::GET, format!("/api/v1/files/{fid}"), None),
        (
            Method::PATCH,
            format!("/api/v1/files/{fid}"),
            Some(json!({ "public": true })),
        ),
        (
            Method::POST,
            format!("/api/v1/files/{fid}/link"),
            Some(json!({})),
        ),
        (Method::DELETE, format!("/api/v1/files/{fid}"), None),
        (Method::GET, format!("/files/{fid}"), None),
        (Method::GET, format!("/files/{fid}/ann.bin"), None),
    ];
    for (method, path, body) in attempts {
        let mut rb = bob.req(method.clone(), &path);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let (status, body) = bob.send(rb).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    let (status, _) = bob
        .send(
            bob.req(Method::PUT, &format!("/api/v1/uploads/{uid}/chunks/0"))
                .body(vec![0u8; MIB]),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for method in [Method::HEAD, Method::DELETE] {
        let r = bob
            .req(method.clone(), &tus_path)
            .header("tus-resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "tus {method}");
    }
    let r = bob
        .req(Method::PATCH, &tus_path)
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "tus PATCH");
    assert!(bob.files().await.is_empty());

    // A form post of Bob's is his alone.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"bob's note".to_vec()).file_name("note.txt"),
    );
    let (status, body) = bob
        .send(bob.req(Method::POST, "/api/v1/files").multipart(form))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(bob.files().await.len(), 1);
    let ann_files = ann.files().await;
    assert_eq!(ann_files.len(), 1);
    assert_eq!(ann_files[0]["id"], fid.as_str());

    // Ann's things are all still there and hers.
    let (status, _) = ann
        .send(ann.req(Method::GET, &format!("/api/v1/uploads/{uid}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    let r = ann
        .req(Method::HEAD, &tus_path)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = ann
        .req(Method::GET, &format!("/files/{fid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_alone_never_gets_another_owners_file_but_the_bytes_prove_it() {
    let server = TestServer::start().await;
    let ann = Who::new(&server, "ann").await;
    let bob = Who::new(&server, "bob").await;
    let eve = Who::new(&server, "eve").await;
    let data = random_bytes(9 * MIB + 123);
    ann.upload("ann.bin", &data).await;

    // Ann again: an instant upload of her own content.
    let (status, body) = ann.check("again.bin", &data).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("complete"))
    );

    // Eve knows the hash, not the bytes: a new upload and a challenge.
    let (status, body) = eve.check("stolen.bin", &data).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "uploading");
    let challenge = &body["challenge"];
    assert_eq!(challenge["blocks"].as_array().unwrap().len(), 3);
    let uid = body["upload"]["id"].as_str().unwrap();
    // Guessing fails and changes nothing: she is told to upload.
    let wrong = vec!["00".repeat(32); 3];
    let (status, proved) = eve.prove(uid, &wrong).await;
    assert_eq!(status, StatusCode::OK, "{proved}");
    assert_eq!(proved["status"], "uploading");
    assert_eq!(proved["upload"]["id"], uid);
    // A wrong number of digests is a plain client error.
    let (status, proved) = eve.prove(uid, &wrong[..1]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(proved["error"]["code"], "invalid_proof");
    // Completing needs the chunks.
    let (status, _) = eve
        .send(eve.req(Method::POST, &format!("/api/v1/uploads/{uid}/complete")))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(eve.files().await.is_empty());

    // Bob has the bytes: his proof records the file at once.
    let (status, body) = bob.check("mine.bin", &data).await;
    assert_eq!(status, StatusCode::CREATED);
    let uid = body["upload"]["id"].as_str().unwrap();
    let (status, proved) = bob.prove(uid, &answers(&body["challenge"], &data)).await;
    assert_eq!(status, StatusCode::OK, "{proved}");
    assert_eq!(proved["status"], "complete", "{proved}");
    assert_eq!(proved["file"]["name"], "mine.bin");
    let url = proved["file"]["url"].as_str().unwrap();
    let got = bob.req(Method::GET, url).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap(), data);
    // The upload is over; the content is stored once.
    let (status, _) = bob
        .send(bob.req(Method::GET, &format!("/api/v1/uploads/{uid}")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(server.blob_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_bytes_existing_and_missing_content_look_the_same() {
    let server = TestServer::start().await;
    let ann = Who::new(&server, "ann").await;
    let eve = Who::new(&server, "eve").await;
    let stored = random_bytes(6 * MIB);
    ann.upload("a.bin", &stored).await;
    let missing = random_bytes(6 * MIB);

    let (s1, exists) = eve.check("x.bin", &stored).await;
    let (s2, absent) = eve.check("x.bin", &missing).await;
    assert_eq!(s1, s2);
    assert_eq!(shape(&exists), shape(&absent));
    assert_eq!(exists["upload"]["received"], json!([]));
    assert_eq!(absent["upload"]["received"], json!([]));

    let guess = vec!["ab".repeat(32); 2];
    let mut answers_seen = Vec::new();
    for body in [&exists, &absent] {
        let uid = body["upload"]["id"].as_str().unwrap();
        let started = std::time::Instant::now();
        let (status, proved) = eve.prove(uid, &guess).await;
        let took = started.elapsed();
        assert_eq!(status, StatusCode::OK);
        assert!(
            took >= tusk_core::service::PROOF_TIME,
            "answered after {took:?}"
        );
        answers_seen.push(shape(&proved));
    }
    assert_eq!(answers_seen[0], answers_seen[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_signed_public_or_refused() {
    let server = TestServer::start().await;
    let ann = Who::new(&server, "ann").await;
    let data = random_bytes(100_000);
    let file = ann.upload("a.bin", &data).await;
    let fid = file["id"].as_str().unwrap();
    assert_eq!(file["public"], false);

    // No token: refused (401), not served.
    let plain = format!("/files/{fid}/a.bin");
    let r = server.http.get(server.url(&plain)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The link in the file object is signed and works without a token.
    let signed = file["url"].as_str().unwrap();
    assert!(signed.contains("sig="), "{signed}");
    let r = server.http.get(server.url(signed)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap(), data);

    // Tampered with, or for another file: 403.
    let tampered = signed.replace("sig=", "sig=0");
    let other = signed.replace(fid, &"0".repeat(32));
    let later = {
        let (head, tail) = signed.split_once("expires=").unwrap();
        let (secs, rest) = tail.split_once('&').unwrap();
        format!("{head}expires={}&{rest}", secs.parse::<u64>().unwrap() + 1)
    };
    for bad in [tampered, other, later, format!("{plain}?sig=00")] {
        let r = server.http.get(server.url(&bad)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_link");
    }
    // Expired, though signed.
    let id = tusk_core::model::FileId::parse(fid).unwrap();
    let past = server.service.sign_link(&id, 1_000).await.unwrap();
    let r = server
        .http
        .get(server.url(&format!("{plain}?{past}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A link asked for with its own lifetime.
    let (status, body) = ann
        .send(
            ann.req(Method::POST, &format!("/api/v1/files/{fid}/link"))
                .json(&json!({ "expires_in": 60 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = server
        .http
        .get(server.url(body["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, _) = ann
        .send(
            ann.req(Method::POST, &format!("/api/v1/files/{fid}/link"))
                .json(&json!({ "expires_in": 0 })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Public: the plain path works for anyone, until made private again.
    let (status, body) = ann
        .send(
            ann.req(Method::PATCH, &format!("/api/v1/files/{fid}"))
                .json(&json!({ "public": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["file"]["public"], true);
    assert_eq!(body["file"]["url"], plain.as_str());
    let r = server.http.get(server.url(&plain)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, _) = ann
        .send(
            ann.req(Method::PATCH, &format!("/api/v1/files/{fid}"))
                .json(&json!({ "public": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let r = server.http.get(server.url(&plain)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_count_files_and_uploads_in_progress() {
    let server = TestServer::start().await;
    let issued = server
        .service
        .create_token("ann", Some(10 * MIB as u64), false)
        .await
        .unwrap();
    let ann = Who {
        server: &server,
        token: issued.secret,
    };
    let six = random_bytes(6 * MIB);
    ann.upload("six.bin", &six).await;
    // 6 MiB stored; another 6 MiB would pass the 10 MiB quota.
    let (status, body) = ann.check("more.bin", &random_bytes(6 * MIB)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert_eq!(body["error"]["quota"], 10 * MIB);
    // An instant copy of her own file counts too.
    let (status, body) = ann.check("copy.bin", &six).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    // An unfinished upload holds its room.
    let (status, _) = ann.check("three.bin", &random_bytes(3 * MIB)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = ann.check("two.bin", &random_bytes(2 * MIB)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // tus with its length deferred is checked when the length is known.
    let r = ann
        .req(Method::POST, "/tus/")
        .header("tus-resumable", "1.0.0")
        .header("upload-defer-length", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let tus = r.headers()["location"].to_str().unwrap().to_owned();
    let r = ann
        .req(
            Method::PATCH,
            tus.strip_prefix(&server.base).unwrap_or(&tus),
        )
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", "0")
        .header("upload-length", (2 * MIB).to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Small files posted in a form count too (9 MiB held, 1.8 MiB more).
    let mut form = reqwest::multipart::Form::new();
    for i in 0..3 {
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(random_bytes(600 * 1024)).file_name(format!("{i}.bin")),
        );
    }
    let (status, body) = ann
        .send(ann.req(Method::POST, "/api/v1/files").multipart(form))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert_eq!(ann.files().await.len(), 1, "nothing of the form was kept");
    // Another owner is not held back by Ann's quota.
    let bob = Who::new(&server, "bob").await;
    bob.upload("big.bin", &random_bytes(12 * MIB)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_uploads_in_progress_is_429_with_retry_after() {
    let server = TestServer::start_with(|c| c.max_uploads_per_owner = 2).await;
    let ann = Who::new(&server, "ann").await;
    let bob = Who::new(&server, "bob").await;
    for i in 0..2 {
        let (status, _) = ann.check(&format!("{i}.bin"), &random_bytes(100)).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let r = ann
        .req(Method::POST, "/api/v1/uploads")
        .json(&json!({ "name": "x", "size": 5, "hash": hash(b"hello") }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            > 0
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_uploads");
    // tus creation is held to the same limit.
    let r = ann
        .req(Method::POST, "/tus/")
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "3")
        .header("upload-metadata", format!("filename {}", b64(b"a")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Bob is not.
    let (status, _) = bob.check("b.bin", &random_bytes(100)).await;
    assert_eq!(status, StatusCode::CREATED);
}
