//! Concatenation (tus `concatenation` and `concatenation-unfinished`):
//! partial uploads, and final uploads made of them.
//!
//! A partial upload is an append upload whose bytes, once all there, are
//! committed into its own blob: not a file, and never content for dedup. A
//! final upload lists its parts. Once every part is finished, their bytes
//! are copied into the final upload in order through the ordinary append
//! path, so it is chunked, hashed and stored like any other upload, and it
//! completes into a file (deduplicated as usual). The copy resumes at the
//! final upload's offset if it was interrupted. Parts that no other
//! unfinished final upload needs are deleted afterwards.
//!
//! Parts may be finished before the final upload is created, or after
//! (`concatenation-unfinished`): whichever comes last triggers the copy.

use std::ops::Range;
use std::sync::Arc;

use futures::StreamExt;

use crate::error::{Error, Result};
use crate::model::{
    BlobId, Claims, Concat, EndReason, FileRecord, Owner, Upload, UploadId, UploadMode,
};
use crate::store::{BlobStore, ByteStream, StoreError};

use super::append::{AppendOutcome, Checks};
use super::create::Draft;
use super::{UploadService, detach, upload_lock};

/// A final upload as a client describes it.
#[derive(Clone, Debug)]
pub struct NewFinalUpload {
    pub name: String,
    pub mime: Option<String>,
    /// Kept verbatim with the upload (tus `Upload-Metadata`).
    pub meta: Option<String>,
    /// The partial uploads whose bytes it is made of, in order.
    pub parts: Vec<UploadId>,
}

impl UploadService {
    /// Starts a final upload. If its parts are all finished it is completed
    /// at once, and its file is returned with it.
    pub async fn create_final(
        self: &Arc<Self>,
        owner: &Owner,
        req: NewFinalUpload,
    ) -> Result<(Upload, Option<FileRecord>)> {
        let name = crate::name::normalize(&req.name)?;
        let mime = self.mime_for(&name, req.mime.as_deref())?;
        if req.parts.is_empty() {
            return Err(Error::InvalidPart {
                part: String::new(),
                why: "a final upload needs at least one part",
            });
        }
        // The length is the sum of the parts', once they are all known.
        let mut size = Some(0u64);
        // What the distinct parts count against the quota on their own.
        let mut distinct = std::collections::HashSet::new();
        let mut parts_count = 0u64;
        for id in &req.parts {
            let invalid = |why| Error::InvalidPart {
                part: id.to_string(),
                why,
            };
            let part = match self.get_upload(owner, id).await {
                Ok(part) => part,
                Err(Error::UploadNotFound | Error::UploadGone(_)) => {
                    return Err(invalid("there is no such upload"));
                }
                Err(e) => return Err(e),
            };
            if part.concat != Concat::Partial {
                return Err(invalid("it is not a partial upload"));
            }
            size = size.zip(part.size).map(|(a, b)| a.saturating_add(b));
            if distinct.insert(part.id.clone()) {
                parts_count = parts_count.saturating_add(part.size.unwrap_or(part.offset));
            }
        }
        if let Some(size) = size {
            self.check_size(size)?;
        }
        let draft = Draft {
            name,
            mime,
            size,
            claims: Claims::default(),
            chunk_size: self.append_chunk_size(size)?,
            mode: UploadMode::Append,
            concat: Concat::Final(req.parts),
            meta: req.meta,
        };
        // Counted at what it adds to its parts (a part named twice adds).
        let counted = size.unwrap_or(0).saturating_sub(parts_count);
        let upload = self.start(owner, counted, draft).await?;
        let file = self.assemble(owner, &upload.id).await?;
        let upload = self.get_upload(owner, &upload.id).await?;
        Ok((upload, file))
    }

    /// Finishes an append upload that holds all its bytes, whatever its
    /// part in a concatenation: a plain upload completes into its file
    /// (returned); a partial upload is committed for its final uploads; a
    /// final upload completes by itself once its parts are finished.
    pub async fn finish(
        self: &Arc<Self>,
        owner: &Owner,
        upload: &Upload,
    ) -> Result<Option<FileRecord>> {
        match upload.concat {
            Concat::None => self.complete(owner, &upload.id).await.map(Some),
            Concat::Partial => self.complete_part(owner, &upload.id).await.map(|()| None),
            Concat::Final(_) => Ok(None),
        }
    }

