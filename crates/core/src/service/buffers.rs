//! The memory that holds bytes between the network and the store.
//!
//! Every request body is regrouped into batches (see `ingest`), and every
//! batch comes out of one budget shared by all requests. The memory a
//! server spends on uploads in flight is thus bounded by a setting, not by
//! how many clients connect: past the budget, a request waits for a batch
//! until another one is written and hashed. Waiting never depends on
//! another wait — a batch is released as soon as the store and the hasher
//! are done with it — so requests cannot block each other for good.
//!
//! Batches are aligned to 4 KiB, so a store that writes with `O_DIRECT` can
//! send them to the device as they are instead of copying them first, and
//! full-size ones are kept for reuse when they come back: a busy server
//! neither asks the allocator for fresh memory per batch (page faults on
//! every one) nor leaves its heap fragmented by them.

use std::sync::{Arc, Mutex};

use aligned_vec::{AVec, ConstAlign};
use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

impl Buffers {
    /// A budget of `bytes` for batches of at most `batch` bytes, raised to
    /// two batches if smaller (enough for one request to pipeline).
    pub fn new(bytes: u64, batch: usize) -> Self {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX).max(2 * batch);
        let units = bytes.div_ceil(UNIT).min(Semaphore::MAX_PERMITS);
        Buffers {
            budget: Arc::new(Semaphore::new(units)),
            spare: Arc::new(Spare {
                size: batch,
                free: Mutex::new(Vec::new()),
            }),
        }
    }

    /// An empty batch with room for `cap` bytes, once the budget has it.
    pub async fn take(&self, cap: usize) -> Batch {
        let units = u32::try_from(cap.div_ceil(UNIT)).expect("a batch is far below 4 TiB");
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(units)
            .await
            .expect("the budget is never closed");
        let reused = (cap == self.spare.size)
            .then(|| self.spare.take())
            .flatten();
        Batch {
            bytes: reused.unwrap_or_else(|| AVec::with_capacity(ALIGN, cap)),
            cap,
            spare: self.spare.clone(),
            _permit: permit,
        }
    }

    /// Bytes of the budget not taken right now.
    #[cfg(test)]
    fn available(&self) -> usize {
        self.budget.available_permits() * UNIT
    }
}

/// Bytes gathered for one batch; their share of the budget is given back
/// when the last copy of the frozen [`Bytes`] is dropped.
pub struct Batch {
    bytes: Memory,
    /// The most it takes (its share of the budget).
    cap: usize,
    spare: Arc<Spare>,
    _permit: OwnedSemaphorePermit,
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

    pub fn extend_from_slice(&mut self, data: &[u8]) {
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

    #[tokio::test]
    async fn a_batch_gives_its_share_back_when_its_last_copy_goes() {
        let buffers = Buffers::new(8192, 4096);
        let mut batch = buffers.take(8192).await;
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
        let buffers = Buffers::new(8192, 4096);
        let mut batch = buffers.take(4096).await;
        batch.extend_from_slice(&[7; 4096]);
        let first = batch.freeze();
        let at = first.as_ptr();
        drop(first);
        let again = buffers.take(4096).await;
        assert_eq!(again.room(), 4096, "a reused batch starts empty");
        assert_eq!(again.freeze().as_ptr(), at);
        let small = buffers.take(100).await;
        assert_eq!(small.room(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn a_taker_waits_for_room() {
        let buffers = Buffers::new(4096, 2048);
        let held = buffers.take(4096).await.freeze();
        let waiting = tokio::spawn({
            let buffers = buffers.clone();
            async move { buffers.take(4096).await.room() }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(held);
        assert_eq!(waiting.await.unwrap(), 4096);
    }
}
