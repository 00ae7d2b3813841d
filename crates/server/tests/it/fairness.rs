//! Slow clients cannot starve the others: 64 chunk PUTs that drip a few
//! bytes at a time into a server with the smallest buffer budget hold
//! their own connections open, and a fast upload of tens of MiB goes
//! through beside them while they are all still dripping.

use crate::common;

use std::time::Duration;

use common::tus::send_head;
use common::{MIB, TestServer, random_bytes};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{mpsc, watch};

const DRIPS: usize = 64;
/// What each drip sends at a time, and how often.
const DRIP: &[u8] = b"drip";
const EVERY: Duration = Duration::from_millis(50);
/// Rounds every drip has sent before the fast upload starts: by then the
/// server reads all of them.
const WARM_UP: usize = 10;

/// Starts one dripping chunk PUT of a 1 MiB upload of its own; returns the
/// read half of its connection and the task that drips until told to stop.
async fn drip(
    server: &TestServer,
    seed: usize,
    warm: mpsc::Sender<()>,
    mut stop: watch::Receiver<bool>,
) -> (OwnedReadHalf, tokio::task::JoinHandle<usize>) {
    let mut data = random_bytes(MIB);
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
        drips.push(drip(&server, seed, warm.clone(), stopped.clone()).await);
    }
    for _ in 0..DRIPS {
        warmed.recv().await.unwrap();
    }

    let data = random_bytes(32 * MIB);
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
