//! The memory that holds bytes between the network and the store.
//!
//! Every request body is regrouped into batches (see `ingest`), and every
//! byte of a batch, from the moment it is received until the store and the
//! hasher are done with it, is counted against one budget shared by all
//! requests. The memory a server spends on uploads in flight is thus
//! bounded by a setting, not by how many clients connect. Memory is taken
//! for bytes in hand only, as they arrive, never for bytes a client has yet
//! to send: a client that sends slowly holds the little it sent, and only
//! until it is written, so it cannot keep the budget from anyone else.
//!
//! Past the budget, a request waits in line (first come, first served: a
//! small request never overtakes a larger one that waits before it) until
//! bytes of others are written and hashed. The wait never depends on a
//! client, only on the store, and it is bounded: a request that cannot get
//! memory within the budget's patience fails with [`Error::Busy`], which
//! the doors answer with a retryable `503`.
//!
//! Batches are aligned to 4 KiB, so a store that writes with `O_DIRECT` can
//! send them to the device as they are instead of copying them first, and
//! full-size ones are kept for reuse when they come back: a busy server
//! neither asks the allocator for fresh memory per batch (page faults on
//! every one) nor leaves its heap fragmented by them. A batch is allocated
//! at the size of the bytes it holds, so the memory of batches in use never
//! exceeds what the budget counts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aligned_vec::{AVec, ConstAlign};
use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// The alignment of every batch: the block size `O_DIRECT` needs.
pub const ALIGN: usize = 4096;

/// The unit the budget is counted in, so that the semaphore's permit count
/// stays small.
const UNIT: usize = 1024;

type Memory = AVec<u8, ConstAlign<ALIGN>>;

/// A budget of memory for batches, shared by every request of a service.
#[derive(Clone)]
pub struct Buffers {
    budget: Arc<Semaphore>,
    /// How long a request waits for room before it fails with
    /// [`Error::Busy`].
    patience: Duration,
    /// Full-size batches back from use, ready to be taken again.
    spare: Arc<Spare>,
}

struct Spare {
    /// The size of a full batch; smaller ones are not kept.
    size: usize,
    free: Mutex<Vec<Memory>>,
}

impl Spare {
    fn take(&self) -> Option<Memory> {
        self.free.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn keep(&self, memory: Memory) {
        self.free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(memory);
    }
}

/// Budget units for `bytes` bytes.
fn units(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).expect("a share is far below 4 TiB")
}

