//! The `BlobStore` trait: where bytes live.
//!
//! A store holds two kinds of objects: *staged* uploads, written chunk by
//! chunk, and *blobs*, finished immutable content. Keys are opaque
//! [`BlobId`]s chosen by the core; content addressing lives in the catalog,
//! so a store never renames or copies a finished object by hash.
//!
//! Who validates what: the core decides chunk boundaries, offsets, lengths
//! and ordering, and guarantees that at most one writer is open on any chunk
//! at a time and that nothing is written to a chunk the catalog already
//! recorded. A store only has to keep writes inside the chunk it opened and
//! make them durable when asked.
//!
//! Small whole files skip staging: [`BlobStore::put_blobs`] stores many at
//! once, so that a backend can make them durable together.
//!
//! The sweeper finds what a crash left behind by listing both kinds of
//! objects by age ([`BlobStore::staged_before`], [`BlobStore::blobs_before`])
//! and asking the catalog which of them a record still names.

use std::ops::Range;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::model::{BlobId, ChunkRecord, ChunkRef, Staging, Timestamp};

/// How many blobs the default [`BlobStore::put_blobs`] stores at a time.
const PUT_PARALLEL: usize = 8;

/// A stream of bytes, as read from a store or received from a client.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A stream of blob ids, as a store lists them.
pub type BlobIds = Pin<Box<dyn Stream<Item = StoreResult<BlobId>> + Send>>;

/// Errors of a store backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The staged upload or blob does not exist.
    #[error("not found in the blob store")]
    NotFound,
    /// A write would cross the end of the chunk it was opened for.
    #[error("write past the end of the chunk")]
    OutOfBounds,
    /// The device is full.
    #[error("the blob store is out of space")]
    Full,
    #[error("blob store I/O: {0}")]
    Io(#[source] std::io::Error),
    #[error("blob store: {0}")]
    Backend(String),
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound,
            std::io::ErrorKind::StorageFull => StoreError::Full,
            _ => StoreError::Io(e),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Storage for staged uploads and finished blobs.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// The smallest chunk size this store can take (e.g. S3's 5 MiB part
    /// minimum). Always a multiple of 4 MiB.
    fn min_chunk_size(&self) -> u64 {
        crate::hash::BLOCK_SIZE
    }

    /// Prepares staging for a new upload of `size` bytes (`None` while the
    /// length is unknown) that will become `blob`. Durable on return.
    async fn begin(&self, blob: &BlobId, size: Option<u64>) -> StoreResult<Staging>;

    /// Opens chunk `chunk` of a staged upload for writing, starting `start`
    /// bytes into the chunk. `start > 0` continues a chunk whose first
    /// `start` bytes were written and synced earlier (an append that stopped
    /// mid-chunk). The core guarantees one writer per chunk at a time.
    async fn open_chunk(
        &self,
        staging: &Staging,
        chunk: ChunkRef,
        start: u64,
    ) -> StoreResult<Box<dyn ChunkWriter>>;

    /// Turns a staged upload into the blob `staging.blob` holding exactly
    /// `size` bytes; `chunks` are the recorded chunks in order. Idempotent: a
    /// repeated commit of an already committed upload succeeds. Durable on
    /// return.
    async fn commit(&self, staging: &Staging, size: u64, chunks: &[ChunkRecord])
    -> StoreResult<()>;

    /// Discards a staged upload. Succeeds if it is already gone.
    async fn abort(&self, staging: &Staging) -> StoreResult<()>;

    /// Staged uploads last begun or written before `before`, as `abort`
    /// takes them: what the sweeper compares with the catalog to find
    /// staging no upload names any more (left by a crash between the two).
    async fn staged_before(&self, before: Timestamp) -> StoreResult<Vec<Staging>>;

    /// Committed blobs last written before `before`, as `read` and `delete`
    /// take them: what the sweeper compares with the catalog to find blobs
    /// no record names (left by a crash between the store and the catalog,
    /// or by a deletion that failed). Streamed, in no particular order: a
    /// store may hold millions. A blob deleted while the listing runs may
    /// still be listed; staged uploads are never listed, nor is anything
    /// the store keeps for itself.
    ///
    /// "Written" is when the blob's bytes last changed in the store (a file's
    /// modification time; an object's last-modified date). A blob committed
    /// from staging may carry the time its staging was last written, which
    /// can be long before the commit: the core never relies on the age of a
    /// blob a record names.
    fn blobs_before(&self, before: Timestamp) -> BlobIds;

    /// Streams `range` of a committed blob. The core validates the range.
    async fn read(&self, blob: &BlobId, range: Range<u64>) -> StoreResult<ByteStream>;

    /// Deletes a committed blob. Succeeds if it is already gone.
    async fn delete(&self, blob: &BlobId) -> StoreResult<()>;

    /// Answers once the store can serve requests (its disk or bucket
    /// reachable and writable as far as a cheap check can tell); a load
    /// balancer's readiness check.
    async fn ping(&self) -> StoreResult<()>;

    /// Stores whole blobs held in memory (small files) under the given ids,
    /// as if each had been staged and committed: durable on return, every
    /// one readable with exactly its bytes.
    ///
    /// The core gives fresh ids (never begun, staged or stored before) and
    /// keeps the blobs small, so a backend may hold or write them all at
    /// once. On error, the store removes what it wrote of them as far as it
    /// can; a blob it could not remove is an orphan that no catalog names.
    ///
    /// The default stages and commits each blob, several at a time; a
    /// backend overrides it to make a batch durable more cheaply than one
    /// blob after another (fs: one sync round for all).
    async fn put_blobs(&self, blobs: &[(BlobId, Bytes)]) -> StoreResult<()> {
        let puts: Vec<_> = blobs
            .iter()
            .map(|(id, bytes)| put_staged(self, id, bytes))
            .collect();
        let results: Vec<StoreResult<()>> = futures::stream::iter(puts)
            .buffer_unordered(PUT_PARALLEL)
            .collect()
            .await;
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            for (id, _) in blobs {
                if let Err(cleanup) = self.delete(id).await {
                    tracing::warn!(blob = %id, error = %cleanup, "could not remove a blob of a failed batch");
                }
            }
            return Err(e);
        }
        Ok(())
    }
}

