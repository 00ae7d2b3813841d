//! Small whole files in batches (form posts with many files).
//!
//! Stored one by one, each small file would pay for a whole upload's
//! bookkeeping: a staged part file, several syncs, several catalog
//! transactions. A batch pays for one [`BlobStore::put_blobs`] (fs: one
//! round of syncs for all its blobs) and one [`Catalog::insert_files`]
//! transaction, with the same guarantees: when it returns, every file is
//! durable and recorded; when it fails, none is recorded.
//!
//! The bytes are in memory, so each file is hashed here before anything is
//! written: its content is verified by construction. Content already
//! stored is referenced instead of written again; equal files within the
//! batch are written once; and the catalog settles races with other
//! requests (the blob that lost is deleted again), exactly as completion
//! does.
//!
//! [`BlobStore::put_blobs`]: crate::store::BlobStore::put_blobs
//! [`Catalog::insert_files`]: crate::catalog::Catalog::insert_files

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::catalog::{CatalogError, NewBlob, NewFiles};
use crate::error::Result;
use crate::hash::ContentHash;
use crate::model::{Blob, BlobId, FileId, FileRecord, NewFile, Owner, Timestamp};

use super::admission::Admit;
use super::files::Label;
use super::{UploadService, blocking, detach};

/// How many stored-content lookups run at a time.
const LOOKUPS: usize = 4;

/// A whole file held in memory, for [`UploadService::store_small`].
#[derive(Clone, Debug)]
pub struct SmallFile {
    pub label: Label,
    pub bytes: Bytes,
    /// The id the file gets: derived from the request's idempotency key
    /// (see `replay`), or `None` for a fresh one.
    pub id: Option<FileId>,
}

impl UploadService {
    /// Stores whole files held in memory as files of `owner`, all or none:
    /// on success every one is durable and recorded, in the order given; on
    /// error none is recorded. Each is hashed and deduplicated like any
    /// upload. The door keeps batches small (they are held in memory); the
    /// size limit is checked here, before anything is written.
    ///
    /// Runs to its end even if the caller goes away, so that no batch stops
    /// between the store and the catalog.
    pub async fn store_small(
        self: &Arc<Self>,
        owner: &Owner,
        files: Vec<SmallFile>,
    ) -> Result<Vec<FileRecord>> {
        for file in &files {
            self.check_size(file.bytes.len() as u64)?;
        }
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let (me, owner) = (self.clone(), owner.clone());
        detach(async move { me.store_small_checked(&owner, files).await }).await
    }

    async fn store_small_checked(
        &self,
        owner: &Owner,
        files: Vec<SmallFile>,
    ) -> Result<Vec<FileRecord>> {
        // The owner's quota, checked and held until the files are recorded.
        let total = files.iter().map(|f| f.bytes.len() as u64).sum();
        let _admitted = self.admit(owner, Admit::File(total)).await?;
        let hashes = hash_all(&files).await?;
        let keyed: Option<Vec<_>> = (files.iter().zip(&hashes))
            .map(|(f, h)| Some((f.id.clone()?, f.label.name(), *h)))
            .collect();
        if let Some(done) = self
            .recorded_already(owner, &keyed.unwrap_or_default())
            .await?
        {
            return Ok(done);
        }
        // Each distinct content once, in order of first appearance.
        let mut seen = HashSet::new();
        let distinct: Vec<(ContentHash, Bytes)> = files
            .iter()
            .zip(&hashes)
            .filter(|(_, hash)| seen.insert(**hash))
            .map(|(file, hash)| (*hash, file.bytes.clone()))
            .collect();
        let stored = self
            .stored(distinct.iter().map(|(hash, _)| *hash).collect())
            .await?;
        let (known, new): (Vec<_>, Vec<_>) = distinct
            .into_iter()
            .partition(|(hash, _)| stored.contains(hash));

        let now = Timestamp::now();
        let mut batch = NewFiles {
            blobs: self.write(new, now).await?,
            files: files
                .into_iter()
                .zip(hashes)
                .map(|(file, hash)| {
                    let (name, mime) = file.label.into_parts();
                    let file = NewFile {
                        id: file.id.unwrap_or_else(FileId::random),
                        owner: owner.clone(),
                        name,
                        mime,
                        created_at: now,
                    };
                    (file, hash)
                })
                .collect(),
        };
        let inserted = match self.catalog.insert_files(&batch).await {
            // Content found stored a moment ago was freed since: write it
            // too (what is still stored makes these copies redundant).
            Err(CatalogError::NotFound) if !known.is_empty() => {
                batch.blobs.extend(self.write(known, now).await?);
                self.catalog.insert_files(&batch).await
            }
            other => other,
        };
        let inserted = inserted.inspect_err(|e| {
            // Whether the transaction took effect is not known for every
            // failure: the blobs stay, as orphans if it did not.
            tracing::warn!(blobs = batch.blobs.len(), error = %e, "small files not recorded; their blobs are left as orphans");
        })?;
        for blob in &inserted.redundant {
            // The files are recorded: failing to tidy up is not the
            // client's error.
            if let Err(e) = self.store.delete(blob).await {
                tracing::warn!(blob = %blob, error = %e, "could not delete a redundant blob");
            }
        }
        Ok(inserted.files)
    }

    /// Which of these hashes name stored content.
    async fn stored(&self, hashes: Vec<ContentHash>) -> Result<HashSet<ContentHash>> {
        let found: Vec<Option<ContentHash>> = futures::stream::iter(hashes)
            .map(|hash| async move {
                let blob = self.catalog.find_blob(&hash).await?;
                Ok::<_, CatalogError>(blob.map(|_| hash))
            })
            .buffered(LOOKUPS)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Writes content as new blobs, durable on return; they are not in the
    /// catalog yet.
    async fn write(
        &self,
        content: Vec<(ContentHash, Bytes)>,
        now: Timestamp,
    ) -> Result<Vec<NewBlob>> {
        if content.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<BlobId> = content.iter().map(|_| BlobId::random()).collect();
        let blobs: Vec<(BlobId, Bytes)> = ids
            .iter()
            .cloned()
            .zip(content.iter().map(|(_, bytes)| bytes.clone()))
            .collect();
        self.store.put_blobs(&blobs).await?;
        Ok(ids
            .into_iter()
            .zip(content)
            .map(|(id, (hash, bytes))| NewBlob {
                blob: Blob {
                    id,
                    hash,
                    size: bytes.len() as u64,
                    md5: None,
                    sha256: None,
                },
                created_at: now,
            })
            .collect())
    }
}

/// The content hash of every file, computed on the blocking pool.
async fn hash_all(files: &[SmallFile]) -> Result<Vec<ContentHash>> {
    let bytes: Vec<Bytes> = files.iter().map(|f| f.bytes.clone()).collect();
    blocking(move || bytes.iter().map(|b| ContentHash::of_bytes(b)).collect()).await
}
