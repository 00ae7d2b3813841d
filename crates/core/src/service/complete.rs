//! Completion: verify, commit, deduplicate, record.
//!
//! The content hash is combined from the block digests recorded with the
//! chunks — no byte is read again. Only a claimed `md5`/`sha256` that the
//! stored content does not already vouch for costs one sequential pass.
//! Content that fails any claim is discarded and never becomes a blob, so
//! it can never serve an instant upload.
//!
//! Order matters for crashes: the store commit (fs: fsync + rename) comes
//! first and is idempotent, then one catalog transaction records blob, file
//! and completion together. A crash between the two leaves an upload that
//! completes on the next try.

use futures::StreamExt;

use crate::catalog::{CatalogError, NewBlob};
use crate::checksum::{Algorithm, Hasher};
use crate::error::{Error, Result};
use crate::hash::{ContentHash, Digest32};
use crate::model::{
    Blob, BlobId, Claims, Concat, EndReason, FileId, FileRecord, NewFile, Owner, Timestamp, Upload,
    UploadId,
};
use crate::store::StoreError;

use super::{UploadService, upload_lock};

impl UploadService {
    /// Completes an upload into a file. Repeating it returns the same file.
    /// Partial and final uploads complete through concatenation instead.
    pub async fn complete(&self, owner: &Owner, id: &UploadId) -> Result<FileRecord> {
        let _guard = self.catalog.lock(&upload_lock(id)).await?;
        let upload = self.get_upload(owner, id).await?;
        if upload.concat != Concat::None {
            return Err(Error::WrongMode);
        }
        self.complete_locked(owner, upload).await
    }

    /// Completes `upload`; the caller holds its lock.
    pub(super) async fn complete_locked(
        &self,
        owner: &Owner,
        upload: Upload,
    ) -> Result<FileRecord> {
        let id = &upload.id;
        if let Some(file) = &upload.file {
            return self
                .catalog
                .get_file(file)
                .await?
                .ok_or(Error::FileNotFound);
        }
        let size = upload.size.ok_or(Error::LengthUnknown)?;
        let missing = upload.missing();
        if !missing.is_empty() {
            return Err(Error::MissingChunks(missing));
        }
        let chunks = self.catalog.chunks(id).await?;
        let hash = ContentHash::from_block_digests(chunks.iter().flat_map(|c| &c.digests));
        if upload.claims.hash.is_some_and(|claimed| claimed != hash) {
            self.discard(&upload, Some(EndReason::Rejected)).await?;
            return Err(Error::HashMismatch("sha256-4m hash"));
        }

        // The file must fit in the owner's quota: checked before the bytes
        // are committed, and again, held, when the file is recorded.
        drop(self.gate(owner, size).await?);
        self.store.commit(&upload.staging, size, &chunks).await?;
        let mut blob = Blob {
            id: upload.staging.blob.clone(),
            hash,
            size,
            md5: None,
            sha256: None,
        };
        // Claims the stored twin (if any) already vouches for need no pass.
        let twin = self.catalog.find_blob(&hash).await?;
        let to_check = Claims {
            hash: None,
            md5: upload.claims.md5,
            sha256: upload.claims.sha256,
        };
        let verified = match &twin {
            Some(twin) => match self.verify_claims(twin, &to_check).await {
                // The twin was freed meanwhile: our own copy answers.
                Err(Error::Store(StoreError::NotFound)) => {
                    self.verify_claims(&blob, &to_check).await
                }
                other => other,
            },
            None => self.verify_claims(&blob, &to_check).await,
        };
        match verified {
            Ok((md5, sha256)) => {
                blob.md5 = md5;
                blob.sha256 = sha256;
            }
            Err(e @ Error::HashMismatch(_)) => {
                // Forget the upload first: a crash in between leaves an
                // orphan blob file, never an upload that cannot complete.
                self.catalog
                    .end_upload(id, EndReason::Rejected, Timestamp::now())
                    .await?;
                self.store.delete(&blob.id).await?;
                return Err(e);
            }
            // Anything else is the server's trouble: keep the upload so that
            // completing again can succeed.
            Err(e) => return Err(e),
        }

        let file = NewFile {
            id: FileId::random(),
            owner: owner.clone(),
            name: upload.name.clone(),
            mime: upload.mime.clone(),
            created_at: Timestamp::now(),
            // Verified above: the file shows what its owner claimed.
            md5: upload.claims.md5,
            sha256: upload.claims.sha256,
        };
        let new_blob = NewBlob {
            blob: blob.clone(),
            created_at: Timestamp::now(),
        };
        let _gate = self.gate(owner, size).await?;
        let completed = self
            .catalog
            .complete_upload(id, &new_blob, &file)
            .await
            .map_err(|e| match e {
                CatalogError::NotFound => Error::UploadNotFound,
                e => e.into(),
            })?;
        metrics::counter!("tusk_uploads_completed_total").increment(1);
        if !completed.kept_own_blob {
            // Same content was stored already; ours is a redundant copy. The
            // file is recorded: failing to tidy up is not the client's error.
            if let Err(e) = self.store.delete(&blob.id).await {
                tracing::warn!(blob = %blob.id, error = %e, "could not delete a redundant blob");
            }
        }
        Ok(completed.file)
    }

