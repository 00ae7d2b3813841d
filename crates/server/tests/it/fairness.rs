//! Slow clients cannot starve the others: 64 chunk PUTs that drip a few
//! bytes at a time into a server with the smallest buffer budget hold
//! their own connections open, and a fast upload of tens of MiB goes
//! through beside them while they are all still dripping. On S3, a chunk
//! sent slowly holds no part memory it has not received: another upload
//! goes through beside it with room for just one part.

use crate::common;

use std::time::Duration;

use common::tus::send_head;
use common::{MIB, TestServer, random_bytes};
use sqlx::Connection;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{mpsc, watch};
use tusk_server::{CatalogUrl, StoreUrl};

const DRIPS: usize = 64;
/// What each drip sends at a time, and how often.
const DRIP: &[u8] = b"drip";
const EVERY: Duration = Duration::from_millis(50);
/// Rounds every drip has sent before the fast upload starts: by then the
/// server reads all of them.
const WARM_UP: usize = 10;

/// Starts one dripping chunk PUT of a `size` upload of its own (one
/// chunk); returns the read half of its connection and the task that drips
/// until told to stop.
async fn drip(
    server: &TestServer,
    seed: usize,
    size: usize,
    warm: mpsc::Sender<()>,
    mut stop: watch::Receiver<bool>,
) -> (OwnedReadHalf, tokio::task::JoinHandle<usize>) {
    let mut data = random_bytes(size);
    data[..8].copy_from_slice(&(seed as u64).to_le_bytes());
    let upload = server
        .start_upload(&format!("slow-{seed}.bin"), &data)
        .await;
    let id = upload["id"].as_str().unwrap();
    let mut conn = server.connect().await;
    let head = [
        format!("PUT /api/v1/uploads/{id}/chunks/0 HTTP/1.1"),
        format!("Host: {}", server.base.trim_start_matches("http://")),
        format!("Content-Length: {}", data.len()),
    ];
    send_head(&mut conn, &head).await;
    let (read, mut write) = conn.into_split();
    let task = tokio::spawn(async move {
        let mut rounds = 0;
        while !*stop.borrow() {
            write
                .write_all(DRIP)
                .await
                .expect("the server keeps reading");
            rounds += 1;
            if rounds == WARM_UP {
                warm.send(()).await.unwrap();
            }
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = stop.changed() => {}
            }
        }
        rounds
    });
    (read, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_upload_goes_through_beside_64_drips() {
    let server = TestServer::start_with(|c| {
        // The smallest budget there is: two batches.
        c.buffer_memory = MIB as u64;
        // Drips are far below any sane rate; they are not cut off here.
        c.min_rate = 0;
    })
    .await;
    let (warm, mut warmed) = mpsc::channel(DRIPS);
    let (stop, stopped) = watch::channel(false);
    let mut drips = Vec::new();
    for seed in 0..DRIPS {
        drips.push(drip(&server, seed, MIB, warm.clone(), stopped.clone()).await);
    }
    for _ in 0..DRIPS {
        warmed.recv().await.unwrap();
    }

    fast_upload_beside(&server, 32 * MIB, drips, stop).await;
}

/// Uploads `size` bytes through the JSON API while `drips` drip, then
/// checks that every drip is still going and stops them.
async fn fast_upload_beside(
    server: &TestServer,
    size: usize,
    drips: Vec<(OwnedReadHalf, tokio::task::JoinHandle<usize>)>,
    stop: watch::Sender<bool>,
) {
    let data = random_bytes(size);
    let fast = tokio::time::timeout(Duration::from_secs(120), server.upload("fast.bin", &data))
        .await
        .expect("the fast upload is stuck behind the drips");
    assert_eq!(server.download(&fast).await, data);

    // Every drip is still going: its task still sends, and the server has
    // neither answered it nor closed its connection.
    for (read, task) in &drips {
        assert!(!task.is_finished(), "a drip stopped early");
        let mut byte = [0u8; 1];
        match read.try_read(&mut byte) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("the server answered or closed a drip: {other:?}"),
        }
    }
    stop.send(true).unwrap();
    for (_, task) in drips {
        assert!(task.await.unwrap() >= WARM_UP);
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run scripts/test, or tests/backends/start DIR and source DIR/env"
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_chunk_on_s3_does_not_hold_back_another_upload() {
    // A fresh database and prefix on the test backends.
    let admin = env("TUSK_TEST_POSTGRES");
    let name = format!("tusk_fair_{}", tusk_core::model::BlobId::random());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let (before_query, query) = admin.split_once('?').unwrap_or((&admin, ""));
    let (host, _) = before_query.rsplit_once('/').unwrap();
    let catalog = format!("{host}/{name}?{query}");
    let server = TestServer::start_with(|c| {
        c.store = Some(StoreUrl::S3 {
            bucket: env("TUSK_TEST_S3_BUCKET"),
            prefix: name.clone(),
        });
        c.catalog = Some(CatalogUrl::Postgres(catalog));
        c.s3_endpoint = Some(env("TUSK_TEST_S3_ENDPOINT"));
        // Room for one 8 MiB part.
        c.s3_part_memory = 8 * MIB as u64;
        c.min_rate = 0;
    })
    .await;
    let (warm, mut warmed) = mpsc::channel(1);
    let (stop, stopped) = watch::channel(false);
    let slow = drip(&server, 0, 8 * MIB, warm, stopped).await;
    warmed.recv().await.unwrap();
    fast_upload_beside(&server, 16 * MIB, vec![slow], stop).await;
}
