//! Chunk-indexed writes: whole chunks, in any order, several at once.
//!
//! A chunk is written in place at its offset under a per-chunk lock, made
//! durable, and only then recorded with its block digests. A chunk already
//! recorded is never written again: a re-send is read, dropped, and
//! answered as a success. Two copies of one chunk sent at once are
//! serialised by the lock, so the bytes on disk are always exactly those
//! whose digests were recorded.

use std::sync::Arc;

use crate::checksum::{Algorithm, Checksum, Verifier};
use crate::error::{Error, Result};
use crate::hash::{BLOCK_SIZE, BlockHasher, ContentHash};
use crate::model::{ChunkRecord, Owner, Timestamp, Upload, UploadId, UploadMode};
use crate::store::ByteStream;

use super::ingest::{Body, Digests, Stop, pump};
use super::{APPEND_PATIENCE, UploadService, chunk_lock, detach, not_found, upload_lock};

/// One chunk as a door received it.
pub struct ChunkPut {
    /// The chunk index as sent (validated here).
    pub index: u64,
    /// The body length announced up front (`Content-Length`), if any.
    pub declared_len: Option<u64>,
    /// Checksums of the body the client claims (`Content-Digest`).
    pub checks: Vec<Checksum>,
    /// The chunk's own `sha256-4m` hash, if the client sent it. Checking it
    /// is free: the block digests are computed anyway.
    pub hash: Option<ContentHash>,
    pub body: ByteStream,
}

impl UploadService {
    /// Receives one chunk; returns the upload once the chunk is durable.
    pub async fn put_chunk(
        self: &Arc<Self>,
        owner: &Owner,
        id: &UploadId,
        put: ChunkPut,
    ) -> Result<Upload> {
        let (me, owner, id) = (self.clone(), owner.clone(), id.clone());
        detach(async move {
            match me.write_chunk(&owner, &id, put).await {
                // Its staging or record vanished under the write: say why,
                // if the upload ended (expired, deleted) meanwhile.
                Err(Error::UploadNotFound) => Err(match me.find_upload(&owner, &id).await {
                    Err(why) => why,
                    Ok(_) => Error::UploadNotFound,
                }),
                other => other,
            }
        })
        .await
    }

    async fn write_chunk(&self, owner: &Owner, id: &UploadId, put: ChunkPut) -> Result<Upload> {
        let upload = self.get_upload(owner, id).await?;
        if upload.mode != UploadMode::Chunks {
            return Err(Error::WrongMode);
        }
        let count = upload.chunk_count().unwrap_or(0);
        let chunk = u32::try_from(put.index)
            .ok()
            .and_then(|i| upload.chunk(i))
            .ok_or(Error::ChunkOutOfRange {
                index: put.index,
                count,
            })?;
        if let Some(got) = put.declared_len
            && got != chunk.len
        {
            return Err(Error::ChunkLength {
                index: chunk.index,
                expected: chunk.len,
                got,
            });
        }
        let mut body = Body::new(
            put.body,
            self.limits.body_idle_timeout,
            self.buffers.clone(),
        );
        if upload.received.contains(&chunk.index) {
            return self.resent(upload, &mut body, chunk.index, chunk.len).await;
        }

        let _guard = self.catalog.lock(&chunk_lock(id, chunk.index)).await?;
        // Another copy of this chunk may have landed while we waited.
        let upload = self.get_upload(owner, id).await?;
        if upload.received.contains(&chunk.index) {
            return self.resent(upload, &mut body, chunk.index, chunk.len).await;
        }
        self.keep_alive(owner, id).await?;

        let mut writer = self
            .store
            .open_chunk(&upload.staging, chunk, 0)
            .await
            .map_err(Error::gone(Error::UploadNotFound))?;
        // The SHA-256 of a chunk of one block is that block's digest, which
        // is computed anyway: such a `Content-Digest` costs no second pass.
        let (by_block, checks): (Vec<_>, Vec<_>) = put
            .checks
            .into_iter()
            .partition(|c| c.algorithm == Algorithm::Sha256 && chunk.len <= BLOCK_SIZE);
        let mut digests = Some(Digests {
            hasher: BlockHasher::new(),
            verifier: Verifier::new(checks),
        });
        let (written, stop) = pump(&mut body, writer.as_mut(), &mut digests, chunk.len).await?;
        match stop {
            Stop::BodyFailed(e) => return Err(e),
            Stop::BodyEnded => {
                return Err(Error::ChunkLength {
                    index: chunk.index,
                    expected: chunk.len,
                    got: written,
                });
            }
            Stop::Full if body.has_more().await? => {
                let extra = body.drain(u64::MAX >> 1).await?;
                return Err(Error::ChunkLength {
                    index: chunk.index,
                    expected: chunk.len,
                    got: written + extra,
                });
            }
            Stop::Full => {}
        }
        let Digests { hasher, verifier } = digests.expect("digests present");
        let mut failed = verifier.mismatches();
        let digests = hasher.finish();
        if by_block
            .iter()
            .any(|c| digests.first().map(|d| &d[..]) != Some(&c.digest[..]))
        {
            failed.push(Algorithm::Sha256);
        }
        if !failed.is_empty() {
            return Err(Error::DigestMismatch(failed));
        }
        if put
            .hash
            .is_some_and(|h| h != ContentHash::from_block_digests(&digests))
        {
            return Err(Error::ChunkHashMismatch(chunk.index));
        }
        let receipt = writer
            .finish()
            .await
            .map_err(Error::gone(Error::UploadNotFound))?;
        let record = ChunkRecord {
            index: chunk.index,
            digests,
            receipt,
        };
        self.catalog
            .record_chunk(id, &record, self.expiry())
            .await
            .map_err(not_found)?;
        self.get_upload(owner, id).await
    }

    /// Makes sure an upload does not expire while a chunk is written into
    /// it, under its lock for a moment: the sweeper, which ends uploads
    /// under that lock and only once they are expired, then leaves it alone.
    /// An upload it ended just before is gone (410). The expiry is moved on
    /// only when less than half the time to live is left (recording the
    /// chunk moves it anyway), so a request refused for its body changes
    /// nothing in the common case, and most chunks cost no extra write.
    async fn keep_alive(&self, owner: &Owner, id: &UploadId) -> Result<()> {
        let _guard = self
            .lock_within(&upload_lock(id), APPEND_PATIENCE)
            .await?
            .ok_or(Error::Locked)?;
        let upload = self.get_upload(owner, id).await?;
        if upload.expires_at >= Timestamp::now().plus(self.limits.upload_ttl / 2) {
            return Ok(());
        }
        self.catalog
            .touch_upload(id, self.expiry())
            .await
            .map_err(not_found)
    }

    /// A chunk that is already recorded: read the copy, keep nothing.
    async fn resent(
        &self,
        upload: Upload,
        body: &mut Body,
        index: u32,
        len: u64,
    ) -> Result<Upload> {
        let got = body.drain(len).await?;
        if got != len {
            return Err(Error::ChunkLength {
                index,
                expected: len,
                got,
            });
        }
        Ok(upload)
    }
}
