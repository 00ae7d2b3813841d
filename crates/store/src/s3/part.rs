//! Writing one chunk as one part of the upload's multipart upload.
//!
//! The bytes of a chunk are gathered in memory and sent as one UploadPart
//! when the chunk is finished; its ETag is the chunk's receipt. They are
//! copied out of the batches they come in, which go back to the service's
//! shared buffer budget at once (that budget is for bytes in motion; a part
//! being gathered is counted by `--s3-part-memory`).
//!
//! An append that stops inside a chunk cannot leave a partial part behind
//! (S3 has no appending to a part), so `sync` stores the bytes it brought
//! as a *piece*: the object `staging/<blob>/<chunk>/<start>`, where `start`
//! is where in the chunk they begin. The writer that later fills the chunk
//! reads the pieces back, in order from 0, and sends them with its own
//! bytes as the part.
//!
//! Pieces of an append that was not recorded (a crash, a refused checksum)
//! may linger, even longer than what was recorded. They are harmless: the
//! next append starts at the recorded offset and overwrites the piece of
//! that start, and reading follows the chain from 0, taking from each piece
//! only the bytes up to the next one needed. All pieces go at commit or
//! abort.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::sync::OwnedSemaphorePermit;
use tusk_core::model::{ChunkRef, Staging};
use tusk_core::store::{ChunkWriter, StoreError, StoreResult};

use super::{Inner, store_error};

/// The writer of one chunk, from `start` bytes into it.
pub(crate) struct PartWriter {
    inner: Arc<Inner>,
    staging: Staging,
    chunk: ChunkRef,
    /// Bytes of the chunk written before this writer (held in pieces).
    start: u64,
    /// What this writer was given, in order.
    held: Vec<Bytes>,
    written: u64,
    /// This part's share of the store's memory, given back on drop.
    _room: OwnedSemaphorePermit,
}

impl PartWriter {
    pub(crate) fn new(
        inner: Arc<Inner>,
        staging: Staging,
        chunk: ChunkRef,
        start: u64,
        room: OwnedSemaphorePermit,
    ) -> Self {
        PartWriter {
            inner,
            staging,
            chunk,
            start,
            held: Vec::new(),
            written: 0,
            _room: room,
        }
    }

    fn chunk_dir(&self) -> Path {
        self.inner
            .staging_dir(&self.staging.blob)
            .join(self.chunk.index.to_string())
    }

    /// The first `self.start` bytes of the chunk, from its pieces.
    async fn pieces(&self) -> StoreResult<Vec<Bytes>> {
        if self.start == 0 {
            return Ok(Vec::new());
        }
        let dir = self.chunk_dir();
        // Piece objects by the offset in the chunk where they begin.
        let listed: Vec<_> = self
            .inner
            .s3
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(store_error)?;
        let by_start: BTreeMap<u64, (Path, u64)> = listed
            .into_iter()
            .filter_map(|meta| {
                let start = meta.location.filename()?.parse::<u64>().ok()?;
                Some((start, (meta.location, meta.size)))
            })
            .collect();
        let mut out = Vec::new();
        let mut at = 0;
        while at < self.start {
            let (path, size) = by_start.get(&at).ok_or_else(|| {
                StoreError::Backend(format!(
                    "upload {}: the staged bytes of chunk {} at {at} are missing",
                    self.staging.blob, self.chunk.index
                ))
            })?;
            let take = (*size).min(self.start - at);
            if take == 0 {
                return Err(StoreError::Backend(format!(
                    "upload {}: an empty staged piece in chunk {} at {at}",
                    self.staging.blob, self.chunk.index
                )));
            }
            let bytes = self
                .inner
                .s3
                .get_range(path, 0..take)
                .await
                .map_err(store_error)?;
            if bytes.len() as u64 != take {
                return Err(StoreError::Backend(format!(
                    "upload {}: a staged piece of chunk {} read short",
                    self.staging.blob, self.chunk.index
                )));
            }
            out.push(bytes);
            at += take;
        }
        Ok(out)
    }
}

#[async_trait]
impl ChunkWriter for PartWriter {
    async fn write(&mut self, data: Bytes) -> StoreResult<()> {
        if self.start + self.written + data.len() as u64 > self.chunk.len {
            return Err(StoreError::OutOfBounds);
        }
        self.written += data.len() as u64;
        if !data.is_empty() {
            self.held.push(Bytes::copy_from_slice(&data));
        }
        Ok(())
    }

    async fn sync(self: Box<Self>) -> StoreResult<()> {
        if self.written == 0 {
            return Ok(());
        }
        let piece = self.chunk_dir().join(self.start.to_string());
        let payload: PutPayload = self.held.into_iter().collect();
        self.inner
            .s3
            .put(&piece, payload)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn finish(self: Box<Self>) -> StoreResult<String> {
        let mut bytes = self.pieces().await?;
        bytes.extend(self.held.iter().cloned());
        let payload: PutPayload = bytes.into_iter().collect();
        let part = self
            .inner
            .s3
            .put_part(
                &self.inner.blob(&self.staging.blob),
                &self.staging.handle,
                self.chunk.index as usize,
                payload,
            )
            .await
            .map_err(store_error)?;
        Ok(part.content_id)
    }
}
