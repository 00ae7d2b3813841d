//! What the CLI remembers between runs, in one SQLite file under the user's
//! cache folder:
//!
//! - **hashes** of files, keyed by path and a stamp of the file's metadata
//!   (device, inode, size, mtime and ctime in nanoseconds), so a second
//!   upload of a big file does not read it twice. A file whose ctime is less
//!   than two seconds older than the hashing is not remembered: it may still
//!   be written to within the file system's timestamp resolution. Any write
//!   changes the ctime (it cannot be set back), so a changed file never
//!   matches its old stamp.
//! - **uploads**: which local file went to which server as which file, so a
//!   re-run of an interrupted upload of a folder does not record the files
//!   it already finished a second time (they are checked on the server
//!   first).
//!
//! A cache that cannot be opened or written only costs speed: it is
//! reported once and the command goes on without it.

use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use sqlx::Row;
use sqlx::sqlite::SqliteArguments;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use tusk_client::hash::FileHash;
use tusk_core::ContentHash;

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, SqliteArguments>;

/// How much older than the hashing a file's ctime must be to remember it.
const SETTLED: Duration = Duration::from_secs(2);

/// A file's identity and version, as its metadata tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: i64,
    ino: i64,
    pub size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

impl Stamp {
    pub fn of(meta: &Metadata) -> Stamp {
        Stamp {
            dev: meta.dev() as i64,
            ino: meta.ino() as i64,
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        }
    }

    /// Binds the stamp's columns, in the order `dev, ino, size, mtime_ns,
    /// ctime_ns`, to the next placeholders of `query`.
    fn bind<'q>(&self, query: Query<'q>) -> Query<'q> {
        query
            .bind(self.dev)
            .bind(self.ino)
            .bind(self.size as i64)
            .bind(self.mtime_ns)
            .bind(self.ctime_ns)
    }

    /// Whether the file had stopped changing well before `hashed_at`.
    fn settled_before(&self, hashed_at: SystemTime) -> bool {
        let Ok(at) = hashed_at.duration_since(SystemTime::UNIX_EPOCH) else {
            return false;
        };
        (self.ctime_ns as i128) + (SETTLED.as_nanos() as i128) < at.as_nanos() as i128
    }
}

/// The cache, or nothing when it is turned off or could not be opened.
pub struct Cache {
    pool: Option<SqlitePool>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS hashes (
    path BLOB PRIMARY KEY,
    dev INTEGER NOT NULL, ino INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    blocks BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    server TEXT NOT NULL, path BLOB NOT NULL, name TEXT NOT NULL,
    dev INTEGER NOT NULL, ino INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    hash TEXT NOT NULL, file_id TEXT NOT NULL,
    PRIMARY KEY (server, path, name)
);
";

impl Cache {
    /// No cache at all.
    pub fn off() -> Cache {
        Cache { pool: None }
    }

    /// Opens (creating) the cache in `dir`.
    pub async fn open(dir: &Path) -> Cache {
        match Self::try_open(dir).await {
            Ok(pool) => Cache { pool: Some(pool) },
            Err(e) => {
                eprintln!(
                    "tusk: going on without the local cache ({}): {e:#}",
                    dir.display()
                );
                Cache::off()
            }
        }
    }

