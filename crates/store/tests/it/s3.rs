//! The S3 store against a real S3-compatible server (SeaweedFS, started by
//! `tests/backends/start`; its address comes in `TUSK_TEST_S3_ENDPOINT`):
//! the `BlobStore` conformance suite, then what only S3 needs — two store
//! values standing in for two nodes, staged pieces, and the start-up checks.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::ObjectStore;
use tusk_core::BlobStore;
use tusk_core::conformance::{collect, pattern};
use tusk_core::model::{BlobId, ChunkRecord, ChunkRef};
use tusk_core::store::{ChunkWriter, StoreError};
use tusk_store::{S3Config, S3Store};

const MIB: u64 = 1 << 20;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run scripts/test, or tests/backends/start DIR and source DIR/env"
        )
    })
}

/// A configuration of the test server under a fresh prefix.
fn config(prefix: &str) -> S3Config {
    S3Config {
        bucket: env("TUSK_TEST_S3_BUCKET"),
        prefix: prefix.to_owned(),
        endpoint: Some(env("TUSK_TEST_S3_ENDPOINT")),
        region: "us-east-1".into(),
        path_style: true,
        part_memory: tusk_store::s3::DEFAULT_PART_MEMORY,
    }
}

fn fresh_prefix() -> String {
    format!("test-{}", BlobId::random())
}

async fn fresh_store() -> (Arc<dyn BlobStore>, ()) {
    let store = S3Store::open(&config(&fresh_prefix()))
        .await
        .expect("open the S3 store");
    (Arc::new(store), ())
}

tusk_core::blob_store_conformance!(fresh_store);

/// Two store values on one prefix: two nodes.
async fn two_nodes() -> (S3Store, S3Store, String) {
    let prefix = fresh_prefix();
    let a = S3Store::open(&config(&prefix)).await.unwrap();
    let b = S3Store::open(&config(&prefix)).await.unwrap();
    (a, b, prefix)
}

/// Every key under `prefix`, relative to it.
async fn keys(prefix: &str) -> Vec<String> {
    let raw = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(env("TUSK_TEST_S3_BUCKET"))
        .with_endpoint(env("TUSK_TEST_S3_ENDPOINT"))
        .with_region("us-east-1")
        .with_allow_http(true)
        .build()
        .unwrap();
    let listed: Vec<_> = raw.list(Some(&prefix.into())).try_collect().await.unwrap();
    let mut keys: Vec<String> = listed
        .into_iter()
        .map(|m| m.location.as_ref()[prefix.len() + 1..].to_owned())
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn any_node_adds_parts_and_completes() {
    let (a, b, prefix) = two_nodes().await;
    let cs = a.min_chunk_size();
    assert_eq!(cs, 8 * MIB);
    let size = 2 * cs + 12345;
    let data = pattern(21, size as usize);
    let staging = a.begin(&BlobId::random(), Some(size)).await.unwrap();
    let mut records = Vec::new();
    for (index, node) in [(0u32, &b), (1, &a), (2, &b)] {
        let offset = index as u64 * cs;
        let chunk = ChunkRef {
            index,
            offset,
            len: cs.min(size - offset),
        };
        let mut w = node.open_chunk(&staging, chunk, 0).await.unwrap();
        w.write(
            data[offset as usize..(offset + chunk.len) as usize]
                .to_vec()
                .into(),
        )
        .await
        .unwrap();
        records.push(ChunkRecord {
            index,
            digests: vec![],
            receipt: w.finish().await.unwrap(),
        });
    }
    b.commit(&staging, size, &records).await.unwrap();
    // A second commit (a retry on the other node) succeeds too.
    a.commit(&staging, size, &records).await.unwrap();
    let got = collect(a.read(&staging.blob, 0..size).await.unwrap())
        .await
        .unwrap();
    assert!(got == data, "the assembled blob differs");
    // Nothing staged is left: the blob and the store's marker only.
    assert_eq!(
        keys(&prefix).await,
        vec![format!("blobs/{}", staging.blob), "tusk-store".to_owned()]
    );
}

#[tokio::test]
async fn small_appends_are_staged_until_the_part_is_full() {
    let (a, b, prefix) = two_nodes().await;
    let cs = a.min_chunk_size();
    let data = pattern(22, cs as usize);
    let staging = a.begin(&BlobId::random(), None).await.unwrap();
    let chunk = ChunkRef {
        index: 0,
        offset: 0,
        len: cs,
    };
    // Appends of 1 MiB, 1 byte and 3 MiB, alternating nodes, each synced.
    let cuts = [0, MIB, MIB + 1, 4 * MIB + 1];
    for (i, w) in cuts.windows(2).enumerate() {
        let node = if i % 2 == 0 { &a } else { &b };
        let mut writer = node.open_chunk(&staging, chunk, w[0]).await.unwrap();
        writer
            .write(data[w[0] as usize..w[1] as usize].to_vec().into())
            .await
            .unwrap();
        writer.sync().await.unwrap();
    }
    let staged = keys(&prefix).await;
    let dir = format!("staging/{}", staging.blob);
    for piece in ["0/0", "0/1048576", "0/1048577", "upload"] {
        assert!(
            staged.contains(&format!("{dir}/{piece}")),
            "{piece} in {staged:?}"
        );
    }
    // The last append fills the part.
    let mut writer = a.open_chunk(&staging, chunk, 4 * MIB + 1).await.unwrap();
    writer
        .write(data[(4 * MIB + 1) as usize..].to_vec().into())
        .await
        .unwrap();
    let receipt = writer.finish().await.unwrap();
    let record = ChunkRecord {
        index: 0,
        digests: vec![],
        receipt,
    };
    b.commit(&staging, cs, &[record]).await.unwrap();
    let got = collect(b.read(&staging.blob, 0..cs).await.unwrap())
        .await
        .unwrap();
    assert!(got == data, "the part assembled from pieces differs");
    assert_eq!(keys(&prefix).await.len(), 2, "pieces left after commit");
}

#[tokio::test]
async fn abort_ends_the_multipart_upload() {
    let (a, b, prefix) = two_nodes().await;
    let staging = a.begin(&BlobId::random(), Some(100)).await.unwrap();
    let chunk = ChunkRef {
        index: 0,
        offset: 0,
        len: 100,
    };
    let mut w = a.open_chunk(&staging, chunk, 0).await.unwrap();
    w.write(vec![1u8; 40].into()).await.unwrap();
    w.sync().await.unwrap();
    b.abort(&staging).await.unwrap();
    assert_eq!(keys(&prefix).await, vec!["tusk-store".to_owned()]);
    let err = a
        .open_chunk(&staging, chunk, 0)
        .await
        .err()
        .expect("aborted");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    a.abort(&staging).await.unwrap();
}

#[tokio::test]
async fn open_refuses_an_unreachable_store() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let unreachable = S3Config {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        ..config(&fresh_prefix())
    };
    S3Store::open(&unreachable)
        .await
        .err()
        .expect("nothing listens");
}

