//! The disk store's chunk path: one 64 MiB chunk written in 512 KiB
//! batches through `open_chunk` + `write` + `finish`, as the service does.
//!
//! - "aligned": batches that start on a 4 KiB boundary in memory, as the
//!   service's buffer budget hands them out; with `O_DIRECT` they go to
//!   the device without a copy.
//! - "unaligned": the same bytes one byte off a boundary; the writer must
//!   copy them into aligned buffers first (every batch, before the
//!   budget's batches were aligned).
//!
//! Without fsync (`FsStore::without_fsync`). What is timed is the CPU the
//! process spends (user + system, all threads, from `getrusage`), not the
//! wall clock: the writes run at the device's pace either way, and what a
//! copy costs shows where the CPU is shared — with the network, hashing,
//! other uploads. Criterion's throughput line thus reads "bytes per
//! CPU-second".

use aligned_vec::{AVec, RuntimeAlign};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tusk_core::BlobStore;
use tusk_core::model::{BlobId, ChunkRef};
use tusk_store::FsStore;

const CHUNK: usize = 64 << 20;
const BATCH: usize = 512 << 10;

/// The chunk as batches, each starting `skew` bytes past a 4 KiB boundary.
fn batches(skew: usize) -> Vec<Bytes> {
    (0..CHUNK / BATCH)
        .map(|i| {
            let mut buf: AVec<u8, RuntimeAlign> = AVec::with_capacity(4096, BATCH + skew);
            buf.resize(BATCH + skew, i as u8);
            Bytes::from_owner(buf).slice(skew..)
        })
        .collect()
}

fn chunk_write(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FsStore::open(dir.path()).expect("store").without_fsync();
    let mut group = c.benchmark_group("chunk_write_64MiB");
    group
        .sample_size(10)
        .throughput(Throughput::Bytes(CHUNK as u64));
    for (name, skew) in [("aligned", 0), ("unaligned", 1)] {
        let data = batches(skew);
        group.bench_function(name, |b| {
            let (store, data) = (&store, &data);
            b.to_async(&runtime).iter_custom(|iters| async move {
                let mut spent = std::time::Duration::ZERO;
                for _ in 0..iters {
                    let before = cpu_time();
                    write_chunk(store, data).await;
                    spent += cpu_time() - before;
                }
                spent
            })
        });
    }
    group.finish();
}

/// One chunk through the store, as the service writes it.
async fn write_chunk(store: &FsStore, data: &[Bytes]) {
    let staging = store
        .begin(&BlobId::random(), Some(CHUNK as u64))
        .await
        .expect("begin");
    let chunk = ChunkRef {
        index: 0,
        offset: 0,
        len: CHUNK as u64,
    };
    let mut writer = store.open_chunk(&staging, chunk, 0).await.expect("open");
    for batch in data {
        writer.write(batch.clone()).await.expect("write");
    }
    writer.finish().await.expect("finish");
    store.abort(&staging).await.expect("abort");
}

/// User + system CPU time of this process so far, all threads.
fn cpu_time() -> std::time::Duration {
    // SAFETY: getrusage fills the struct it is given; nothing else.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        std::time::Duration::from_secs(t.tv_sec as u64)
            + std::time::Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

criterion_group!(benches, chunk_write);
criterion_main!(benches);
