//! Exclusivity across nodes ([`Catalog::lock`], [`Catalog::try_lock`]):
//! PostgreSQL advisory locks, each held by an open transaction on a pool of
//! its own.
//!
//! A key names the advisory lock whose id is the first 8 bytes of the key's
//! SHA-256. Taking it opens a transaction on a connection of the lock pool
//! and runs `pg_advisory_xact_lock` (waiting) or `pg_try_advisory_xact_lock`
//! (not waiting) in it; the guard keeps that transaction open, so the lock
//! lives exactly as long as the guard, or as the connection: if the node
//! dies, PostgreSQL ends its session and every lock it held goes with it.
//! Held locks tie up lock-pool connections only, never the query pool.
//!
//! Dropping a guard rolls its transaction back in a background task (drop
//! cannot wait). So that a key let go is free for the next taker at once,
//! taking a key first waits for this process's releases of it still under
//! way (a ROLLBACK round trip). Another process may see the key held for
//! that round trip longer.
//!
//! Cancelling is safe: each take runs in a task of its own, so dropping a
//! waiting `lock()` future does not stop the wait half-way; the task sees
//! it through and lets go of the lock as soon as it has it, the key then
//! being held for a moment by no one. (The core never cancels a wait: it
//! polls `try_lock` when it needs a time limit.)
//!
//! [`Catalog::lock`]: tusk_core::Catalog::lock
//! [`Catalog::try_lock`]: tusk_core::Catalog::try_lock

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tusk_core::catalog::{CatalogResult, LockGuard};

use super::{Attempt, backend};

/// Takes and holds advisory locks through `pool`.
pub(super) struct Locks {
    pool: PgPool,
}

impl Locks {
    pub(super) fn new(pool: PgPool) -> Self {
        Locks { pool }
    }

    /// Waits until `key` is free, then holds it.
    pub(super) async fn lock(&self, key: &str) -> CatalogResult<LockGuard> {
        self.take(key, true)
            .await?
            .ok_or_else(|| backend("an advisory lock wait ended without the lock"))
    }

    /// Holds `key` if it is free; `None` at once if not.
    pub(super) async fn try_lock(&self, key: &str) -> CatalogResult<Option<LockGuard>> {
        self.take(key, false).await
    }

    async fn take(&self, key: &str, wait: bool) -> CatalogResult<Option<LockGuard>> {
        let task = tokio::spawn(take(self.pool.clone(), lock_id(key), wait));
        let held = task
            .await
            .map_err(|e| backend(format!("taking a lock failed: {e}")))??;
        Ok(held.map(LockGuard::new))
    }
}

/// The advisory lock id of `key`: the first 8 bytes of its SHA-256.
fn lock_id(key: &str) -> i64 {
    let digest = Sha256::digest(key.as_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(id)
}

/// Takes lock `id` in a new transaction on `pool`, waiting for it if
/// `wait`; `None` if it is held elsewhere and not `wait`.
async fn take(pool: PgPool, id: i64, wait: bool) -> Attempt<Option<Held>> {
    releases_done(id).await;
    let mut tx = pool.begin().await?;
    if wait {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    } else {
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if !got {
            tx.rollback().await?;
            return Ok(None);
        }
    }
    Ok(Some(Held {
        id,
        tx: Some(tx),
        runtime: Handle::current(),
    }))
}

/// A held advisory lock: the transaction that took it, still open, and
/// the runtime to end it on (a guard may be dropped on any thread).
struct Held {
    id: i64,
    tx: Option<Transaction<'static, Postgres>>,
    runtime: Handle,
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(tx) = self.tx.take() else { return };
        let releasing = Releasing::start(self.id);
        // If the runtime is shutting down, the task never runs: the
        // connection then closes with it, which releases the lock too.
        self.runtime.spawn(async move {
            if let Err(error) = tx.rollback().await {
                // The connection is broken; PostgreSQL ends the session,
                // releasing the lock, once it notices.
                tracing::warn!(%error, "releasing an advisory lock failed");
            }
            drop(releasing);
        });
    }
}

/// Releases of advisory locks under way in this process: how many per
/// lock id, and a signal each time one ends. Process-wide rather than per
/// catalog, so that two catalogs in one process (two nodes in a test) see
/// each other's releases as promptly as their own.
struct Releases {
    pending: Mutex<HashMap<i64, usize>>,
    ended: Notify,
}

static RELEASES: LazyLock<Releases> = LazyLock::new(|| Releases {
    pending: Mutex::new(HashMap::new()),
    ended: Notify::new(),
});

fn pending() -> MutexGuard<'static, HashMap<i64, usize>> {
    RELEASES
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Counts one release of lock `id` as under way until dropped.
struct Releasing(i64);

impl Releasing {
    fn start(id: i64) -> Self {
        *pending().entry(id).or_default() += 1;
        Releasing(id)
    }
}

impl Drop for Releasing {
    fn drop(&mut self) {
        {
            let mut pending = pending();
            if let Some(n) = pending.get_mut(&self.0) {
                *n -= 1;
                if *n == 0 {
                    pending.remove(&self.0);
                }
            }
        }
        RELEASES.ended.notify_waiters();
    }
}

/// Returns once no release of lock `id` is under way in this process.
async fn releases_done(id: i64) {
    loop {
        let ended = RELEASES.ended.notified();
        let mut ended = std::pin::pin!(ended);
        // Listen before looking, so that a release ending in between is
        // not missed.
        ended.as_mut().enable();
        if !pending().contains_key(&id) {
            return;
        }
        ended.await;
    }
}

#[cfg(test)]
mod tests {
    use super::lock_id;

    #[test]
    fn lock_ids_are_stable_and_distinct() {
        assert_eq!(lock_id("k"), lock_id("k"));
        assert_ne!(lock_id("k"), lock_id("other"));
        // The first 8 bytes of SHA-256("abc"), big-endian.
        assert_eq!(lock_id("abc"), 0xba78_16bf_8f01_cfea_u64 as i64);
    }
}
