//! The sweeper: uploads left idle past their expiry are ended, and what
//! they had staged (fs part files, S3 multipart uploads and staged pieces)
//! is discarded, so abandoned uploads do not hold space for ever.
//!
//! What no record names any more is discarded too, once it is older than
//! the orphan age ([`Limits::orphan_age`], by default [`ORPHAN_AGE`]):
//! staging left when a node died between staging and recording an upload,
//! or between forgetting one and discarding its staging; and committed
//! blobs left when a node died between writing a blob and recording it
//! (small files), between forgetting a blob and deleting it (a freed or
//! redundant blob, an ended partial upload), or when such a deletion
//! failed.
//!
//! Any number of nodes may sweep at once: each upload is swept under its
//! upload lock, taken without waiting (an upload someone is working on is
//! left for the next round), and looked at again under the lock, so an
//! upload resumed meanwhile (its expiry moved on) is kept. Orphans need no
//! lock: two nodes deleting the same one both succeed.
//!
//! [`Limits::orphan_age`]: super::Limits::orphan_age

use std::collections::HashSet;

use futures::StreamExt;

use crate::error::Result;
use crate::model::{BlobId, EndReason, Timestamp};
use crate::store::StoreError;

use super::{UploadService, upload_lock};

/// How many expired uploads one catalog query hands out, and how many
/// listed blobs one catalog query asks about.
const SWEEP_BATCH: u32 = 100;

/// How old staging or a blob must be before it can be an orphan, unless
/// the operator sets another age.
pub const ORPHAN_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

impl UploadService {
    /// Ends every upload expired at `now` that no one is working on;
    /// returns how many were swept. Errors on one upload are logged and
    /// leave it for the next sweep.
    pub async fn sweep_expired(&self, now: Timestamp) -> Result<usize> {
        let mut swept = 0;
        loop {
            let due = self.catalog.expired_uploads(now, SWEEP_BATCH).await?;
            let mut progress = false;
            for id in &due {
                let Some(_guard) = self.catalog.try_lock(&upload_lock(id)).await? else {
                    continue;
                };
                let upload = match self.catalog.get_upload(id).await? {
                    Some(u) if u.is_expired(now) => u,
                    // Resumed, completed or gone meanwhile.
                    _ => continue,
                };
                match self.discard(&upload, Some(EndReason::Expired)).await {
                    Ok(()) => {
                        tracing::info!(upload = %id, "expired upload swept");
                        metrics::counter!("tusk_uploads_expired_total").increment(1);
                        swept += 1;
                        progress = true;
                    }
                    Err(e) => {
                        tracing::warn!(upload = %id, error = %e, "could not sweep an expired upload")
                    }
                }
            }
            // A short batch was the last; a batch where nothing could be
            // swept would come back the same.
            if due.len() < SWEEP_BATCH as usize || !progress {
                return Ok(swept);
            }
        }
    }

    /// The moment before which what no record names is an orphan.
    fn orphan_cutoff(&self, now: Timestamp) -> Timestamp {
        let age = i64::try_from(self.limits.orphan_age.as_millis()).unwrap_or(i64::MAX);
        Timestamp(now.0.saturating_sub(age))
    }

    /// Discards staging that no upload names and that was last touched
    /// before `now` minus the orphan age; returns how many.
    ///
    /// An upload is recorded moments after its staging begins (and a batch
    /// of small files is renamed into place moments after its part files
    /// are written), so staging older than the age that no upload names
    /// is not about to be named.
    pub async fn sweep_orphans(&self, now: Timestamp) -> Result<usize> {
        let before = self.orphan_cutoff(now);
        let mut swept = 0;
        for staging in self.store.staged_before(before).await? {
            if self.catalog.staging_in_use(&staging.blob).await? {
                continue;
            }
            match self.store.abort(&staging).await {
                Ok(()) | Err(StoreError::NotFound) => {
                    tracing::info!(blob = %staging.blob, "orphaned staging discarded");
                    swept += 1;
                }
                Err(e) => {
                    tracing::warn!(blob = %staging.blob, error = %e, "could not discard orphaned staging")
                }
            }
        }
        Ok(swept)
    }

    /// Deletes committed blobs that no record owns and that were written
    /// before `now` minus the orphan age; returns how many.
    ///
    /// Why this never deletes a blob about to be used: a blob an upload
    /// commits (fs rename, S3 CompleteMultipartUpload) is owned by that
    /// upload's record from before its first byte until the completion's
    /// transaction hands it to the stored blobs; a partial upload owns its
    /// blob until it ends. The catalog answers for each blob in one view
    /// ([`Catalog::blobs_in_use`]), so such a blob is never unowned, however
    /// old its store time says it is. The one window where a blob exists
    /// unowned on purpose is a batch of small files: written by
    /// `put_blobs`, recorded by the catalog transaction right after. Its
    /// blobs were written moments ago, so they are younger than the orphan
    /// age and not listed. Nothing else makes an unowned blob owned again
    /// (ids are fresh, and the catalog never adopts a blob it forgot), so
    /// deleting one that was unowned when asked is safe.
    ///
    /// [`Catalog::blobs_in_use`]: crate::Catalog::blobs_in_use
    pub async fn sweep_orphan_blobs(&self, now: Timestamp) -> Result<usize> {
        let mut listed = self.store.blobs_before(self.orphan_cutoff(now));
        let (mut batch, mut swept) = (Vec::new(), 0);
        loop {
            let end = match listed.next().await {
                Some(id) => {
                    batch.push(id?);
                    false
                }
                None => true,
            };
            if batch.len() >= SWEEP_BATCH as usize || (end && !batch.is_empty()) {
                swept += self.delete_unowned(std::mem::take(&mut batch)).await?;
            }
            if end {
                return Ok(swept);
            }
        }
    }

    /// Deletes those of `blobs` that no record owns; how many.
    async fn delete_unowned(&self, blobs: Vec<BlobId>) -> Result<usize> {
        let owned: HashSet<BlobId> = self
            .catalog
            .blobs_in_use(&blobs)
            .await?
            .into_iter()
            .collect();
        let mut deleted = 0;
        for blob in blobs.iter().filter(|b| !owned.contains(*b)) {
            match self.store.delete(blob).await {
                Ok(()) => {
                    tracing::info!(blob = %blob, "orphaned blob deleted");
                    deleted += 1;
                }
                Err(e) => {
                    tracing::warn!(blob = %blob, error = %e, "could not delete an orphaned blob")
                }
            }
        }
        Ok(deleted)
    }
}
