//! The SQLite catalog under concurrent writers: the instant-upload check
//! (`find_blob` + `insert_file`) and `record_chunk`, each by 64 tasks at
//! once, on a durable catalog (`synchronous = FULL`) holding 10,000 blobs.
//!
//! One iteration is one round of 64 concurrent operations; criterion's
//! throughput line gives operations per second, and the time per
//! iteration is about the slowest operation's latency of the round.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tusk_catalog::SqliteCatalog;
use tusk_core::Catalog;
use tusk_core::catalog::{NewBlob, NewFiles};
use tusk_core::conformance::catalog::{new_file, upload};
use tusk_core::hash::ContentHash;
use tusk_core::model::{Blob, BlobId, ChunkRecord, Owner, Timestamp, UploadId};

const BLOBS: u32 = 10_000;
const CLIENTS: usize = 64;

fn hash(i: u32) -> ContentHash {
    ContentHash::of_bytes(&i.to_le_bytes())
}

/// A durable catalog with `BLOBS` blobs, one file each.
async fn fixture() -> (Arc<SqliteCatalog>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cat = SqliteCatalog::open(&dir.path().join("catalog.db"))
        .await
        .expect("open catalog");
    let owner = Owner("bench".to_owned());
    for start in (0..BLOBS).step_by(1000) {
        let range = start..(start + 1000).min(BLOBS);
        let blobs = range
            .clone()
            .map(|i| NewBlob {
                blob: Blob {
                    id: BlobId::random(),
                    hash: hash(i),
                    size: 1000 + u64::from(i),
                    md5: None,
                    sha256: None,
                },
                created_at: Timestamp(1_000),
            })
            .collect();
        let files = range
            .map(|i| (new_file(&owner, &format!("seed-{i}"), 1_000), hash(i)))
            .collect();
        cat.insert_files(&NewFiles { blobs, files })
            .await
            .expect("seed blobs");
    }
    (Arc::new(cat), dir)
}

/// Runs `iters` rounds of `CLIENTS` concurrent `op(client, round)`.
async fn rounds<F, Fut>(iters: u64, op: F) -> Duration
where
    F: Fn(usize, u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let start = Instant::now();
    for round in 0..iters {
        let tasks: Vec<_> = (0..CLIENTS).map(|c| tokio::spawn(op(c, round))).collect();
        for task in tasks {
            task.await.expect("task");
        }
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (cat, _dir) = rt.block_on(fixture());
    let owner = Owner("bench".to_owned());

    let mut group = c.benchmark_group("sqlite");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(CLIENTS as u64));

    let next = Arc::new(AtomicU32::new(0));
    group.bench_function("instant_upload_x64", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (cat, owner, next) = (cat.clone(), owner.clone(), next.clone());
            async move {
                rounds(iters, |_, _| {
                    let (cat, owner) = (cat.clone(), owner.clone());
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    async move {
                        let blob = cat
                            .find_blob(&hash(n.wrapping_mul(7919) % BLOBS))
                            .await
                            .expect("find_blob")
                            .expect("stored blob");
                        let file = new_file(&owner, &format!("copy-{n}"), 2_000);
                        cat.insert_file(&file, &blob.id).await.expect("insert_file");
                    }
                })
                .await
            }
        })
    });

    let uploads: Arc<Vec<UploadId>> = Arc::new(rt.block_on(async {
        let mut ids = Vec::new();
        for i in 0..CLIENTS {
            let up = upload(&owner, &format!("big-{i}"), Some(1 << 40), None);
            cat.insert_upload(&up).await.expect("insert_upload");
            ids.push(up.id);
        }
        ids
    }));
    let chunk_no = Arc::new(AtomicU32::new(0));
    group.bench_function("record_chunk_x64", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (cat, uploads, chunk_no) = (cat.clone(), uploads.clone(), chunk_no.clone());
            async move {
                let first = chunk_no.fetch_add(iters as u32, Ordering::Relaxed);
                rounds(iters, |client, round| {
                    let (cat, id) = (cat.clone(), uploads[client].clone());
                    let chunk = ChunkRecord {
                        index: first + round as u32,
                        digests: vec![[client as u8; 32], [round as u8; 32]],
                        receipt: String::new(),
                    };
                    async move {
                        cat.record_chunk(&id, &chunk, Timestamp(90_000))
                            .await
                            .expect("record_chunk");
                    }
                })
                .await
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
