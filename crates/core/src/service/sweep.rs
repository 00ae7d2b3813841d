//! The sweeper: uploads left idle past their expiry are ended, and what
//! they had staged (fs part files, S3 multipart uploads and staged pieces)
//! is discarded, so abandoned uploads do not hold space for ever.
//!
//! Any number of nodes may sweep at once: each upload is swept under its
//! upload lock, taken without waiting (an upload someone is working on is
//! left for the next round), and looked at again under the lock, so an
//! upload resumed meanwhile (its expiry moved on) is kept.

use crate::error::Result;
use crate::model::{EndReason, Timestamp};

use super::{UploadService, upload_lock};

/// How many expired uploads one catalog query hands out.
const SWEEP_BATCH: u32 = 100;

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
}
