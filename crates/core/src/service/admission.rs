//! What an owner may store: the per-owner limits, on every path that
//! stores bytes.
//!
//! - at most [`Limits::max_uploads`] unfinished uploads at once, final
//!   uploads of a concatenation included (429 with `Retry-After` at the
//!   door);
//! - an account's quota: its files at their full size plus its unfinished
//!   uploads stay within it (413). An upload counts at its length; while
//!   its length is deferred, at what it holds or reserved: an append
//!   reserves quota ([`UploadService::reserve`]) before it writes, in steps
//!   of [`RESERVE_STEP`], so no append stores past the quota. A final upload
//!   counts at what its length exceeds its parts' (the parts count on their
//!   own).
//! - and once more when a file is recorded ([`UploadService::gate`]): the
//!   owner's files plus the new one stay within the quota, whatever was
//!   admitted before. This is the last gate: no path records a file past it.
//!
//! Checks and the records they admit happen under one lock per owner, so
//! that two requests racing cannot both slip under a limit. Expired uploads
//! no longer count, swept or not.
//!
//! [`Limits::max_uploads`]: super::Limits::max_uploads

use crate::catalog::LockGuard;
use crate::error::{Error, Result};
use crate::model::{Owner, Timestamp, UploadId};

use super::UploadService;

/// How much quota an append to an upload of deferred length reserves at a
/// time (16 MiB): a catalog write per step, and at most this much counted
/// ahead of the bytes (given back when the append ends), so that appends
/// running at once share what is left of a quota.
pub(super) const RESERVE_STEP: u64 = 16 << 20;

/// What is being admitted.
#[derive(Clone, Copy, Debug)]
pub(super) enum Admit {
    /// A new upload counted at this many bytes (0 while its length is
    /// unknown).
    Upload(u64),
    /// A new file of this many bytes on content already stored.
    File(u64),
    /// An upload whose length grows to this many bytes from what it
    /// counted until now (`was`).
    Grow { was: u64, to: u64 },
}

impl UploadService {
    /// The quota of `owner`, if it has one. A server without tokens has no
    /// accounts, so no quotas.
    pub(super) async fn quota_of(&self, owner: &Owner) -> Result<Option<u64>> {
        if self.is_open().await? {
            return Ok(None);
        }
        Ok(self.catalog.account(owner).await?.and_then(|a| a.quota))
    }

    /// The lock under which an owner's limits are checked and what they
    /// admit is recorded.
    async fn admission_lock(&self, owner: &Owner) -> Result<LockGuard> {
        Ok(self.catalog.lock(&format!("admit:{}", owner.0)).await?)
    }

    /// Refuses what would pass a limit of `owner`; otherwise holds the
    /// owner's admission lock until the returned guard is dropped (after
    /// the admitted record is written).
    pub(super) async fn admit(&self, owner: &Owner, what: Admit) -> Result<LockGuard> {
        let quota = self.quota_of(owner).await?;
        if quota.is_none() && !matches!(what, Admit::Upload(_)) {
            // Nothing to check: files need no lock.
            return Ok(LockGuard::new(()));
        }
        let guard = self.admission_lock(owner).await?;
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

    /// The last gate before a file of `size` bytes is recorded for `owner`:
    /// its files plus this one stay within its quota. Holds the admission
    /// lock until the guard is dropped (after the file is recorded).
    pub(super) async fn gate(&self, owner: &Owner, size: u64) -> Result<LockGuard> {
        let Some(quota) = self.quota_of(owner).await? else {
            return Ok(LockGuard::new(()));
        };
        let guard = self.admission_lock(owner).await?;
        let used = self
            .catalog
            .usage(owner, Timestamp::now(), true)
            .await?
            .stored;
        if used.saturating_add(size) > quota {
            return Err(Error::QuotaExceeded { quota, used });
        }
        Ok(guard)
    }

    /// Reserves quota for an append to upload `id` of deferred length,
    /// which counts at least `have` bytes now, so that it may write up to
    /// `want`: as much of that as the quota allows. Returns how far it may
    /// write, past `have`; [`Error::QuotaExceeded`] when the quota is used
    /// up.
    pub(super) async fn reserve(
        &self,
        owner: &Owner,
        id: &UploadId,
        quota: u64,
        have: u64,
        want: u64,
    ) -> Result<u64> {
        if want <= have {
            return Ok(have);
        }
        let _guard = self.admission_lock(owner).await?;
        let usage = self.catalog.usage(owner, Timestamp::now(), true).await?;
        let used = usage.stored.saturating_add(usage.uploading);
        let to = want.min(have.saturating_add(quota.saturating_sub(used)));
        if to <= have {
            return Err(Error::QuotaExceeded { quota, used });
        }
        self.catalog
            .reserve_upload(id, to)
            .await
            .map_err(super::not_found)?;
        Ok(to)
    }
}