    /// Checks the `md5`/`sha256` claims against stored content. Digests the
    /// blob already has are compared; missing ones are computed in one pass
    /// over the blob and remembered on it, whether the claims match or not:
    /// they are the server's own digests of verified content, so a claim
    /// repeated, right or wrong, never costs another pass. Returns the
    /// blob's digests after the check.
    pub(super) async fn verify_claims(
        &self,
        blob: &Blob,
        claims: &Claims,
    ) -> Result<(Option<[u8; 16]>, Option<Digest32>)> {
        if claims.md5.is_some_and(|c| blob.md5.is_some_and(|b| b != c)) {
            return Err(Error::HashMismatch("md5"));
        }
        if claims
            .sha256
            .is_some_and(|c| blob.sha256.is_some_and(|b| b != c))
        {
            return Err(Error::HashMismatch("sha256"));
        }
        let need_md5 = claims.md5.is_some() && blob.md5.is_none();
        let need_sha256 = claims.sha256.is_some() && blob.sha256.is_none();
        if !need_md5 && !need_sha256 {
            return Ok((blob.md5, blob.sha256));
        }
        let (computed_md5, computed_sha256) = self
            .digest_blob(&blob.id, blob.size, need_md5, need_sha256)
            .await?;
        let md5 = blob.md5.or(computed_md5);
        let sha256 = blob.sha256.or(computed_sha256);
        // Remember them if this blob is already in the catalog.
        match self.catalog.set_blob_checksums(&blob.id, md5, sha256).await {
            Ok(()) | Err(CatalogError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        if need_md5 && computed_md5 != claims.md5 {
            return Err(Error::HashMismatch("md5"));
        }
        if need_sha256 && computed_sha256 != claims.sha256 {
            return Err(Error::HashMismatch("sha256"));
        }
        Ok((md5, sha256))
    }

    /// One sequential pass over a blob computing the asked digests.
    async fn digest_blob(
        &self,
        blob: &BlobId,
        size: u64,
        md5: bool,
        sha256: bool,
    ) -> Result<(Option<[u8; 16]>, Option<Digest32>)> {
        let mut stream = self.store.read(blob, 0..size).await?;
        let mut hashers = (
            md5.then(|| Hasher::new(Algorithm::Md5)),
            sha256.then(|| Hasher::new(Algorithm::Sha256)),
        );
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| Error::Store(e.into()))?;
            hashers = super::blocking(move || {
                let (mut a, mut b) = hashers;
                if let Some(h) = a.as_mut() {
                    h.update(&piece);
                }
                if let Some(h) = b.as_mut() {
                    h.update(&piece);
                }
                (a, b)
            })
            .await?;
        }
        let md5 = hashers
            .0
            .map(|h| h.finish().try_into().expect("md5 is 16 bytes"));
        let sha256 = hashers
            .1
            .map(|h| h.finish().try_into().expect("sha256 is 32 bytes"));
        Ok((md5, sha256))
    }
}
