//! `UploadService`: every protocol-neutral rule of uploading, in one place.
//!
//! The doors (JSON API, tus, form posts) parse their requests and call this
//! service; it owns sizes, chunk accounting, hashing, verification, dedup,
//! locking and expiry, over a [`BlobStore`] and a [`Catalog`].
//!
//! - `access`: bearer tokens, open mode and signed download links
//! - `admission`: per-owner limits: uploads in progress, quotas
//! - `create`: check by content hash → instant upload, resume or new upload
//! - `chunks`: chunk-indexed writes (the JSON API)
//! - `append`: appends at an offset in pieces of any length (tus, forms)
//! - `ingest`: the shared write path: stream → block digests + store writer
//! - `buffers`: the one memory budget every upload's batches come from
//! - `complete`: verification and commit into a file, deduplicated
//! - `proof`: proof of possession, for instant uploads across owners
//! - `concat`: partial uploads and their concatenation into final uploads
//! - `files`: labels, whole streams as files; listing, reading, deleting
//! - `small`: small whole files in batches: one store call, one transaction
//! - `replay`: requests repeated after a lost answer, answered as before
//! - `sweep`: ending uploads idle past their expiry, freeing their staging;
//!   discarding staging and blobs no record names

mod access;
mod admission;
mod append;
mod buffers;
mod chunks;
mod complete;
mod concat;
mod create;
mod files;
mod ingest;
mod proof;
mod replay;
mod small;
mod sweep;

use std::sync::Arc;
use std::time::Duration;

pub use access::{Identity, IssuedToken, TOKEN_PREFIX, parse_owner};
pub use append::{AppendOutcome, Appended, Checks};
use buffers::Buffers;
pub use chunks::ChunkPut;
pub use concat::NewFinalUpload;
pub use create::{CreateOutcome, NewAppendUpload, NewUpload};
pub use files::{Download, Label};
pub use proof::{
    Challenge, MAX_PROOF_BLOCKS, PROOF_BLOCK_TIME, PROOF_BLOCKS, PROOF_TIME, ProofOutcome,
    challenge_blocks, proof_time,
};
pub use small::SmallFile;
pub use sweep::ORPHAN_AGE;

use crate::catalog::{Catalog, LockGuard};
use crate::error::{Error, Result};
use crate::hash::BLOCK_SIZE;
use crate::model::{Concat, EndReason, Owner, Timestamp, Upload, UploadId};
use crate::store::BlobStore;

/// How long an append waits for another one on the same upload to end
/// before it is refused with [`Error::Locked`]. Short: the other one is
/// usually a live upload, and its client is told to ask again.
pub const APPEND_PATIENCE: Duration = Duration::from_secs(1);

/// How often a waiting lock is tried again.
const LOCK_POLL: Duration = Duration::from_millis(10);

/// The chunk size picked when a client asks for none: 8 MiB.
pub const DEFAULT_CHUNK_SIZE: u64 = 2 * BLOCK_SIZE;
/// The largest chunk size a client may ask for: 1 GiB.
pub const MAX_REQUESTED_CHUNK_SIZE: u64 = 256 * BLOCK_SIZE;
/// Chunk sizes grow so that no upload has more chunks than this.
pub const MAX_CHUNKS: u64 = 10_000;