    /// Finishes a partial upload that holds all its bytes: commits them,
    /// then completes the final uploads that were waiting for it.
    pub async fn complete_part(self: &Arc<Self>, owner: &Owner, id: &UploadId) -> Result<()> {
        {
            let _guard = self.catalog.lock(&upload_lock(id)).await?;
            let upload = self.get_upload(owner, id).await?;
            if upload.concat != Concat::Partial {
                return Err(Error::WrongMode);
            }
            self.commit_part(&upload).await?;
        }
        for fin in self.catalog.finals_with_part(id).await? {
            match self.assemble(owner, &fin).await {
                // Ended meanwhile, or waiting for other parts: fine.
                Ok(_) | Err(Error::UploadNotFound | Error::UploadGone(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Commits a finished part's bytes into its blob (idempotent).
    async fn commit_part(&self, part: &Upload) -> Result<u64> {
        let size = part.size.ok_or(Error::LengthUnknown)?;
        if !part.is_full() {
            return Err(Error::MissingChunks(part.missing()));
        }
        let chunks = self.catalog.chunks(&part.id).await?;
        self.store.commit(&part.staging, size, &chunks).await?;
        Ok(size)
    }

    /// Copies the parts of a final upload into it and completes it, if they
    /// are all finished; `None` while some are not.
    async fn assemble(
        self: &Arc<Self>,
        owner: &Owner,
        id: &UploadId,
    ) -> Result<Option<FileRecord>> {
        let (me, owner, id) = (self.clone(), owner.clone(), id.clone());
        // A task of its own: the copy runs to its end even if the request
        // that started it goes away.
        detach(async move {
            let _guard = me.catalog.lock(&upload_lock(&id)).await?;
            let upload = me.get_upload(&owner, &id).await?;
            if upload.file.is_some() {
                return me.complete_locked(&owner, upload).await.map(Some);
            }
            let Concat::Final(ids) = &upload.concat else {
                return Err(Error::WrongMode);
            };
            let mut parts = Vec::with_capacity(ids.len());
            for part in ids {
                match me.catalog.get_upload(part).await? {
                    Some(p) if p.is_full() => parts.push(p),
                    Some(_) => return Ok(None),
                    None => {
                        return Err(Error::InvalidPart {
                            part: part.to_string(),
                            why: "it is gone",
                        });
                    }
                }
            }
            let mut pieces = Vec::with_capacity(parts.len());
            for part in &parts {
                let size = me.commit_part(part).await?;
                pieces.push((part.staging.blob.clone(), size));
            }
            let upload = me.settle_final_size(&owner, upload, &pieces).await?;
            // Its file must fit in the quota: checked before anything is
            // copied, and again when it is recorded.
            drop(me.gate(&owner, upload.size.unwrap_or(0)).await?);
            let body = concatenated(me.store.clone(), &pieces, upload.offset);
            match me.append_locked(&owner, upload, Checks::None, body).await? {
                AppendOutcome::Done(a) if a.full => {
                    let file = me.complete_locked(&owner, a.upload).await?;
                    me.drop_used_parts(&parts).await?;
                    Ok(Some(file))
                }
                AppendOutcome::Done(_) => Err(internal(format!(
                    "final upload {id}: the parts did not fill it"
                ))),
                AppendOutcome::Interrupted { error, .. } => Err(internal(format!(
                    "final upload {id}: copying its parts failed: {error}"
                ))),
            }
        })
        .await
    }

    /// Sets a final upload's length from its finished parts if it was not
    /// known yet, and checks it if it was.
    async fn settle_final_size(
        &self,
        owner: &Owner,
        upload: Upload,
        pieces: &[(BlobId, u64)],
    ) -> Result<Upload> {
        let total = pieces
            .iter()
            .try_fold(0u64, |sum, (_, size)| sum.checked_add(*size))
            .ok_or(Error::FileTooLarge {
                max: self.limits.max_file_size,
            })?;
        match upload.size {
            Some(size) if size == total => Ok(upload),
            Some(size) => Err(internal(format!(
                "final upload {}: length {size}, parts hold {total}",
                upload.id
            ))),
            None => {
                self.check_size(total)?;
                let mut distinct = std::collections::HashSet::new();
                let parts: u64 = pieces
                    .iter()
                    .filter(|(blob, _)| distinct.insert(blob.clone()))
                    .map(|(_, size)| size)
                    .sum();
                let _admitted = self
                    .admit(
                        owner,
                        super::admission::Admit::Grow {
                            was: 0,
                            to: total.saturating_sub(parts),
                        },
                    )
                    .await?;
                self.catalog
                    .set_upload_size(&upload.id, total)
                    .await
                    .map_err(super::not_found)?;
                self.get_upload(owner, &upload.id).await
            }
        }
    }

    /// Deletes the parts of a completed final upload that no unfinished
    /// final upload still needs.
    async fn drop_used_parts(&self, parts: &[Upload]) -> Result<()> {
        for part in parts {
            if !self.catalog.finals_with_part(&part.id).await?.is_empty() {
                continue;
            }
            let _guard = self.catalog.lock(&upload_lock(&part.id)).await?;
            if self.catalog.get_upload(&part.id).await?.is_some() {
                self.discard(part, Some(EndReason::Concatenated)).await?;
            }
        }
        Ok(())
    }
}

/// The bytes of `pieces` (committed blobs and their sizes) one after the
/// other, from byte `skip` of the whole on.
fn concatenated(store: Arc<dyn BlobStore>, pieces: &[(BlobId, u64)], skip: u64) -> ByteStream {
    let mut ranges: Vec<(BlobId, Range<u64>)> = Vec::new();
    let mut start = 0u64;
    for (blob, size) in pieces {
        let end = start + size;
        if end > skip && *size > 0 {
            ranges.push((blob.clone(), skip.saturating_sub(start)..*size));
        }
        start = end;
    }
    let stream = futures::stream::iter(ranges)
        .then(move |(blob, range)| {
            let store = store.clone();
            async move {
                match store.read(&blob, range).await {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        let failed: ByteStream = Box::pin(futures::stream::once(async {
                            Err(std::io::Error::other(e))
                        }));
                        failed
                    }
                }
            }
        })
        .flatten();
    Box::pin(stream)
}

/// A failure of the server's own (copying stored bytes), not the client's.
fn internal(message: String) -> Error {
    Error::Store(StoreError::Backend(message))
}