/// Stores one blob through staging: begin, one chunk per
/// [`BlobStore::min_chunk_size`] bytes, commit. Aborts the staging if any
/// step fails.
async fn put_staged<S: BlobStore + ?Sized>(
    store: &S,
    id: &BlobId,
    bytes: &Bytes,
) -> StoreResult<()> {
    let size = bytes.len() as u64;
    let staging = store.begin(id, Some(size)).await?;
    let written = async {
        let chunk_size = store.min_chunk_size();
        let mut records = Vec::new();
        for (index, offset) in (0..size).step_by(chunk_size as usize).enumerate() {
            let len = chunk_size.min(size - offset);
            let chunk = ChunkRef {
                index: index as u32,
                offset,
                len,
            };
            let mut writer = store.open_chunk(&staging, chunk, 0).await?;
            writer
                .write(bytes.slice(offset as usize..(offset + len) as usize))
                .await?;
            records.push(ChunkRecord {
                index: chunk.index,
                digests: Vec::new(),
                receipt: writer.finish().await?,
            });
        }
        store.commit(&staging, size, &records).await
    }
    .await;
    if written.is_err()
        && let Err(e) = store.abort(&staging).await
    {
        tracing::warn!(blob = %id, error = %e, "could not abort a failed blob");
    }
    written
}

/// Writes the bytes of one chunk, in order.
#[async_trait]
pub trait ChunkWriter: Send {
    /// Writes the next bytes. Fails with [`StoreError::OutOfBounds`], writing
    /// nothing, if they would cross the end of the chunk.
    ///
    /// `data` usually comes from the service's bounded buffer budget (and
    /// starts 4 KiB-aligned): a writer may keep it only until it is on its
    /// way to storage, never until the chunk ends — copy what must wait
    /// longer.
    async fn write(&mut self, data: Bytes) -> StoreResult<()>;

    /// Makes everything written so far durable, leaving the chunk open to be
    /// continued later by `open_chunk(.., start)`.
    async fn sync(self: Box<Self>) -> StoreResult<()>;

    /// Seals a completely written chunk: durable on return. Returns the
    /// receipt to record with the chunk (an S3 ETag; empty for fs).
    async fn finish(self: Box<Self>) -> StoreResult<String>;
}