/// Operating limits of the service.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The largest file accepted, in bytes.
    pub max_file_size: u64,
    /// How long an upload may sit idle before it expires.
    pub upload_ttl: Duration,
    /// How long a request body may send nothing before it is failed.
    pub body_idle_timeout: Duration,
    /// The most memory spent on bytes between the network and the store,
    /// over all requests (see `buffers`).
    pub buffer_memory: u64,
    /// How long a request waits for that memory before it fails with
    /// [`Error::Busy`].
    pub memory_wait: Duration,
    /// The most unfinished uploads one owner may have at once.
    pub max_uploads: u32,
    /// How many proofs of possession one owner may have checked per
    /// minute, on each node (a burst of as many, refilled evenly).
    pub proofs_per_minute: u32,
    /// How long an unfinished upload must sit idle before a check of the
    /// same content under another name takes it over (see `create`).
    pub rename_after: Duration,
    /// How old staging or a blob that no record names must be before the
    /// sweeper discards it (see `sweep`): longer than the moments between
    /// writing something and recording it.
    pub orphan_age: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_size: 1 << 40,
            upload_ttl: Duration::from_secs(24 * 3600),
            body_idle_timeout: Duration::from_secs(60),
            buffer_memory: 32 << 20,
            memory_wait: Duration::from_secs(10),
            max_uploads: 1000,
            proofs_per_minute: 30,
            rename_after: Duration::from_secs(30),
            orphan_age: ORPHAN_AGE,
        }
    }
}

/// What [`UploadService::readiness`] found: `None` where all is well, else
/// what went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub store: Option<String>,
    pub catalog: Option<String>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.store.is_none() && self.catalog.is_none()
    }
}

/// The upload service. Cheap to share behind an `Arc`.
pub struct UploadService {
    store: Arc<dyn BlobStore>,
    catalog: Arc<dyn Catalog>,
    limits: Limits,
    buffers: Buffers,
    access: access::AccessState,
    /// Proofs each owner may still have checked (see `proof`).
    proofs: governor::DefaultKeyedRateLimiter<Owner>,
}