    async fn try_open(dir: &Path) -> anyhow::Result<SqlitePool> {
        std::fs::create_dir_all(dir)?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(dir.join("client.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A cache: losing the last entries to a power cut is harmless.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = sqlx::pool::PoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(pool)
    }

    fn warn(&self, e: sqlx::Error) {
        tracing::warn!(error = %e, "the local cache failed");
    }

    /// The remembered hash of `path`, if its stamp is still `stamp`.
    pub async fn hash(&self, path: &Path, stamp: &Stamp) -> Option<FileHash> {
        let pool = self.pool.as_ref()?;
        let query = sqlx::query(
            "SELECT blocks FROM hashes WHERE path = ? AND dev = ? AND ino = ? AND size = ? \
             AND mtime_ns = ? AND ctime_ns = ?",
        )
        .bind(path.as_os_str().as_bytes());
        let row = stamp
            .bind(query)
            .fetch_optional(pool)
            .await
            .map_err(|e| self.warn(e))
            .ok()??;
        let blocks: Vec<u8> = row.get("blocks");
        let blocks: Vec<[u8; 32]> = blocks
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        if blocks.len() as u64 != stamp.size.div_ceil(tusk_core::hash::BLOCK_SIZE) {
            return None;
        }
        Some(FileHash {
            size: stamp.size,
            hash: ContentHash::from_block_digests(&blocks),
            blocks,
        })
    }

    /// Remembers the hash of `path`, computed from `hashed_at` on, if the
    /// file had settled by then.
    pub async fn put_hash(
        &self,
        path: &Path,
        stamp: &Stamp,
        hashed_at: SystemTime,
        hash: &FileHash,
    ) {
        let Some(pool) = self.pool.as_ref() else {
            return;
        };
        if !stamp.settled_before(hashed_at) {
            return;
        }
        let blocks: Vec<u8> = hash.blocks.concat();
        let query = sqlx::query(
            "INSERT OR REPLACE INTO hashes (path, dev, ino, size, mtime_ns, ctime_ns, blocks) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(path.as_os_str().as_bytes());
        let result = stamp.bind(query).bind(blocks).execute(pool).await;
        if let Err(e) = result {
            self.warn(e);
        }
    }

    /// The file id `path` (still at `stamp`) was uploaded to `server` as,
    /// under `name`, with its hash.
    pub async fn uploaded(
        &self,
        server: &str,
        path: &Path,
        name: &str,
        stamp: &Stamp,
    ) -> Option<(String, String)> {
        let pool = self.pool.as_ref()?;
        let query = sqlx::query(
            "SELECT file_id, hash FROM uploads WHERE server = ? AND path = ? AND name = ? \
             AND dev = ? AND ino = ? AND size = ? AND mtime_ns = ? AND ctime_ns = ?",
        )
        .bind(server)
        .bind(path.as_os_str().as_bytes())
        .bind(name);
        let row = stamp
            .bind(query)
            .fetch_optional(pool)
            .await
            .map_err(|e| self.warn(e))
            .ok()??;
        Some((row.get("file_id"), row.get("hash")))
    }

    /// Remembers that `path` at `stamp` became `file_id` on `server`.
    pub async fn put_uploaded(
        &self,
        server: &str,
        path: &Path,
        name: &str,
        stamp: &Stamp,
        hash: &str,
        file_id: &str,
    ) {
        let Some(pool) = self.pool.as_ref() else {
            return;
        };
        let query = sqlx::query(
            "INSERT OR REPLACE INTO uploads \
             (server, path, name, dev, ino, size, mtime_ns, ctime_ns, hash, file_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(server)
        .bind(path.as_os_str().as_bytes())
        .bind(name);
        let result = stamp
            .bind(query)
            .bind(hash)
            .bind(file_id)
            .execute(pool)
            .await;
        if let Err(e) = result {
            self.warn(e);
        }
    }

    /// Forgets the hash of `path` (it turned out wrong).
    pub async fn forget_hash(&self, path: &Path) {
        if let Some(pool) = self.pool.as_ref() {
            let result = sqlx::query("DELETE FROM hashes WHERE path = ?")
                .bind(path.as_os_str().as_bytes())
                .execute(pool)
                .await;
            if let Err(e) = result {
                self.warn(e);
            }
        }
    }
}

/// The cache folder when `--cache-dir` (`TUSK_CACHE_DIR`) does not say:
/// the user's (`$XDG_CACHE_HOME/tusk`, `~/.cache/tusk`).
pub fn default_dir() -> Option<std::path::PathBuf> {
    dirs::cache_dir().map(|d| d.join("tusk"))
}
