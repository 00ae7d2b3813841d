//! In-process keyed locks, for catalogs whose data lives in one process
//! (SQLite): holding the key is exclusive among the tasks of that process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use crate::catalog::LockGuard;

/// A set of named async mutexes, created on demand and dropped when unused.
#[derive(Default, Clone)]
pub struct KeyedLocks {
    map: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Releases its key on drop and forgets the mutex once no one waits on it.
struct Held {
    key: String,
    map: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        drop(self.guard.take());
        // Only the map holds the mutex now: nobody waits, forget it.
        if map
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            map.remove(&self.key);
        }
    }
}

impl KeyedLocks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits for `key` and holds it until the guard drops.
    pub async fn lock(&self, key: &str) -> LockGuard {
        let mutex = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.to_owned()).or_default().clone()
        };
        let guard = mutex.lock_owned().await;
        LockGuard::new(Held {
            key: key.to_owned(),
            map: self.map.clone(),
            guard: Some(guard),
        })
    }

    /// Holds `key` if it is free; `None` at once if it is held.
    pub fn try_lock(&self, key: &str) -> Option<LockGuard> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let mutex = map.entry(key.to_owned()).or_default().clone();
        match mutex.try_lock_owned() {
            Ok(guard) => Some(LockGuard::new(Held {
                key: key.to_owned(),
                map: self.map.clone(),
                guard: Some(guard),
            })),
            Err(_) => {
                // Held by someone else: leave the entry to its holder.
                drop(map);
                None
            }
        }
    }

    /// Keys currently known (held or waited on); for tests.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn exclusive_and_forgotten() {
        let locks = KeyedLocks::new();
        let first = locks.lock("a").await;
        let other = locks.lock("b").await;
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.lock("a").await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiting.is_finished(), "a second holder of the same key");
        drop(first);
        let second = waiting.await.unwrap();
        assert!(locks.try_lock("a").is_none(), "try_lock on a held key");
        drop(second);
        let third = locks.try_lock("a").expect("a free key");
        drop(third);
        drop(other);
        assert!(locks.is_empty());
    }
}
