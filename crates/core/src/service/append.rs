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
//! arrived: they are synced and the offset moves. With checksums (given
//! before the body or after it), nothing of the append counts unless they
//! all verify. One append runs per upload at a time.

use std::sync::Arc;

use crate::checksum::{Algorithm, Checksum, Verifier};
use crate::error::{Error, Result};
use crate::hash::BlockHasher;
use crate::model::{ChunkRecord, ChunkRef, Concat, Owner, Upload, UploadId, UploadMode};
use crate::store::ByteStream;

use super::admission::{Admit, RESERVE_STEP};
use super::ingest::{Body, Digests, Stop, pump};
use super::{APPEND_PATIENCE, UploadService, detach, not_found, upload_lock};

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

/// What the body of an append is checked against. With any checksum, the
/// append is all or nothing.
pub enum Checks {
    /// Nothing: an append that breaks off keeps the bytes that arrived.
    None,
    /// Checksums of the whole body, known before it (tus `Upload-Checksum`).
    Given(Vec<Checksum>),
    /// Checksums known only after the body (an HTTP trailer): `computing`
    /// are computed on the way, and `expected` is asked for the checksums
    /// once the last byte arrived.
    Trailing {
        computing: Vec<Algorithm>,
        expected: Box<dyn FnOnce() -> Result<Vec<Checksum>> + Send>,
    },
}

impl Checks {
    fn is_none(&self) -> bool {
        match self {
            Checks::None => true,
            Checks::Given(c) => c.is_empty(),
            Checks::Trailing { .. } => false,
        }
    }
}

impl UploadService {
    /// Appends `body` at `offset`, which must be the upload's current
    /// offset. One append per upload at a time: if another one runs and
    /// does not end within [`APPEND_PATIENCE`], this fails with
    /// [`Error::Locked`].
    pub async fn append(
        self: &Arc<Self>,
        owner: &Owner,
        id: &UploadId,
        offset: u64,
        checks: Checks,
        body: ByteStream,
    ) -> Result<AppendOutcome> {
        let (me, owner, id) = (self.clone(), owner.clone(), id.clone());
        detach(async move {
            let _guard = me
                .lock_within(&upload_lock(&id), APPEND_PATIENCE)
                .await?
                .ok_or(Error::Locked)?;
            let upload = me.get_upload(&owner, &id).await?;
            if upload.mode != UploadMode::Append || matches!(upload.concat, Concat::Final(_)) {
                return Err(Error::WrongMode);
            }
            if offset != upload.offset {
                return Err(Error::OffsetMismatch {
                    current: upload.offset,
                    given: offset,
                });
            }
            me.append_locked(&owner, upload, checks, body).await
        })
        .await
    }

