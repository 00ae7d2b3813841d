//! The PostgreSQL `Catalog`: one database shared by every node.
//!
//! Semantics are the SQLite catalog's, statement for statement; what
//! differs is that several processes write at once. Every state change is
//! one transaction at READ COMMITTED, made safe by the row locks its own
//! statements take (`SELECT … FOR UPDATE`, `UPDATE … RETURNING`,
//! `INSERT … ON CONFLICT`); [`uploads`] and [`content`] say which rule
//! rests on which lock. A transaction that fails with a serialization
//! failure or a deadlock (SQLSTATE 40001, 40P01) is tried again a few
//! times. Exclusivity uses advisory locks on a pool of their own
//! ([`locks`]), so held locks never starve queries.
//!
//! Layout: `mod.rs` connects and maps each trait method to one attempt;
//! `uploads`, `content` (blobs and files) and `batch` hold the statements;
//! `rows` decodes rows; `locks` holds advisory locks.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tusk_core::catalog::{
    Catalog, CatalogError, CatalogResult, Completed, DeletedFile, InsertedFiles, LockGuard,
    NewBlob, NewFiles,
};
use tusk_core::hash::{ContentHash, Digest32};
use tusk_core::model::{
    Account, Blob, BlobId, ChunkRecord, Claims, EndReason, EndedUpload, FileId, FilePage,
    FileQuery, FileRecord, NewFile, NewToken, Owner, Revoke, Timestamp, TokenRecord, Upload,
    UploadId, Usage,
};

#[macro_use]
mod rows;
mod access;
mod batch;
mod content;
mod locks;
mod uploads;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long connecting may take before `connect` gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a query waits for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections for queries, per node.
const QUERY_CONNECTIONS: u32 = 16;
/// Connections for held locks, per node: at most this many keys are held
/// at once; more takers wait for a connection.
const LOCK_CONNECTIONS: u32 = 128;
/// Attempts at a transaction that keeps failing with a serialization
/// failure or a deadlock.
const ATTEMPTS: u32 = 5;

/// Why one attempt at a catalog operation failed: the database's error,
/// which may be worth another attempt, or the catalog's own answer.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

type Attempt<T> = Result<T, Failure>;

impl Failure {
    /// A serialization failure or deadlock: the transaction was rolled back
    /// and may well succeed if tried again.
    fn is_transient(&self) -> bool {
        match self {
            Failure::Db(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40001" | "40P01"))
            }
            _ => false,
        }
    }
}

/// The one mapping of database errors to catalog errors.
impl From<Failure> for CatalogError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Catalog(e) => e,
            Failure::Db(sqlx::Error::RowNotFound) => CatalogError::NotFound,
            Failure::Db(e) => CatalogError::Backend(e.to_string()),
        }
    }
}

fn backend(e: impl std::fmt::Display) -> CatalogError {
    CatalogError::Backend(e.to_string())
}

/// Runs `attempt` until it succeeds, fails for good, or has failed
/// transiently [`ATTEMPTS`] times.
async fn retry<T, F, Fut>(mut attempt: F) -> CatalogResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(failure) if failure.is_transient() && tries < ATTEMPTS => {
                tracing::debug!(%failure, tries, "catalog transaction conflicted, trying again");
                tokio::time::sleep(Duration::from_millis(10 * u64::from(tries))).await;
                tries += 1;
            }
            done => return done.map_err(CatalogError::from),
        }
    }
}

/// Runs one of the statement functions (`|tx| f(tx, …)`) in a transaction
/// of its own, committing what it did, and again after a transient failure.
macro_rules! transaction {
    ($catalog:expr, |$tx:ident| $work:expr) => {{
        let pool = &$catalog.pool;
        retry(move || async move {
            let mut open = pool.begin().await?;
            let $tx: &mut PgConnection = &mut open;
            let done = $work.await?;
            open.commit().await?;
            Ok(done)
        })
        .await
    }};
}

/// A catalog in a PostgreSQL database, shareable by several nodes.
///
/// Each node opens up to 16 connections for queries and one more per key
/// it holds (up to 128), so the server's `max_connections` must allow for
/// that across nodes. A role's `statement_timeout` or
/// `idle_in_transaction_session_timeout` does not end held locks: the lock
/// connections turn them off.
pub struct PostgresCatalog {
    pool: PgPool,
    locks: locks::Locks,
}

