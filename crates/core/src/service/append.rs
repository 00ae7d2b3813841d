//! Appends: bytes added at the current offset, in pieces of any length,
//! across requests and restarts (tus PATCH, streamed form posts).
//!
//! An append upload is still made of fixed-size chunks: whenever appended
//! bytes fill a chunk it is sealed and recorded exactly like a chunk sent by
//! index, so completion and storage treat both kinds alike. The partial
//! chunk at the offset is described by the saved state of its block hasher
//! (`tail`), which lets the next append continue hashing where this one
//! stopped without reading anything back.
//!
//! Without checksums, an append that breaks off keeps every byte that
//! arrived: they are synced and the offset moves. With checksums, nothing of
//! the append counts unless they all verify.

use std::sync::Arc;

use crate::checksum::{Checksum, Verifier};
use crate::error::{Error, Result};
use crate::hash::BlockHasher;
use crate::model::{ChunkRecord, ChunkRef, Owner, Upload, UploadId, UploadMode};
use crate::store::ByteStream;

use super::ingest::{Body, Digests, Stop, pump};
use super::{UploadService, detach, not_found, upload_lock};

/// The state of an append upload after an append.
#[derive(Debug, Clone)]
pub struct Appended {
    pub upload: Upload,
    /// True when the upload now holds all its bytes (its length is known and
    /// reached); it can be completed.
    pub full: bool,
}

/// How an append ended.
#[derive(Debug)]
pub enum AppendOutcome {
    /// The whole body was appended.
    Done(Appended),
    /// The body broke off; the bytes that arrived before were kept (without
    /// checksums) or dropped (with checksums), and `error` says why.
    Interrupted { appended: Appended, error: Error },
}

impl UploadService {
    /// Appends `body` at `offset`, which must be the upload's current
    /// offset. `checks` are checksums of the whole body.
    pub async fn append(
        self: &Arc<Self>,
        owner: &Owner,
        id: &UploadId,
        offset: u64,
        checks: Vec<Checksum>,
        body: ByteStream,
    ) -> Result<AppendOutcome> {
        let (me, owner, id) = (self.clone(), owner.clone(), id.clone());
        detach(async move { me.write_append(&owner, &id, offset, checks, body).await }).await
    }

    async fn write_append(
        &self,
        owner: &Owner,
        id: &UploadId,
        offset: u64,
        checks: Vec<Checksum>,
        body: ByteStream,
    ) -> Result<AppendOutcome> {
        let _guard = self.catalog.lock(&upload_lock(id)).await?;
        let upload = self.get_upload(owner, id).await?;
        if upload.mode != UploadMode::Append || upload.file.is_some() {
            return Err(Error::WrongMode);
        }
        if offset != upload.offset {
            return Err(Error::OffsetMismatch {
                current: upload.offset,
                given: offset,
            });
        }
        let verified = !checks.is_empty();
        let mut body = Body::new(body, self.limits.body_idle_timeout);
        let mut digests = Some(Digests {
            hasher: self.tail_hasher(&upload)?,
            verifier: Verifier::new(checks),
        });
        let end = upload.size.unwrap_or(self.limits.max_file_size);
        let mut at = upload.offset;
        let mut sealed = Vec::new();
        let mut broke_off = None;
        loop {
            let chunk = self.chunk_at(&upload, at);
            // `at` can only pass `end` if the size limit was lowered since.
            let room = (chunk.offset + chunk.len)
                .min(end)
                .checked_sub(at)
                .ok_or_else(|| self.past_end(&upload))?;
            if room == 0 {
                if body.has_more().await? {
                    return Err(self.past_end(&upload));
                }
                break;
            }
            let mut writer = self
                .store
                .open_chunk(&upload.staging, chunk, at - chunk.offset)
                .await
                .map_err(Error::gone(Error::UploadNotFound))?;
            let (written, stop) = pump(&mut body, writer.as_mut(), &mut digests, room).await?;
            at += written;
            match stop {
                Stop::Full if at == chunk.offset + chunk.len => {
                    let d = digests.as_mut().expect("digests present");
                    let hasher = std::mem::take(&mut d.hasher);
                    sealed.push(ChunkRecord {
                        index: chunk.index,
                        digests: hasher.finish(),
                        receipt: writer.finish().await?,
                    });
                }
                // The end of the upload falls inside this chunk.
                Stop::Full => writer.sync().await?,
                Stop::BodyEnded => {
                    writer.sync().await?;
                    break;
                }
                Stop::BodyFailed(e) => {
                    writer.sync().await?;
                    broke_off = Some(e);
                    break;
                }
            }
        }
        let Digests { hasher, verifier } = digests.expect("digests present");
        if verified {
            if let Some(error) = broke_off {
                let appended = self.appended(owner, id).await?;
                return Ok(AppendOutcome::Interrupted { appended, error });
            }
            let failed = verifier.mismatches();
            if !failed.is_empty() {
                return Err(Error::DigestMismatch(failed));
            }
        }
        let tail = (!hasher.is_empty()).then(|| hasher.save());
        self.catalog
            .record_append(
                id,
                upload.offset,
                at,
                &sealed,
                tail.as_deref(),
                self.expiry(),
            )
            .await
            .map_err(not_found)?;
        let appended = self.appended(owner, id).await?;
        Ok(match broke_off {
            Some(error) => AppendOutcome::Interrupted { appended, error },
            None => AppendOutcome::Done(appended),
        })
    }

