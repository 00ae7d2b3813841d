//! Writing one chunk as one part of the upload's multipart upload.
//!
//! The bytes of a chunk are gathered and sent as one UploadPart when the
//! chunk is finished; its ETag is the chunk's receipt. They are copied out
//! of the batches they come in, which go back to the service's shared
//! buffer budget at once (that budget is for bytes in motion; a part being
//! gathered is counted by `--s3-part-memory`, see `memory`).
//!
//! A part is gathered in memory while there is room for its bytes as they
//! arrive. Past that it *spills*: its bytes move to an unnamed temporary
//! file (in `TMPDIR`), the rest follow them there, and the part is sent
//! from that file, mapped into memory (file pages the kernel can drop and
//! read again, not the process's own memory). Spilling rather than waiting
//! for room is what keeps parts from blocking each other: a part that
//! waited while holding memory could wait for parts that themselves wait,
//! and waiting for room for a whole part means waiting for every slow
//! chunk that holds some. A disk is slower than memory, but only parts
//! past the budget pay for it. (A part cannot be streamed to S3 as it
//! arrives instead: `object_store` sends a part from bytes in memory.)
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
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tusk_core::model::{ChunkRef, Staging};
use tusk_core::store::{ChunkWriter, StoreError, StoreResult};

use super::memory::Held;
use super::{Inner, store_error};

/// The writer of one chunk, from `start` bytes into it.
pub(crate) struct PartWriter {
    inner: Arc<Inner>,
    staging: Staging,
    chunk: ChunkRef,
    /// Bytes of the chunk written before this writer (held in pieces).
    start: u64,
    /// What this writer was given, in order, while it is in memory.
    held: Vec<Bytes>,
    written: u64,
    /// Once the part spilled: the file that holds it, laid out as the part
    /// (this writer's bytes from `start` on; the pieces go before them).
    spill: Option<Arc<File>>,
    /// This part's share of the store's memory, given back on drop.
    room: Held,
}

impl PartWriter {
    pub(crate) fn new(inner: Arc<Inner>, staging: Staging, chunk: ChunkRef, start: u64) -> Self {
        PartWriter {
            inner,
            staging,
            chunk,
            start,
            held: Vec::new(),
            written: 0,
            spill: None,
            room: Held::default(),
        }
    }

    fn chunk_dir(&self) -> Path {
        self.inner
            .staging_dir(&self.staging.blob)
            .join(self.chunk.index.to_string())
    }

    /// Moves the bytes held in memory to a temporary file, where the rest
    /// will follow, and gives their memory back.
    async fn spill(&mut self) -> StoreResult<Arc<File>> {
        if let Some(file) = &self.spill {
            return Ok(file.clone());
        }
        let (held, at) = (std::mem::take(&mut self.held), self.start);
        let file = blocking(move || {
            let file = tempfile::tempfile()?;
            let mut pos = at;
            for bytes in &held {
                file.write_all_at(bytes, pos)?;
                pos += bytes.len() as u64;
            }
            Ok(Arc::new(file))
        })
        .await?;
        self.spill = Some(file.clone());
        self.room = Held::default();
        Ok(file)
    }

    /// The spill file's bytes `from..to`, mapped.
    async fn mapped(file: Arc<File>, from: u64, to: u64) -> StoreResult<Bytes> {
        let map = blocking(move || {
            // SAFETY: the file is unnamed and private to this writer; nothing
            // else can change or truncate it while the map lives.
            unsafe { memmap2::Mmap::map(&*file) }
        })
        .await?;
        let (from, to) = (from as usize, to as usize);
        if map.len() < to {
            return Err(StoreError::Backend(format!(
                "a spilled part holds {} bytes, not {to}",
                map.len()
            )));
        }
        Ok(Bytes::from_owner(map).slice(from..to))
    }

    /// The staged pieces that make up the first `self.start` bytes of the
    /// chunk: each piece's object and how much of it to take.
    async fn piece_plan(&self) -> StoreResult<Vec<(Path, u64)>> {
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
        let mut by_start: BTreeMap<u64, (Path, u64)> = listed
            .into_iter()
            .filter_map(|meta| {
                let start = meta.location.filename()?.parse::<u64>().ok()?;
                Some((start, (meta.location, meta.size)))
            })
            .collect();
        let mut plan = Vec::new();
        let mut at = 0;
        while at < self.start {
            let (path, size) = by_start.remove(&at).ok_or_else(|| {
                StoreError::Backend(format!(
                    "upload {}: the staged bytes of chunk {} at {at} are missing",
                    self.staging.blob, self.chunk.index
                ))
            })?;
            let take = size.min(self.start - at);
            if take == 0 {
                return Err(StoreError::Backend(format!(
                    "upload {}: an empty staged piece in chunk {} at {at}",
                    self.staging.blob, self.chunk.index
                )));
            }
            plan.push((path, take));
            at += take;
        }
        Ok(plan)
    }

    /// The first `take` bytes of a piece.
    async fn piece(&self, path: &Path, take: u64) -> StoreResult<Bytes> {
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
        Ok(bytes)
    }

    /// The whole part: the pieces, then this writer's bytes. In memory if
    /// there is room for all of it, else from the spill file.
    async fn part(&mut self) -> StoreResult<Vec<Bytes>> {
        let plan = self.piece_plan().await?;
        let whole = self.start + self.written;
        if self.spill.is_none() && self.inner.memory.try_grow(&mut self.room, whole) {
            let mut bytes = Vec::with_capacity(plan.len() + self.held.len());
            for (path, take) in &plan {
                bytes.push(self.piece(path, *take).await?);
            }
            bytes.extend(std::mem::take(&mut self.held));
            return Ok(bytes);
        }
        let file = self.spill().await?;
        let mut at = 0;
        for (path, take) in &plan {
            let bytes = self.piece(path, *take).await?;
            let file = file.clone();
            blocking(move || file.write_all_at(&bytes, at)).await?;
            at += take;
        }
        Ok(vec![Self::mapped(file, 0, whole).await?])
    }
}

#[async_trait]
impl ChunkWriter for PartWriter {
    async fn write(&mut self, data: Bytes) -> StoreResult<()> {
        if self.start + self.written + data.len() as u64 > self.chunk.len {
            return Err(StoreError::OutOfBounds);
        }
        if data.is_empty() {
            return Ok(());
        }
        let at = self.start + self.written;
        self.written += data.len() as u64;
        if self.spill.is_none() && self.inner.memory.try_grow(&mut self.room, self.written) {
            self.held.push(Bytes::copy_from_slice(&data));
            return Ok(());
        }
        let file = self.spill().await?;
        blocking(move || file.write_all_at(&data, at)).await
    }

    async fn sync(mut self: Box<Self>) -> StoreResult<()> {
        if self.written == 0 {
            return Ok(());
        }
        let piece = self.chunk_dir().join(self.start.to_string());
        let payload: PutPayload = match &self.spill {
            None => std::mem::take(&mut self.held).into_iter().collect(),
            Some(file) => {
                let end = self.start + self.written;
                Self::mapped(file.clone(), self.start, end).await?.into()
            }
        };
        self.inner
            .s3
            .put(&piece, payload)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<String> {
        let payload: PutPayload = self.part().await?.into_iter().collect();
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

/// Runs file IO on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
        .map_err(StoreError::from)
}