impl UploadService {
    pub fn new(store: Arc<dyn BlobStore>, catalog: Arc<dyn Catalog>, limits: Limits) -> Self {
        UploadService {
            store,
            catalog,
            buffers: Buffers::new(limits.buffer_memory, ingest::BATCH, limits.memory_wait),
            proofs: governor::RateLimiter::keyed(governor::Quota::per_minute(
                std::num::NonZeroU32::new(limits.proofs_per_minute.max(1)).expect("at least 1"),
            )),
            limits,
            access: access::AccessState::default(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the store and the catalog both answer, each within
    /// `patience`: what a load balancer asks before sending requests. The
    /// errors say which one does not, and why.
    pub async fn readiness(&self, patience: Duration) -> Readiness {
        let timed_out = || format!("no answer within {} ms", patience.as_millis());
        let (store, catalog) = tokio::join!(
            tokio::time::timeout(patience, self.store.ping()),
            tokio::time::timeout(patience, self.catalog.ping()),
        );
        Readiness {
            store: match store {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(timed_out()),
            },
            catalog: match catalog {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(timed_out()),
            },
        }
    }

    /// An upload of `owner`; anyone else's is as good as missing. An
    /// unfinished upload past its expiry, or one that ended, is gone.
    pub async fn get_upload(&self, owner: &Owner, id: &UploadId) -> Result<Upload> {
        let upload = self.find_upload(owner, id).await?;
        if upload.is_expired(Timestamp::now()) {
            return Err(Error::UploadGone(EndReason::Expired));
        }
        Ok(upload)
    }

    /// An upload once no append is running on it, waiting for that at most
    /// `patience`: what a client about to resume should be told, so that
    /// it sees every byte a broken-off append it sent is still storing.
    pub async fn settled_upload(
        &self,
        owner: &Owner,
        id: &UploadId,
        patience: Duration,
    ) -> Result<Upload> {
        let _settled = self.lock_within(&upload_lock(id), patience).await?;
        self.get_upload(owner, id).await
    }

    /// An upload of `owner`, expired or not.
    async fn find_upload(&self, owner: &Owner, id: &UploadId) -> Result<Upload> {
        match self.catalog.get_upload(id).await? {
            Some(u) if &u.owner == owner => Ok(u),
            Some(_) => Err(Error::UploadNotFound),
            None => match self.catalog.ended_upload(id).await? {
                Some(ended) if &ended.owner == owner => Err(Error::UploadGone(ended.reason)),
                _ => Err(Error::UploadNotFound),
            },
        }
    }

    /// Abandons an upload, expired or not: its staged bytes and its record.
    /// A completed upload's file stays. Unfinished final uploads made of it
    /// end with it, as they can no longer complete.
    pub async fn delete_upload(&self, owner: &Owner, id: &UploadId) -> Result<()> {
        let upload = {
            // Not in the middle of an append or a completion.
            let _guard = self.catalog.lock(&upload_lock(id)).await?;
            let upload = self.find_upload(owner, id).await?;
            self.discard(&upload, Some(EndReason::Terminated)).await?;
            upload
        };
        if upload.concat == Concat::Partial {
            for fin in self.catalog.finals_with_part(id).await? {
                let _guard = self.catalog.lock(&upload_lock(&fin)).await?;
                if let Ok(fin) = self.find_upload(owner, &fin).await
                    && fin.file.is_none()
                {
                    self.discard(&fin, Some(EndReason::Terminated)).await?;
                }
            }
        }
        Ok(())
    }

    /// Forgets an upload and its staged bytes, remembering why it ended if
    /// a client may ask (a completed upload's bytes belong to its file and
    /// stay).
    async fn discard(&self, upload: &Upload, reason: Option<EndReason>) -> Result<()> {
        match reason {
            Some(reason) => {
                self.catalog
                    .end_upload(&upload.id, reason, Timestamp::now())
                    .await?
            }
            None => self.catalog.delete_upload(&upload.id).await?,
        };
        if upload.file.is_none() {
            self.store.abort(&upload.staging).await?;
            if upload.concat == Concat::Partial {
                // A finished part was committed into its own blob.
                self.store.delete(&upload.staging.blob).await?;
            }
        }
        Ok(())
    }

    /// Holds `key` if it is free or becomes free within `patience`.
    ///
    /// Polls [`Catalog::try_lock`] rather than abandoning a waiting
    /// [`Catalog::lock`] after a timeout: giving up a wait is not safe on
    /// every backend (a PostgreSQL session could still be granted the lock
    /// after the waiter left).
    async fn lock_within(&self, key: &str, patience: Duration) -> Result<Option<LockGuard>> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Some(guard) = self.catalog.try_lock(key).await? {
                return Ok(Some(guard));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    /// When an upload touched now expires.
    fn expiry(&self) -> Timestamp {
        Timestamp::now().plus(self.limits.upload_ttl)
    }

    fn check_size(&self, size: u64) -> Result<()> {
        if size > self.limits.max_file_size {
            return Err(Error::FileTooLarge {
                max: self.limits.max_file_size,
            });
        }
        Ok(())
    }
}

/// Runs a write to its end even if the request that started it goes away.
///
/// Dropping a handler mid-write would drop the lock it holds while a
/// blocking write it started is still running; another writer could then
/// touch the same bytes. As a task of its own, the write finishes (the
/// body of a vanished client soon fails) and only then releases its lock.
async fn detach<T: Send + 'static>(
    work: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    match tokio::spawn(work).await {
        Ok(done) => done,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(shutting_down()),
    }
}

/// Tasks are cancelled only when the runtime shuts down.
fn shutting_down() -> Error {
    Error::Store(crate::store::StoreError::Backend(
        "the server is shutting down".into(),
    ))
}

/// Runs CPU-bound work (hashing) on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        shutting_down()
    })
}

/// A catalog's "not found" while changing an upload: it was deleted.
fn not_found(e: crate::catalog::CatalogError) -> Error {
    match e {
        crate::catalog::CatalogError::NotFound => Error::UploadNotFound,
        e => e.into(),
    }
}

/// The lock key held while an upload is appended to or completed.
fn upload_lock(id: &UploadId) -> String {
    format!("upload:{id}")
}