impl PostgresCatalog {
    /// Connects to the database at `url` (a `postgres://` URL), migrates
    /// it, and is ready. Gives up after 10 seconds without an answer; the
    /// error names the host, port and database, never the password.
    ///
    /// Several nodes may connect at once: migrating takes an advisory lock,
    /// so one migrates while the others wait.
    pub async fn connect(url: &str) -> CatalogResult<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| backend(format!("invalid PostgreSQL URL: {e}")))?
            .application_name("tusk");
        let place = format!(
            "PostgreSQL at {}:{} (database {})",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("named after the user"),
        );
        let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
            .await
            .map_err(|_| {
                backend(format!(
                    "cannot connect to {place}: no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| backend(format!("cannot connect to {place}: {e}")))?;
        MIGRATIONS
            .run(&mut conn)
            .await
            .map_err(|e| backend(format!("cannot migrate the catalog in {place}: {e}")))?;
        conn.close()
            .await
            .map_err(|e| backend(format!("{place}: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(QUERY_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.clone());
        // A held lock is an open transaction that may wait or idle for long:
        // no server-side time limit may end it.
        let lock_options = options.application_name("tusk-locks").options([
            ("statement_timeout", "0"),
            ("lock_timeout", "0"),
            ("idle_in_transaction_session_timeout", "0"),
        ]);
        let lock_pool = PgPoolOptions::new()
            .max_connections(LOCK_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Duration::from_secs(60))
            .connect_lazy_with(lock_options);
        Ok(PostgresCatalog {
            pool,
            locks: locks::Locks::new(lock_pool),
        })
    }
}

#[async_trait]
impl Catalog for PostgresCatalog {
    async fn insert_upload(&self, upload: &Upload) -> CatalogResult<()> {
        transaction!(self, |tx| uploads::insert(tx, upload))
    }

    async fn get_upload(&self, id: &UploadId) -> CatalogResult<Option<Upload>> {
        Ok(uploads::get_upload(&self.pool, id).await?)
    }

    async fn find_resumable(
        &self,
        owner: &Owner,
        hash: &ContentHash,
        size: u64,
    ) -> CatalogResult<Vec<Upload>> {
        Ok(uploads::find_resumable(&self.pool, owner, hash, size).await?)
    }

    async fn relabel_upload(
        &self,
        id: &UploadId,
        name: &str,
        mime: &str,
        claims: &Claims,
    ) -> CatalogResult<()> {
        transaction!(self, |tx| uploads::relabel(tx, id, name, mime, claims))
    }

    async fn touch_upload(&self, id: &UploadId, expires_at: Timestamp) -> CatalogResult<()> {
        transaction!(self, |tx| uploads::touch(tx, id, expires_at))
    }

    async fn reserve_upload(&self, id: &UploadId, to: u64) -> CatalogResult<()> {
        transaction!(self, |tx| uploads::reserve(tx, id, to))
    }

    async fn record_chunk(
        &self,
        id: &UploadId,
        chunk: &ChunkRecord,
        expires_at: Timestamp,
    ) -> CatalogResult<()> {
        transaction!(self, |tx| uploads::record_chunk(tx, id, chunk, expires_at))
    }

    async fn record_append(
        &self,
        id: &UploadId,
        from: u64,
        to: u64,
        chunks: &[ChunkRecord],
        tail: Option<&[u8]>,
        expires_at: Timestamp,
    ) -> CatalogResult<()> {
        transaction!(self, |tx| uploads::record_append(
            tx,
            id,
            (from, to),
            chunks,
            tail,
            expires_at
        ))
    }

    async fn set_upload_size(&self, id: &UploadId, size: u64) -> CatalogResult<()> {
        transaction!(self, |tx| uploads::set_size(tx, id, size))
    }

    async fn chunks(&self, id: &UploadId) -> CatalogResult<Vec<ChunkRecord>> {
        Ok(uploads::chunks(&self.pool, id).await?)
    }

    async fn delete_upload(&self, id: &UploadId) -> CatalogResult<bool> {
        transaction!(self, |tx| uploads::delete(tx, id))
    }

    async fn end_upload(
        &self,
        id: &UploadId,
        reason: EndReason,
        at: Timestamp,
    ) -> CatalogResult<bool> {
        transaction!(self, |tx| uploads::end(tx, id, reason, at))
    }

    async fn ended_upload(&self, id: &UploadId) -> CatalogResult<Option<EndedUpload>> {
        Ok(uploads::ended(&self.pool, id).await?)
    }

    async fn expired_uploads(&self, now: Timestamp, limit: u32) -> CatalogResult<Vec<UploadId>> {
        Ok(uploads::expired_uploads(&self.pool, now, limit).await?)
    }

    async fn staging_in_use(&self, blob: &BlobId) -> CatalogResult<bool> {
        Ok(uploads::staging_in_use(&self.pool, blob).await?)
    }

    async fn blobs_in_use(&self, blobs: &[BlobId]) -> CatalogResult<Vec<BlobId>> {
        Ok(uploads::blobs_in_use(&self.pool, blobs).await?)
    }

    async fn finals_with_part(&self, part: &UploadId) -> CatalogResult<Vec<UploadId>> {
        Ok(uploads::finals_with_part(&self.pool, part).await?)
    }

    async fn find_blob(&self, hash: &ContentHash) -> CatalogResult<Option<Blob>> {
        Ok(content::find_blob(&self.pool, hash).await?)
    }

    async fn set_blob_checksums(
        &self,
        blob: &BlobId,
        md5: Option<[u8; 16]>,
        sha256: Option<Digest32>,
    ) -> CatalogResult<()> {
        transaction!(self, |tx| content::set_blob_checksums(
            tx, blob, md5, sha256
        ))
    }

    async fn insert_file(&self, file: &NewFile, blob: &BlobId) -> CatalogResult<FileRecord> {
        transaction!(self, |tx| content::insert_file(tx, file, blob))
    }

    async fn complete_upload(
        &self,
        upload: &UploadId,
        blob: &NewBlob,
        file: &NewFile,
    ) -> CatalogResult<Completed> {
        transaction!(self, |tx| content::complete_upload(tx, upload, blob, file))
    }

    async fn insert_files(&self, files: &NewFiles) -> CatalogResult<InsertedFiles> {
        transaction!(self, |tx| batch::insert_files(tx, files))
    }

    async fn get_file(&self, id: &FileId) -> CatalogResult<Option<FileRecord>> {
        Ok(content::get_file(&self.pool, id).await?)
    }

    async fn list_files(&self, query: &FileQuery) -> CatalogResult<FilePage> {
        Ok(content::list_files(&self.pool, query).await?)
    }

    async fn delete_file(&self, owner: &Owner, id: &FileId) -> CatalogResult<Option<DeletedFile>> {
        transaction!(self, |tx| content::delete_file(tx, owner, id))
    }

    async fn find_owned_blob(
        &self,
        owner: &Owner,
        hash: &ContentHash,
    ) -> CatalogResult<Option<Blob>> {
        Ok(content::find_owned_blob(&self.pool, owner, hash).await?)
    }

    async fn set_file_public(
        &self,
        owner: &Owner,
        id: &FileId,
        public: bool,
    ) -> CatalogResult<Option<FileRecord>> {
        transaction!(self, |tx| content::set_public(tx, owner, id, public))
    }

    async fn insert_token(&self, token: &NewToken) -> CatalogResult<()> {
        transaction!(self, |tx| access::insert_token(tx, token))
    }

    async fn find_token(&self, secret_hash: &Digest32) -> CatalogResult<Option<TokenRecord>> {
        Ok(access::find_token(&self.pool, secret_hash).await?)
    }

    async fn list_tokens(&self) -> CatalogResult<Vec<TokenRecord>> {
        Ok(access::list_tokens(&self.pool).await?)
    }

    async fn revoke_tokens(&self, which: &Revoke, at: Timestamp) -> CatalogResult<u32> {
        transaction!(self, |tx| access::revoke(tx, which, at))
    }

    async fn has_tokens(&self) -> CatalogResult<bool> {
        Ok(access::has_tokens(&self.pool).await?)
    }

    async fn account(&self, owner: &Owner) -> CatalogResult<Option<Account>> {
        Ok(access::account(&self.pool, owner).await?)
    }

    async fn usage(
        &self,
        owner: &Owner,
        now: Timestamp,
        with_stored: bool,
    ) -> CatalogResult<Usage> {
        Ok(access::usage(&self.pool, owner, now, with_stored).await?)
    }

    async fn signing_key(&self, fresh: &[u8; 32]) -> CatalogResult<[u8; 32]> {
        transaction!(self, |tx| access::signing_key(tx, fresh))
    }

    async fn ping(&self) -> CatalogResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(Failure::from)?;
        Ok(())
    }

    async fn lock(&self, key: &str) -> CatalogResult<LockGuard> {
        self.locks.lock(key).await
    }

    async fn try_lock(&self, key: &str) -> CatalogResult<Option<LockGuard>> {
        self.locks.try_lock(key).await
    }
}
