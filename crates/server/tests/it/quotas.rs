//! Quotas and upload limits on every path that stores bytes: form posts
//! (small and streamed parts), tus uploads of deferred length (one or many
//! at once), concatenation, and the last gate when a file is recorded.
//! Each refusal is a 413 or 429 with its stable code, and leaves nothing
//! stored past the limit.

use crate::common;

use common::who::Who;
use common::{MIB, TestServer, random_bytes};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tusk_core::model::Timestamp;

/// A deferred-length tus upload of `who`; its path.
async fn deferred(who: &Who<'_>) -> String {
    let r = who
        .tus(Method::POST, "/tus/")
        .header("upload-defer-length", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.headers()["location"].to_str().unwrap().to_owned()
}

async fn patch(who: &Who<'_>, path: &str, offset: u64, bytes: Vec<u8>) -> StatusCode {
    who.tus(Method::PATCH, path)
        .header("upload-offset", offset.to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap()
        .status()
}

async fn offset(who: &Who<'_>, path: &str) -> u64 {
    let r = who.tus(Method::HEAD, path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.headers()["upload-offset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_posts_of_large_files_stop_at_the_quota() {
    let server = TestServer::start().await;
    let ann = Who::with_quota(&server, "ann", Some(10 * MIB as u64)).await;
    // One file past the quota, streamed (over 1 MiB): refused, nothing kept.
    let (status, body) = ann.post_form_raw("big.bin", &random_bytes(12 * MIB)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert!(ann.files().await.is_empty());
    assert_eq!((server.blob_count(), server.part_count()), (0, 0));
    // Within it: stored. Then the next one no longer fits.
    let (status, body) = ann
        .post_form(vec![("six.bin".into(), random_bytes(6 * MIB))])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = ann.post_form_raw("more.bin", &random_bytes(6 * MIB)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(ann.files().await.len(), 1);
    assert_eq!((server.blob_count(), server.part_count()), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_length_appends_at_once_never_pass_the_quota_together() {
    let server = TestServer::start().await;
    let quota = 16 * MIB as u64;
    let ann = Who::with_quota(&server, "ann", Some(quota)).await;
    let mut paths = Vec::new();
    for _ in 0..4 {
        paths.push(deferred(&ann).await);
    }
    // Four PATCHes of 6 MiB at once: 24 MiB against 16 MiB of quota.
    let sends = paths
        .iter()
        .map(|p| patch(&ann, p, 0, random_bytes(6 * MIB)));
    let statuses = futures::future::join_all(sends).await;
    assert!(
        statuses.contains(&StatusCode::PAYLOAD_TOO_LARGE),
        "{statuses:?}"
    );
    let mut held = 0;
    for p in &paths {
        held += offset(&ann, p).await;
    }
    assert!(held <= quota, "{held} bytes held against {quota}");
    // What is held counts, and what was reserved but not written is given
    // back: a new upload of the rest fits, one byte more does not.
    let rest = (quota - held) as usize;
    let (status, body) = ann.check("over.bin", &random_bytes(rest + 1)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (status, body) = ann.check("rest.bin", &random_bytes(rest)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_uploads_count_are_limited_and_expire() {
    let server = TestServer::start_with(|c| c.max_uploads_per_owner = 5).await;
    let ann = Who::with_quota(&server, "ann", Some(10 * MIB as u64)).await;
    let r = ann
        .tus(Method::POST, "/tus/")
        .header("upload-concat", "partial")
        .header("upload-length", (4 * MIB).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let part = r.headers()["location"].to_str().unwrap().to_owned();
    let part_path = part.strip_prefix(&server.base).unwrap_or(&part).to_owned();
    let final_of = |parts: Vec<&str>| {
        ann.tus(Method::POST, "/tus/")
            .header("upload-concat", format!("final;{}", parts.join(" ")))
            .send()
    };
    // The partial and four finals: five uploads in progress, the limit.
    let mut finals = Vec::new();
    for _ in 0..4 {
        let r = final_of(vec![&part_path]).await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        finals.push(r.headers()["location"].to_str().unwrap().to_owned());
    }
    let r = final_of(vec![&part_path]).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_uploads");

    // A final naming its 4 MiB part three times adds 8 MiB to the 4 the part
    // holds: past the 10 MiB quota. (One final less first, to make room.)
    let r = ann
        .tus(Method::DELETE, &finals.pop().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = final_of(vec![&part_path, &part_path, &part_path])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Finals expire like any upload once they and their parts sit idle.
    let later = Timestamp::now().plus(std::time::Duration::from_secs(3 * 24 * 3600));
    let swept = server.service.sweep_expired(later).await.unwrap();
    assert_eq!(swept, 1 + finals.len(), "the part and every final");
    for f in &finals {
        let r = ann.tus(Method::HEAD, f).send().await.unwrap();
        assert!(
            [StatusCode::GONE, StatusCode::NOT_FOUND].contains(&r.status()),
            "{}",
            r.status()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_is_checked_again_when_a_file_is_recorded() {
    let server = TestServer::start().await;
    let ann = Who::with_quota(&server, "ann", Some(20 * MIB as u64)).await;
    let data = random_bytes(8 * MIB + 5);
    let (status, body) = ann.check("a.bin", &data).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let up = body["upload"].clone();
    ann.send_chunks(&up, &data).await;
    // The quota shrinks below the upload while it is in progress.
    Who::with_quota(&server, "ann", Some(4 * MIB as u64)).await;
    let id = up["id"].as_str().unwrap();
    let (status, body) = ann.complete(id).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert!(ann.files().await.is_empty());
    // The upload stays, to complete once there is room again.
    let (status, _) = ann
        .send(ann.req(Method::GET, &format!("/api/v1/uploads/{id}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    Who::with_quota(&server, "ann", Some(20 * MIB as u64)).await;
    let (status, body) = ann.complete(id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
