//! The sweeper: an upload idle past its expiry is ended and its staging
//! discarded — a part file on disk, a multipart upload and its pieces on
//! S3 — while an upload resumed in time is kept and completes; staging and
//! blobs no record names (a node died in between) are discarded once old
//! enough, while a stored file's blob and a finished partial upload's blob
//! stay. Time is not waited for: the sweep is asked about a moment in the
//! future.

use crate::common;

use std::time::Duration;

use common::tus::{OCTETS, location};
use common::{MIB, TestServer, random_bytes};
use futures::TryStreamExt;
use object_store::ObjectStore;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::Connection;
use tusk_core::BlobStore;
use tusk_core::model::{BlobId, Timestamp};
use tusk_core::service::ORPHAN_AGE;
use tusk_server::{CatalogUrl, StoreUrl};
use tusk_store::{S3Config, S3Store};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run scripts/test, or tests/backends/start DIR and source DIR/env"
        )
    })
}

/// When an upload (as JSON) expires.
fn expiry(upload: &Value) -> Timestamp {
    let text = upload["expires_at"].as_str().unwrap();
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    Timestamp((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn chunk(data: &[u8], index: usize) -> Vec<u8> {
    data[index * 8 * MIB..((index + 1) * 8 * MIB).min(data.len())].to_vec()
}

/// Two uploads with a chunk each; the second is resumed later. A sweep at
/// the first one's expiry ends it and keeps the second, which completes.
/// Returns after the sweep, with the state of the first upload's staging
/// for the caller to check.
async fn expire_one_keep_one(s: &TestServer, staged: impl AsyncFn() -> usize) {
    let (old, kept) = (random_bytes(20 * MIB + 1), random_bytes(20 * MIB + 2));
    let old_up = s.start_upload("old.bin", &old).await;
    let old_id = old_up["id"].as_str().unwrap().to_owned();
    let (status, body) = s.put_chunk(&old_id, 0, chunk(&old, 0)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let kept_up = s.start_upload("kept.bin", &kept).await;
    let kept_id = kept_up["id"].as_str().unwrap().to_owned();
    s.put_chunk(&kept_id, 0, chunk(&kept, 0)).await;
    let (_, old_up) = s.get_json(&format!("/api/v1/uploads/{old_id}")).await;
    let due = expiry(&old_up["upload"]);
    assert_eq!(staged().await, 2, "both uploads staged");

    // Before the expiry, nothing is swept.
    let early = Timestamp(due.0 - 60_000);
    assert_eq!(s.service.sweep_expired(early).await.unwrap(), 0);
    // The second upload is resumed: its expiry moves past the first's.
    let (_, resumed) = s.put_chunk(&kept_id, 1, chunk(&kept, 1)).await;
    assert!(expiry(&resumed["upload"]).0 > due.0, "the expiry moved on");

    assert_eq!(s.service.sweep_expired(due).await.unwrap(), 1);
    let (status, body) = s.get_json(&format!("/api/v1/uploads/{old_id}")).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["error"]["code"], "upload_gone", "{body}");
    assert_eq!(staged().await, 1, "the expired upload's staging is gone");
    // A second sweep finds nothing more.
    assert_eq!(s.service.sweep_expired(due).await.unwrap(), 0);

    let (status, body) = s.put_chunk(&kept_id, 2, chunk(&kept, 2)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s.complete(&kept_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Staging that a node left behind without a catalog record (here: begun
/// through a second handle on the same store, as a node that died before
/// recording its upload) is discarded once old enough; a live upload's is
/// kept and the upload completes.
async fn orphans_go_live_uploads_stay(
    s: &TestServer,
    other: &dyn BlobStore,
    staged: impl AsyncFn() -> usize,
) {
    let data = random_bytes(9 * MIB);
    let live = s.start_upload("live.bin", &data).await;
    let live_id = live["id"].as_str().unwrap().to_owned();
    s.put_chunk(&live_id, 0, chunk(&data, 0)).await;
    other.begin(&BlobId::random(), Some(123)).await.unwrap();
    assert_eq!(staged().await, 2);
    // Young staging is left alone: it may be an upload about to be recorded.
    assert_eq!(s.service.sweep_orphans(Timestamp::now()).await.unwrap(), 0);
    let later = Timestamp::now().plus(ORPHAN_AGE + Duration::from_secs(60));
    assert_eq!(s.service.sweep_orphans(later).await.unwrap(), 1);
    assert_eq!(
        staged().await,
        1,
        "the orphan is gone, the live upload stays"
    );
    assert_eq!(s.service.sweep_orphans(later).await.unwrap(), 0);
    let (status, body) = s.put_chunk(&live_id, 1, chunk(&data, 1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s.complete(&live_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A blob written through a second handle on the same store, as a node
/// that died before recording it (or failed to delete it) leaves one, is
/// deleted by a sweep once older than the orphan age; while young it is
/// kept. Owned blobs stay however old: a stored file's, and a finished tus
/// partial upload's (committed into its own blob, waiting for its final
/// upload), which is then concatenated into a file.
async fn orphan_blobs_go_owned_ones_stay(
    s: &TestServer,
    other: &dyn BlobStore,
    blobs: impl AsyncFn() -> usize,
) {
    let stored = random_bytes(MIB + 3);
    let file = s.upload("stored.bin", &stored).await;
    let part = random_bytes(1000);
    let r = s
        .tus(Method::POST, "/tus/")
        .header("upload-concat", "partial")
        .header("upload-length", part.len())
        .header("content-type", OCTETS)
        .body(part.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let part_path = location(&r);
    let orphan = BlobId::random();
    other
        .put_blobs(&[(orphan.clone(), random_bytes(777).into())])
        .await
        .unwrap();
    assert_eq!(blobs().await, 3, "the file's, the part's and the orphan");

    // Young: it may be a blob about to be recorded.
    let now = Timestamp::now();
    assert_eq!(s.service.sweep_orphan_blobs(now).await.unwrap(), 0);
    assert_eq!(blobs().await, 3);
    let later = now.plus(ORPHAN_AGE + Duration::from_secs(60));
    assert_eq!(s.service.sweep_orphan_blobs(later).await.unwrap(), 1);
    assert_eq!(blobs().await, 2, "the orphan is gone, owned blobs stay");
    let err = other.read(&orphan, 0..777).await.err().expect("deleted");
    assert!(
        matches!(err, tusk_core::store::StoreError::NotFound),
        "{err:?}"
    );
    assert_eq!(s.service.sweep_orphan_blobs(later).await.unwrap(), 0);

    assert!(s.download(&file).await == stored);
    let r = s
        .tus(Method::POST, "/tus/")
        .header("upload-concat", format!("final;{part_path}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let joined = s.tus_file(&location(&r)).await;
    assert!(s.download(&joined).await == part);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_blobs_are_swept_on_disk() {
    let s = TestServer::start().await;
    let other = tusk_store::FsStore::open(s.data()).unwrap();
    orphan_blobs_go_owned_ones_stay(&s, &other, async || s.blob_count()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_blobs_are_swept_on_s3_and_postgres() {
    let (s, config, _) = on_s3().await;
    let other = S3Store::open(&config).await.unwrap();
    let s3 = raw_s3();
    let prefix = config.prefix.clone();
    let blobs = async || {
        let listed: Vec<_> = s3
            .list(Some(&format!("{prefix}/blobs").into()))
            .try_collect()
            .await
            .unwrap();
        listed.len()
    };
    orphan_blobs_go_owned_ones_stay(&s, &other, blobs).await;
}

/// The orphan age is the operator's: with `--orphan-age 0s`, an unowned
/// blob is an orphan at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orphan_age_is_a_setting() {
    let s = TestServer::start_with(|c| c.orphan_age = Duration::ZERO).await;
    let kept = s.upload("kept.bin", &random_bytes(10)).await;
    let other = tusk_store::FsStore::open(s.data()).unwrap();
    other
        .put_blobs(&[(BlobId::random(), random_bytes(10).into())])
        .await
        .unwrap();
    assert_eq!(s.blob_count(), 2);
    // A moment later than the blob's time, not an hour.
    let now = Timestamp::now().plus(Duration::from_millis(5));
    assert_eq!(s.service.sweep_orphan_blobs(now).await.unwrap(), 1);
    assert_eq!(s.blob_count(), 1);
    assert_eq!(s.download(&kept).await.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_uploads_are_swept_on_disk() {
    let s = TestServer::start_with(|c| c.upload_ttl = Duration::from_secs(3600)).await;
    expire_one_keep_one(&s, async || s.part_count()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_part_files_are_swept() {
    let s = TestServer::start().await;
    let other = tusk_store::FsStore::open(s.data()).unwrap();
    orphans_go_live_uploads_stay(&s, &other, async || s.part_count()).await;
}

/// A server on S3 + PostgreSQL (a fresh database and prefix), its S3
/// configuration, and a count of the uploads staged under its prefix.
async fn on_s3() -> (TestServer, S3Config, impl AsyncFn() -> usize) {
    // A fresh database and a fresh prefix.
    let admin = env("TUSK_TEST_POSTGRES");
    let name = format!("tusk_sweep_{}", tusk_core::model::BlobId::random());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let (before_query, query) = admin.split_once('?').unwrap_or((&admin, ""));
    let (server, _) = before_query.rsplit_once('/').unwrap();
    let catalog = format!("{server}/{name}?{query}");
    let bucket = env("TUSK_TEST_S3_BUCKET");
    let prefix = name.clone();
    let s = TestServer::start_with(|c| {
        c.store = Some(StoreUrl::S3 {
            bucket: bucket.clone(),
            prefix: prefix.clone(),
        });
        c.catalog = Some(CatalogUrl::Postgres(catalog));
        c.s3_endpoint = Some(env("TUSK_TEST_S3_ENDPOINT"));
    })
    .await;
    let s3 = raw_s3();
    // Uploads with something staged: one `staging/<blob>/upload` marker
    // each, which goes with the multipart upload.
    let listed_prefix = prefix.clone();
    let staged = async move || {
        let listed: Vec<_> = s3
            .list(Some(&format!("{listed_prefix}/staging").into()))
            .try_collect()
            .await
            .unwrap();
        listed
            .iter()
            .filter(|m| m.location.filename() == Some("upload"))
            .count()
    };
    let config = S3Config {
        bucket,
        prefix,
        endpoint: Some(env("TUSK_TEST_S3_ENDPOINT")),
        region: "us-east-1".into(),
        path_style: true,
        part_memory: tusk_store::s3::DEFAULT_PART_MEMORY,
    };
    (s, config, staged)
}

/// The test bucket, reached directly.
fn raw_s3() -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(env("TUSK_TEST_S3_BUCKET"))
        .with_endpoint(env("TUSK_TEST_S3_ENDPOINT"))
        .with_region("us-east-1")
        .with_allow_http(true)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_uploads_are_swept_on_s3_and_postgres() {
    let (s, _, staged) = on_s3().await;
    expire_one_keep_one(&s, staged).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_multipart_uploads_are_aborted() {
    let (s, config, staged) = on_s3().await;
    let other = S3Store::open(&config).await.unwrap();
    orphans_go_live_uploads_stay(&s, &other, staged).await;
}
