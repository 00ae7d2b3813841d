//! What an owner may start: the per-owner limits.
//!
//! - at most [`Limits::max_uploads`] unfinished uploads at once (429 with
//!   `Retry-After` at the door);
//! - an account's quota: its files at their full size plus its unfinished
//!   uploads (at their length, or at what they hold while the length is
//!   deferred) stay within it (413).
//!
//! Checks and the records they admit happen under one lock per owner, so
//! that two requests racing cannot both slip under a limit. Expired uploads
//! no longer count, swept or not.
//!
//! [`Limits::max_uploads`]: super::Limits::max_uploads

use crate::catalog::LockGuard;
use crate::error::{Error, Result};
use crate::model::{Owner, Timestamp};

use super::UploadService;

/// What is being admitted.
#[derive(Clone, Copy, Debug)]
pub(super) enum Admit {
    /// A new upload of this many bytes (0 while its length is unknown).
    Upload(u64),
    /// A new file of this many bytes on content already stored.
    File(u64),
    /// An upload whose length grows to this many bytes from what it
    /// counted until now (`was`).
    Grow { was: u64, to: u64 },
}

impl UploadService {
    /// Refuses what would pass a limit of `owner`; otherwise holds the
    /// owner's admission lock until the returned guard is dropped (after
    /// the admitted record is written).
    pub(super) async fn admit(&self, owner: &Owner, what: Admit) -> Result<LockGuard> {
        let quota = match self.is_open().await? {
            // Without tokens there are no accounts, so no quotas.
            true => None,
            false => self.catalog.account(owner).await?.and_then(|a| a.quota),
        };
        if quota.is_none() && !matches!(what, Admit::Upload(_)) {
            // Nothing to check: files need no lock.
            return Ok(LockGuard::new(()));
        }
        let guard = self.catalog.lock(&format!("admit:{}", owner.0)).await?;
        let usage = self
            .catalog
            .usage(owner, Timestamp::now(), quota.is_some())
            .await?;
        let adding = match what {
            Admit::Upload(size) => {
                let max = self.limits.max_uploads;
                if usage.uploads >= max {
                    return Err(Error::TooManyUploads { max });
                }
                size
            }
            Admit::File(size) => size,
            Admit::Grow { was, to } => to.saturating_sub(was),
        };
        if let Some(quota) = quota {
            let used = usage.stored.saturating_add(usage.uploading);
            if adding > 0 && used.saturating_add(adding) > quota {
                return Err(Error::QuotaExceeded { quota, used });
            }
        }
        Ok(guard)
    }
}
