//! Proofs of possession and resumes, as an attacker would try them: the
//! challenge cannot be re-rolled, proofs are rate-limited, a file shows
//! only digests its owner had verified, and an upload is resumed by its
//! content whatever name or optional claims the check brings.

use std::collections::HashSet;

use crate::common;

use common::who::{Who, answers};
use common::{MIB, TestServer, hex, random_bytes};
use md5::Md5;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::Digest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_is_the_same_however_often_it_is_asked() {
    let server = TestServer::start().await;
    let bob = Who::new(&server, "bob").await;
    let eve = Who::new(&server, "eve").await;
    let carl = Who::new(&server, "carl").await;
    let data = random_bytes(40 * MIB);
    bob.upload("bob.bin", &data).await;
    let mut seen = HashSet::new();
    for i in 0..20 {
        let (status, body) = eve.check(&format!("try-{i}.bin"), &data).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        seen.insert(body["challenge"].to_string());
        // A fresh upload next time: delete this one.
        let id = body["upload"]["id"].as_str().unwrap();
        let (status, _) = eve
            .send(eve.req(Method::DELETE, &format!("/api/v1/uploads/{id}")))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    assert_eq!(seen.len(), 1, "distinct challenges: {seen:?}");
    let challenge: serde_json::Value = serde_json::from_str(seen.iter().next().unwrap()).unwrap();
    // 10 blocks: 3 challenged (the square root, at least 3).
    assert_eq!(challenge["blocks"].as_array().unwrap().len(), 3);
    // Another owner gets a challenge of its own.
    let (_, body) = carl.check("c.bin", &data).await;
    assert_ne!(body["challenge"], challenge);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_past_the_owners_allowance_are_not_checked() {
    let server = TestServer::start_with(|c| c.proofs_per_minute = 2).await;
    let bob = Who::new(&server, "bob").await;
    let eve = Who::new(&server, "eve").await;
    let mut outcomes = Vec::new();
    for i in 0..3 {
        let data = random_bytes(MIB + i);
        bob.upload("b.bin", &data).await;
        // Eve holds the bytes too, and proves it with the right answers.
        let (status, body) = eve.check("e.bin", &data).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["upload"]["id"].as_str().unwrap();
        let (status, proved) = eve.prove(id, &answers(&body["challenge"], &data)).await;
        assert_eq!(status, StatusCode::OK, "{proved}");
        outcomes.push(proved["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(outcomes, ["complete", "complete", "uploading"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_shows_only_the_digests_its_owner_had_verified() {
    let server = TestServer::start().await;
    let bob = Who::new(&server, "bob").await;
    let eve = Who::new(&server, "eve").await;
    let data = random_bytes(5 * MIB + 3);
    let (md5, sha) = (hex(&Md5::digest(&data)), hex(&sha2::Sha256::digest(&data)));
    let file = bob
        .upload_with("b.bin", &data, json!({ "md5": md5, "sha256": sha }))
        .await;
    assert_eq!(
        (file["md5"].as_str(), file["sha256"].as_str()),
        (Some(&*md5), Some(&*sha))
    );
    // Eve sends the same bytes with no claims: her file shows no digest
    // that only Bob's claims made known.
    let mine = eve.upload("e.bin", &data).await;
    assert!(
        mine.get("md5").is_none() && mine.get("sha256").is_none(),
        "{mine}"
    );
    for f in eve.files().await {
        assert!(f.get("md5").is_none() && f.get("sha256").is_none(), "{f}");
    }
    // A copy of her own with her md5 claim, verified: that one only.
    let (status, body) = eve.check_with("e2.bin", &data, json!({ "md5": md5 })).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("complete"))
    );
    let again = &body["file"];
    assert_eq!(again["md5"].as_str(), Some(&*md5));
    assert!(again.get("sha256").is_none(), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_resumes_with_fewer_or_more_claims() {
    let server = TestServer::start().await;
    let ann = Who::new(&server, "ann").await;
    let data = random_bytes(9 * MIB);
    let md5 = hex(&Md5::digest(&data));
    let (status, body) = ann.check_with("a.bin", &data, json!({ "md5": md5 })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["upload"]["id"].as_str().unwrap().to_owned();
    let cs = body["upload"]["chunk_size"].as_u64().unwrap() as usize;
    let (status, _) = ann
        .send(
            ann.req(Method::PUT, &format!("/api/v1/uploads/{id}/chunks/0"))
                .body(data[..cs].to_vec()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Without the md5: the same upload, with what it received.
    let (status, body) = ann.check("a.bin", &data).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["upload"]["id"], id.as_str());
    assert_eq!(body["upload"]["received"], json!([0]));
    // A conflicting md5 cannot be the same file: a new upload.
    let (status, body) = ann
        .check_with("a.bin", &data, json!({ "md5": "00".repeat(16) }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_ne!(body["upload"]["id"], id.as_str());
    // Another name while the first is being sent: a second upload, so that
    // two copies sent at once stay two files.
    let (status, body) = ann.check("b.bin", &data).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_ne!(body["upload"]["id"], id.as_str());
    // The resumed upload completes with the md5 of its first check verified.
    let up = json!({ "id": id, "chunk_size": cs });
    ann.send_chunks(&up, &data).await;
    let (status, body) = ann.complete(&id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["file"]["name"], "a.bin");
    assert_eq!(body["file"]["md5"].as_str(), Some(&*md5));
}
