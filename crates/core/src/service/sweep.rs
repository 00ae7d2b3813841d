//! The sweeper: uploads left idle past their expiry are ended, and what
//! they had staged (fs part files, S3 multipart uploads and staged pieces)
//! is discarded, so abandoned uploads do not hold space for ever.
//!
//! Staging that no upload names any more — left when a node died between
//! staging and recording an upload, or between forgetting one and
//! discarding its staging — is discarded too, once it is older than
//! [`ORPHAN_AGE`] (an upload is recorded moments after it is staged).
//!
//! Any number of nodes may sweep at once: each upload is swept under its
//! upload lock, taken without waiting (an upload someone is working on is
//! left for the next round), and looked at again under the lock, so an
//! upload resumed meanwhile (its expiry moved on) is kept.

use crate::error::Result;
use crate::model::{EndReason, Timestamp};
use crate::store::StoreError;

use super::{UploadService, upload_lock};

/// How many expired uploads one catalog query hands out.
const SWEEP_BATCH: u32 = 100;

/// How old staging must be before it can be an orphan.
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

    /// Discards staging that no upload names and that was last touched
    /// before `now` − [`ORPHAN_AGE`]; returns how many.
    pub async fn sweep_orphans(&self, now: Timestamp) -> Result<usize> {
        let before = Timestamp(now.0.saturating_sub(ORPHAN_AGE.as_millis() as i64));
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
}