/// The lock key held while one chunk of an upload is written.
fn chunk_lock(id: &UploadId, index: u32) -> String {
    format!("chunk:{id}:{index}")
}

/// Picks the chunk size of an upload of at most `size` bytes: the requested
/// size or the default, at least the store's minimum, grown in 4 MiB steps
/// until the upload has at most [`MAX_CHUNKS`] chunks.
pub fn pick_chunk_size(size: u64, requested: Option<u64>, store_min: u64) -> Result<u64> {
    if let Some(r) = requested
        && (r == 0 || r % BLOCK_SIZE != 0 || r > MAX_REQUESTED_CHUNK_SIZE)
    {
        return Err(Error::InvalidChunkSize {
            max: MAX_REQUESTED_CHUNK_SIZE,
        });
    }
    let wanted = requested.unwrap_or(DEFAULT_CHUNK_SIZE).max(store_min);
    let needed = size.div_ceil(MAX_CHUNKS).div_ceil(BLOCK_SIZE) * BLOCK_SIZE;
    Ok(wanted.max(needed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn chunk_sizes() {
        assert_eq!(pick_chunk_size(100, None, 4 * MIB).unwrap(), 8 * MIB);
        assert_eq!(
            pick_chunk_size(100, Some(4 * MIB), 4 * MIB).unwrap(),
            4 * MIB
        );
        assert_eq!(
            pick_chunk_size(100, Some(4 * MIB), 8 * MIB).unwrap(),
            8 * MIB
        );
        // 1 TiB: 10,000 chunks need ≥ 104.9 MiB → 108 MiB.
        let tib = 1u64 << 40;
        let cs = pick_chunk_size(tib, None, 4 * MIB).unwrap();
        assert_eq!(cs, 108 * MIB);
        assert!(tib.div_ceil(cs) <= MAX_CHUNKS);
        assert!(tib.div_ceil(cs - 4 * MIB) > MAX_CHUNKS);
        // Exactly 10,000 chunks of 8 MiB still fits.
        assert_eq!(
            pick_chunk_size(10_000 * 8 * MIB, None, 4 * MIB).unwrap(),
            8 * MIB
        );
        assert_eq!(
            pick_chunk_size(10_000 * 8 * MIB + 1, None, 4 * MIB).unwrap(),
            12 * MIB
        );
        for bad in [0, 1, 5 * MIB, 2048 * MIB] {
            assert!(pick_chunk_size(1, Some(bad), 4 * MIB).is_err(), "{bad}");
        }
    }
    mod props {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 512,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            /// Any declared size and requested chunk size: a whole number of
            /// blocks, at least what was asked, at most `MAX_CHUNKS` chunks;
            /// or a refusal of the request alone.
            #[test]
            fn chunk_sizes_fit_any_size(
                size in prop_oneof![any::<u64>(), 0..=(1u64 << 45), Just(u64::MAX)],
                requested in prop_oneof![
                    Just(None),
                    any::<u64>().prop_map(Some),
                    (0..=300u64).prop_map(|n| Some(n * BLOCK_SIZE)),
                ],
                store_min in prop_oneof![Just(BLOCK_SIZE), Just(2 * BLOCK_SIZE)],
            ) {
                match pick_chunk_size(size, requested, store_min) {
                    Ok(cs) => {
                        prop_assert!(cs > 0 && cs % BLOCK_SIZE == 0);
                        prop_assert!(cs >= store_min.max(requested.unwrap_or(0)));
                        prop_assert!(size.div_ceil(cs) <= MAX_CHUNKS);
                    }
                    Err(Error::InvalidChunkSize { .. }) => {
                        let r = requested.unwrap();
                        prop_assert!(r == 0 || r % BLOCK_SIZE != 0 || r > MAX_REQUESTED_CHUNK_SIZE);
                    }
                    Err(e) => return Err(TestCaseError::fail(e.to_string())),
                }
            }
        }
    }
}