    /// Appends `body` at the upload's offset; the caller holds its lock.
    pub(super) async fn append_locked(
        &self,
        owner: &Owner,
        upload: Upload,
        checks: Checks,
        body: ByteStream,
    ) -> Result<AppendOutcome> {
        let id = &upload.id;
        let verified = !checks.is_none();
        let (verifier, expected) = match checks {
            Checks::None => (Verifier::new([]), None),
            Checks::Given(given) => (Verifier::new(given), None),
            Checks::Trailing {
                computing,
                expected,
            } => (Verifier::computing(computing), Some(expected)),
        };
        let mut body = Body::new(body, self.limits.body_idle_timeout, self.buffers.clone());
        let mut digests = Some(Digests {
            hasher: self.tail_hasher(&upload)?,
            verifier,
        });
        let end = upload.size.unwrap_or(self.limits.max_file_size);
        // An upload of unknown length was admitted at what it holds: under
        // a quota, bytes beyond are reserved before they are written.
        let quota = match upload.size {
            None => self.quota_of(owner).await?,
            Some(_) => None,
        };
        let mut reserved = upload.offset;
        let mut at = upload.offset;
        let mut sealed = Vec::new();
        let mut broke_off = None;
        loop {
            let chunk = self.chunk_at(&upload, at);
            // `at` can only pass `end` if the size limit was lowered since.
            let mut room = (chunk.offset + chunk.len)
                .min(end)
                .checked_sub(at)
                .ok_or_else(|| self.past_end(&upload))?;
            if room == 0 {
                if body.has_more().await? {
                    return Err(self.past_end(&upload));
                }
                break;
            }
            if let Some(quota) = quota {
                if at + room > reserved {
                    // Only for bytes that are coming; a body that broke off
                    // here keeps what it sent, as anywhere else.
                    match body.has_more().await {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            broke_off = Some(e);
                            break;
                        }
                    }
                    let have = reserved.max(at);
                    let want = (at + room).min(have.saturating_add(RESERVE_STEP));
                    match self.reserve(owner, id, quota, have, want).await {
                        Ok(to) => reserved = to,
                        Err(e @ Error::QuotaExceeded { .. }) => {
                            broke_off = Some(e);
                            break;
                        }
                        Err(e) => return Err(e),
                    }
                }
                room = room.min(reserved - at);
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
                        receipt: writer
                            .finish()
                            .await
                            .map_err(Error::gone(Error::UploadNotFound))?,
                    });
                }
                // The end of the upload falls inside this chunk.
                Stop::Full => writer
                    .sync()
                    .await
                    .map_err(Error::gone(Error::UploadNotFound))?,
                Stop::BodyEnded => {
                    writer
                        .sync()
                        .await
                        .map_err(Error::gone(Error::UploadNotFound))?;
                    break;
                }
                Stop::BodyFailed(e) => {
                    writer
                        .sync()
                        .await
                        .map_err(Error::gone(Error::UploadNotFound))?;
                    broke_off = Some(e);
                    break;
                }
            }
        }
        if quota.is_some() && reserved > at {
            // Give back what was reserved and not written.
            self.catalog
                .reserve_upload(id, at)
                .await
                .map_err(not_found)?;
        }
        let Digests {
            hasher,
            mut verifier,
        } = digests.expect("digests present");
        if verified {
            if let Some(error) = broke_off {
                let appended = self.appended(owner, id).await?;
                return Ok(AppendOutcome::Interrupted { appended, error });
            }
            if let Some(expected) = expected {
                verifier.expect(expected()?).map_err(|a| {
                    Error::InvalidTrailer(format!("{} is not computed here", a.name()))
                })?;
            }
            let failed = verifier.mismatches();
            if !failed.is_empty() {
                return Err(Error::DigestMismatch(failed));
            }
        }
        if at != upload.offset || !sealed.is_empty() {
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
            if upload.concat == Concat::Partial {
                self.keep_finals_alive(id).await?;
            }
        }
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
        let _guard = self
            .lock_within(&upload_lock(id), APPEND_PATIENCE)
            .await?
            .ok_or(Error::Locked)?;
        let upload = self.get_upload(owner, id).await?;
        if upload.mode != UploadMode::Append
            || upload.file.is_some()
            || matches!(upload.concat, Concat::Final(_))
        {
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
                let _admitted = self
                    .admit(
                        owner,
                        Admit::Grow {
                            was: upload.offset,
                            to: size,
                        },
                    )
                    .await?;
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
                receipt: writer
                    .finish()
                    .await
                    .map_err(Error::gone(Error::UploadNotFound))?,
            };
            self.catalog
                .record_append(id, size, size, &[record], None, self.expiry())
                .await
                .map_err(not_found)?;
        }
        self.appended(owner, id).await
    }

    /// Moves on the expiry of the unfinished final uploads made of part
    /// `id`: they wait for it, and expire only once their parts sit idle.
    async fn keep_finals_alive(&self, id: &UploadId) -> Result<()> {
        for fin in self.catalog.finals_with_part(id).await? {
            match self.catalog.touch_upload(&fin, self.expiry()).await {
                Ok(()) | Err(crate::catalog::CatalogError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
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
        let full = upload.is_full();
        Ok(Appended { upload, full })
    }
}
