//! Batches of whole blobs (`BlobStore::put_blobs`): the trait's default,
//! which stages and commits each blob, held to the whole conformance suite
//! over the local-disk store; and what a failed batch leaves behind.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tusk_core::BlobStore;
use tusk_core::model::{BlobId, ChunkRecord, ChunkRef, Staging, Timestamp};
use tusk_core::store::{BlobIds, ByteStream, ChunkWriter, StoreError, StoreResult};
use tusk_store::FsStore;

/// The local-disk store without its own `put_blobs`: the default runs.
struct Staged(FsStore);

#[async_trait]
impl BlobStore for Staged {
    async fn begin(&self, blob: &BlobId, size: Option<u64>) -> StoreResult<Staging> {
        self.0.begin(blob, size).await
    }

    async fn open_chunk(
        &self,
        staging: &Staging,
        chunk: ChunkRef,
        start: u64,
    ) -> StoreResult<Box<dyn ChunkWriter>> {
        self.0.open_chunk(staging, chunk, start).await
    }

    async fn commit(
        &self,
        staging: &Staging,
        size: u64,
        chunks: &[ChunkRecord],
    ) -> StoreResult<()> {
        self.0.commit(staging, size, chunks).await
    }

    async fn staged_before(&self, before: Timestamp) -> StoreResult<Vec<Staging>> {
        self.0.staged_before(before).await
    }

    fn blobs_before(&self, before: Timestamp) -> BlobIds {
        self.0.blobs_before(before)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.0.ping().await
    }

    async fn abort(&self, staging: &Staging) -> StoreResult<()> {
        self.0.abort(staging).await
    }

    async fn read(&self, blob: &BlobId, range: Range<u64>) -> StoreResult<ByteStream> {
        self.0.read(blob, range).await
    }

    async fn delete(&self, blob: &BlobId) -> StoreResult<()> {
        self.0.delete(blob).await
    }
}

async fn fresh_staged() -> (Arc<dyn BlobStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FsStore::open(dir.path().join("data")).expect("open store");
    (Arc::new(Staged(store)), dir)
}

tusk_core::blob_store_conformance!(fresh_staged);

fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                files_under(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// Puts a batch whose middle blob cannot be written (its id is staged
/// already), and checks that none of the others is left.
async fn failed_batch_leaves_nothing(store: Arc<dyn BlobStore>, data: &Path) {
    let ids = [BlobId::random(), BlobId::random(), BlobId::random()];
    store.begin(&ids[1], Some(5)).await.unwrap();
    let blobs: Vec<(BlobId, Bytes)> = ids
        .iter()
        .map(|id| (id.clone(), Bytes::from_static(b"hello")))
        .collect();
    store.put_blobs(&blobs).await.unwrap_err();
    for id in [&ids[0], &ids[2]] {
        let err = store.read(id, 0..5).await.err().expect("blob removed");
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
    assert_eq!(files_under(&data.join("blobs")), 0, "no blob left");
    assert_eq!(
        files_under(&data.join("parts")),
        1,
        "only the staged upload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Arc::new(FsStore::open(&data).unwrap());
    failed_batch_leaves_nothing(store, &data).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_default_batch_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Arc::new(Staged(FsStore::open(&data).unwrap()));
    failed_batch_leaves_nothing(store, &data).await;
}
