//! The memory parts are held in while they are written, shared by every
//! chunk in flight (`--s3-part-memory`).
//!
//! A part takes memory as its bytes arrive, never for bytes still to come:
//! a chunk sent slowly holds what it received, not its whole size. A part
//! that finds no room for its next bytes never waits for it — waiting
//! while holding memory, parts could end up waiting on each other, and on
//! slow clients — it moves to a temporary file instead (see `part`).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Memory is counted in KiB.
const UNIT: u64 = 1 << 10;

/// Room for parts in memory.
pub(crate) struct PartMemory {
    room: Arc<Semaphore>,
    /// All of it, in units: a part larger than that takes all of it.
    units: u32,
}

/// A part's share of the memory, given back on drop.
#[derive(Default)]
pub(crate) struct Held(Option<OwnedSemaphorePermit>);

impl Held {
    fn units(&self) -> u32 {
        self.0
            .as_ref()
            .map_or(0, |p| u32::try_from(p.num_permits()).unwrap_or(u32::MAX))
    }

    fn add(&mut self, permit: OwnedSemaphorePermit) {
        match &mut self.0 {
            Some(held) => held.merge(permit),
            None => self.0 = Some(permit),
        }
    }
}

impl PartMemory {
    pub(crate) fn new(bytes: u64) -> Self {
        let units = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, Semaphore::MAX_PERMITS as u32);
        PartMemory {
            room: Arc::new(Semaphore::new(units as usize)),
            units,
        }
    }

    fn units_for(&self, bytes: u64) -> u32 {
        u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .min(self.units)
    }

    /// Grows `held` to cover `bytes` if there is room now and no part waits
    /// for it; false (and `held` unchanged) otherwise.
    pub(crate) fn try_grow(&self, held: &mut Held, bytes: u64) -> bool {
        let more = self.units_for(bytes).saturating_sub(held.units());
        if more == 0 {
            return true;
        }
        match self.room.clone().try_acquire_many_owned(more) {
            Ok(permit) => {
                held.add(permit);
                true
            }
            Err(_) => false,
        }
    }

    /// Bytes of parts held in memory right now (a multiple of 1 KiB).
    pub(crate) fn in_use(&self) -> u64 {
        (self.units as u64 - self.room.available_permits() as u64) * UNIT
    }
}