    /// Sets the length of an upload created without one. If the bytes are
    /// all there already, the last chunk is sealed.
    pub async fn declare_length(
        &self,
        owner: &Owner,
        id: &UploadId,
        size: u64,
    ) -> Result<Appended> {
        let _guard = self.catalog.lock(&upload_lock(id)).await?;
        let upload = self.get_upload(owner, id).await?;
        if upload.mode != UploadMode::Append || upload.file.is_some() {
            return Err(Error::WrongMode);
        }
        match upload.size {
            Some(s) if s != size => return Err(Error::LengthAlreadySet(s)),
            // Declared before; sealing may still be due if that attempt
            // stopped half-way (a crash between the two catalog writes).
            Some(_) => {}
            None => {
                self.check_size(size)?;
                if size < upload.offset {
                    return Err(Error::PastEnd { size });
                }
                self.catalog
                    .set_upload_size(id, size)
                    .await
                    .map_err(not_found)?;
            }
        }
        let upload = self.get_upload(owner, id).await?;
        let last = upload.chunk_count().unwrap_or(0).checked_sub(1);
        if let Some(last) = last
            && upload.offset == size
            && !upload.received.contains(&last)
        {
            // All bytes are here and the last chunk is partial: seal it.
            let chunk = self.chunk_at(&upload, size);
            let writer = self
                .store
                .open_chunk(&upload.staging, chunk, size - chunk.offset)
                .await
                .map_err(Error::gone(Error::UploadNotFound))?;
            let record = ChunkRecord {
                index: chunk.index,
                digests: self.tail_hasher(&upload)?.finish(),
                receipt: writer.finish().await?,
            };
            self.catalog
                .record_append(id, size, size, &[record], None, self.expiry())
                .await
                .map_err(not_found)?;
        }
        self.appended(owner, id).await
    }

    /// The chunk holding byte `at` (for an unknown length, a full chunk).
    fn chunk_at(&self, upload: &Upload, at: u64) -> ChunkRef {
        let index = (at / upload.chunk_size) as u32;
        let offset = index as u64 * upload.chunk_size;
        let len = match upload.size {
            Some(size) => upload.chunk_size.min(size.saturating_sub(offset)),
            None => upload.chunk_size,
        };
        ChunkRef { index, offset, len }
    }

    fn tail_hasher(&self, upload: &Upload) -> Result<BlockHasher> {
        match &upload.tail {
            None => Ok(BlockHasher::new()),
            Some(saved) => BlockHasher::restore(saved).map_err(|e| {
                Error::Catalog(crate::catalog::CatalogError::Backend(format!(
                    "upload {}: {e}",
                    upload.id
                )))
            }),
        }
    }

    fn past_end(&self, upload: &Upload) -> Error {
        match upload.size {
            Some(size) => Error::PastEnd { size },
            None => Error::FileTooLarge {
                max: self.limits.max_file_size,
            },
        }
    }

    async fn appended(&self, owner: &Owner, id: &UploadId) -> Result<Appended> {
        let upload = self.get_upload(owner, id).await?;
        let full = upload.size == Some(upload.offset) && upload.missing().is_empty();
        Ok(Appended { upload, full })
    }
}