/// A store with room for `memory` bytes of parts.
async fn store_with_part_memory(memory: u64) -> S3Store {
    S3Store::open(&S3Config {
        part_memory: memory,
        ..config(&fresh_prefix())
    })
    .await
    .unwrap()
}

/// Writes `bytes` in batches of 512 KiB, as the service does; checks after
/// each that parts in memory stay within `limit`.
async fn write_batches(w: &mut dyn ChunkWriter, store: &S3Store, bytes: &[u8], limit: u64) {
    for batch in bytes.chunks(512 << 10) {
        w.write(batch.to_vec().into()).await.unwrap();
        assert!(store.part_memory_in_use() <= limit);
    }
}

#[tokio::test]
async fn a_slow_part_holds_only_what_it_received() {
    // Room for one 8 MiB part only.
    let store = store_with_part_memory(8 * MIB).await;
    let cs = store.min_chunk_size();
    let size = 2 * cs;
    let data = pattern(30, size as usize);
    let staging = store.begin(&BlobId::random(), Some(size)).await.unwrap();
    let chunk = move |index: u32| ChunkRef {
        index,
        offset: index as u64 * cs,
        len: cs,
    };
    // A chunk whose client sends slowly: 4 KiB so far.
    let mut slow = store.open_chunk(&staging, chunk(0), 0).await.unwrap();
    slow.write(data[..4096].to_vec().into()).await.unwrap();
    assert_eq!(store.part_memory_in_use(), 4096);
    // Another chunk goes through meanwhile, its last bytes past the room
    // spilled to a temporary file.
    let open = store.open_chunk(&staging, chunk(1), 0);
    let mut fast = tokio::time::timeout(std::time::Duration::from_secs(30), open)
        .await
        .expect("a slow part kept another from starting")
        .unwrap();
    write_batches(fast.as_mut(), &store, &data[cs as usize..], 8 * MIB).await;
    let second = fast.finish().await.unwrap();
    assert_eq!(
        store.part_memory_in_use(),
        4096,
        "the slow part still holds its own"
    );
    // The slow chunk ends.
    write_batches(slow.as_mut(), &store, &data[4096..cs as usize], 8 * MIB).await;
    let first = slow.finish().await.unwrap();
    assert_eq!(store.part_memory_in_use(), 0);
    let records = [(0, first), (1, second)].map(|(index, receipt)| ChunkRecord {
        index,
        digests: vec![],
        receipt,
    });
    store.commit(&staging, size, &records).await.unwrap();
    let got = collect(store.read(&staging.blob, 0..size).await.unwrap())
        .await
        .unwrap();
    assert!(got == data, "the assembled blob differs");
}

#[tokio::test]
async fn spilled_appends_and_pieces_make_the_part() {
    // Room for 1 MiB: every append spills.
    let store = store_with_part_memory(MIB).await;
    let cs = store.min_chunk_size();
    let data = pattern(32, cs as usize);
    let staging = store.begin(&BlobId::random(), Some(cs)).await.unwrap();
    let chunk = ChunkRef {
        index: 0,
        offset: 0,
        len: cs,
    };
    let cut = 3 * MIB as usize + 5;
    let mut first = store.open_chunk(&staging, chunk, 0).await.unwrap();
    write_batches(first.as_mut(), &store, &data[..cut], MIB).await;
    first.sync().await.unwrap();
    assert_eq!(store.part_memory_in_use(), 0);
    let mut rest = store.open_chunk(&staging, chunk, cut as u64).await.unwrap();
    write_batches(rest.as_mut(), &store, &data[cut..], MIB).await;
    let receipt = rest.finish().await.unwrap();
    let records = [ChunkRecord {
        index: 0,
        digests: vec![],
        receipt,
    }];
    store.commit(&staging, cs, &records).await.unwrap();
    let got = collect(store.read(&staging.blob, 0..cs).await.unwrap())
        .await
        .unwrap();
    assert!(got == data, "the assembled blob differs");
}