impl Buffers {
    /// A budget of `bytes` for batches of at most `batch` bytes, raised to
    /// two batches if smaller (enough for one request to pipeline). A
    /// request waits at most `patience` for room.
    pub fn new(bytes: u64, batch: usize, patience: Duration) -> Self {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX).max(2 * batch);
        let units = bytes.div_ceil(UNIT).min(Semaphore::MAX_PERMITS);
        Buffers {
            budget: Arc::new(Semaphore::new(units)),
            patience,
            spare: Arc::new(Spare {
                size: batch,
                free: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Room for `bytes` bytes, once the requests waiting before this one
    /// had theirs and the budget has it; [`Error::Busy`] if that takes
    /// longer than the budget's patience.
    pub async fn reserve(&self, bytes: usize) -> Result<Share> {
        let wait = self.budget.clone().acquire_many_owned(units(bytes));
        match tokio::time::timeout(self.patience, wait).await {
            Ok(permit) => Ok(Share(permit.expect("the budget is never closed"))),
            // Leaving the line gives back what was set aside for this wait.
            Err(_) => Err(Error::Busy),
        }
    }

    /// Grows `share` to cover `bytes` bytes if the budget has the room now
    /// and nobody waits for it; false (and `share` unchanged) otherwise.
    pub fn try_grow(&self, share: &mut Share, bytes: usize) -> bool {
        let more = units(bytes).saturating_sub(share.units());
        if more == 0 {
            return true;
        }
        match self.budget.clone().try_acquire_many_owned(more) {
            Ok(permit) => {
                share.0.merge(permit);
                true
            }
            Err(_) => false,
        }
    }

    /// An empty batch with room for `len` bytes, counted by `share`, whose
    /// room beyond `len` goes back to the budget.
    pub fn batch(&self, mut share: Share, len: usize) -> Batch {
        let keep = units(len);
        assert!(share.units() >= keep, "a batch is counted by its share");
        drop(share.0.split((share.units() - keep) as usize));
        let reused = (len == self.spare.size)
            .then(|| self.spare.take())
            .flatten();
        Batch {
            bytes: reused.unwrap_or_else(|| AVec::with_capacity(ALIGN, len)),
            cap: len,
            spare: self.spare.clone(),
            _share: share.0,
        }
    }

    /// Bytes of the budget not taken right now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.budget.available_permits() * UNIT
    }
}

/// Room in the budget for some bytes in hand, given back on drop.
pub struct Share(OwnedSemaphorePermit);

impl Share {
    fn units(&self) -> u32 {
        u32::try_from(self.0.num_permits()).expect("shares are taken in u32 units")
    }
}

/// Bytes gathered for one batch; their share of the budget is given back
/// when the last copy of the frozen [`Bytes`] is dropped.
pub struct Batch {
    bytes: Memory,
    /// The most it takes (what its share counts).
    cap: usize,
    spare: Arc<Spare>,
    _share: OwnedSemaphorePermit,
}

impl Drop for Batch {
    fn drop(&mut self) {
        // Kept only within the budget: at most as many as could be taken.
        if self.cap == self.spare.size {
            let mut bytes = std::mem::replace(&mut self.bytes, AVec::new(ALIGN));
            bytes.clear();
            self.spare.keep(bytes);
        }
    }
}

impl Batch {
    /// Room left before the capacity asked for.
    pub fn room(&self) -> usize {
        self.cap - self.bytes.len()
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Removes the bytes from `at` on and returns a copy of them (the
    /// batch keeps its share of the budget).
    pub fn split_off(&mut self, at: usize) -> Bytes {
        let rest = Bytes::copy_from_slice(&self.bytes[at..]);
        self.bytes.truncate(at);
        rest
    }

    pub fn extend_from_slice(&mut self, data: &[u8]) {
        assert!(data.len() <= self.room(), "a batch holds what it counts");
        self.bytes.extend_from_slice(data);
    }

    /// The batch as shared bytes (no copy), starting on a 4 KiB boundary.
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for Batch {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENCE: Duration = Duration::from_secs(10);

    async fn take(buffers: &Buffers, len: usize) -> Batch {
        buffers.batch(buffers.reserve(len).await.unwrap(), len)
    }

    #[tokio::test]
    async fn a_batch_gives_its_share_back_when_its_last_copy_goes() {
        let buffers = Buffers::new(8192, 4096, PATIENCE);
        let mut batch = take(&buffers, 8192).await;
        batch.extend_from_slice(&[1; 5000]);
        assert_eq!(buffers.available(), 0);
        let frozen = batch.freeze();
        assert_eq!(frozen.as_ptr() as usize % ALIGN, 0);
        let copy = frozen.slice(100..200);
        drop(frozen);
        assert_eq!(buffers.available(), 0, "a slice still holds the batch");
        drop(copy);
        assert_eq!(buffers.available(), 8192);
    }

    #[tokio::test]
    async fn full_batches_come_back_for_reuse() {
        let buffers = Buffers::new(8192, 4096, PATIENCE);
        let mut batch = take(&buffers, 4096).await;
        batch.extend_from_slice(&[7; 4096]);
        let first = batch.freeze();
        let at = first.as_ptr();
        drop(first);
        let again = take(&buffers, 4096).await;
        assert_eq!(again.room(), 4096, "a reused batch starts empty");
        assert_eq!(again.freeze().as_ptr(), at);
        let small = take(&buffers, 100).await;
        assert_eq!(small.room(), 100);
    }

    #[tokio::test]
    async fn a_batch_counts_only_what_it_holds() {
        let buffers = Buffers::new(64 * 1024, 4096, PATIENCE);
        let mut share = buffers.reserve(10 * 1024).await.unwrap();
        assert!(buffers.try_grow(&mut share, 20 * 1024));
        assert_eq!(buffers.available(), 44 * 1024);
        let batch = buffers.batch(share, 5000);
        assert_eq!(buffers.available(), 59 * 1024, "5000 bytes: 5 units");
        drop(batch);
        assert_eq!(buffers.available(), 64 * 1024);
    }

    #[tokio::test(start_paused = true)]
    async fn a_taker_waits_for_room() {
        let buffers = Buffers::new(4096, 2048, PATIENCE);
        let held = take(&buffers, 4096).await.freeze();
        let waiting = tokio::spawn({
            let buffers = buffers.clone();
            async move { take(&buffers, 4096).await.room() }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(held);
        assert_eq!(waiting.await.unwrap(), 4096);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_patience_is_busy_and_leaves_the_line() {
        let buffers = Buffers::new(4096, 2048, PATIENCE);
        let held = take(&buffers, 4096).await;
        let started = tokio::time::Instant::now();
        let err = buffers.reserve(1024).await.err().expect("no room");
        assert!(matches!(err, Error::Busy), "{err:?}");
        assert_eq!(started.elapsed(), PATIENCE);
        drop(held);
        assert_eq!(buffers.available(), 4096, "the waiter took nothing along");
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_served_in_order() {
        let buffers = Buffers::new(8192, 4096, PATIENCE);
        let mut mine = buffers.reserve(1024).await.unwrap();
        let held = take(&buffers, 4096).await;
        // A large request waits first for all that is left; a small one
        // that comes later must not overtake it, neither by waiting nor by
        // growing into the part that is free.
        let large = tokio::spawn({
            let buffers = buffers.clone();
            async move { buffers.reserve(7168).await }
        });
        tokio::task::yield_now().await;
        let small = tokio::spawn({
            let buffers = buffers.clone();
            async move { buffers.reserve(1024).await.map(drop) }
        });
        tokio::task::yield_now().await;
        assert!(
            !buffers.try_grow(&mut mine, 2048),
            "kept for the first in line"
        );
        assert!(!small.is_finished());
        drop(held);
        let all = large.await.unwrap().unwrap();
        tokio::task::yield_now().await;
        assert!(!small.is_finished());
        drop(all);
        small.await.unwrap().unwrap();
    }
}
