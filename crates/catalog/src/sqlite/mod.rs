//! The SQLite `Catalog`: one database file, the default.
//!
//! WAL mode with `synchronous = FULL`, so a committed transaction survives
//! a crash or power loss. All writes go through one connection on one
//! thread (SQLite has one writer anyway; a single connection also rules
//! out the deadlocks of concurrent read-then-write transactions), which
//! commits queued operations in groups so that one fsync covers many;
//! reads use a few connections on threads of their own and run beside the
//! writer thanks to WAL ([`threads`]). Locks are in-process: an SQLite
//! catalog belongs to one server process.
//!
//! Migrations run through sqlx (`migrations/sqlite/`, bookkept in
//! `_sqlx_migrations`) when the catalog opens; every other statement runs
//! through rusqlite.
//!
//! The database file is created 0600 before SQLite opens it, and an
//! existing one with looser modes is tightened: it holds the key that signs
//! download links and the hashes of every token. SQLite gives its `-wal`
//! and `-shm` files the mode of the database file.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tusk_core::catalog::{
    Catalog, CatalogError, CatalogResult, Completed, DeletedFile, InsertedFiles, LockGuard,
    NewBlob, NewFiles,
};
use tusk_core::hash::{ContentHash, Digest32};
use tusk_core::locks::KeyedLocks;
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
mod threads;
mod uploads;

use threads::{Readers, Writer};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Reader connections (and threads): reads are short, so a few keep up
/// with many concurrent requests.
const READERS: usize = 4;

/// Room in each connection's statement cache: more than the catalog has
/// statements, so that every one is prepared once.
const STATEMENTS: usize = 64;

/// A catalog in one SQLite database file.
pub struct SqliteCatalog {
    writer: Writer,
    readers: Readers,
    locks: KeyedLocks,
}

fn backend(e: impl std::fmt::Display) -> CatalogError {
    CatalogError::Backend(e.to_string())
}

impl SqliteCatalog {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> CatalogResult<Self> {
        Self::open_with(path, true).await
    }

    /// [`SqliteCatalog::open`], but commits do not wait for the disk
    /// (`synchronous = NORMAL`: in WAL mode a committed transaction then
    /// survives a crash of the process, not of the machine). For
    /// measurements and scratch servers; never the default.
    pub async fn open_without_fsync(path: &Path) -> CatalogResult<Self> {
        Self::open_with(path, false).await
    }

    async fn open_with(path: &Path, fsync: bool) -> CatalogResult<Self> {
        make_private(path).map_err(|e| backend(format!("{}: {e}", path.display())))?;
        migrate(path).await?;
        let path = path.to_owned();
        let (writer, readers) = tokio::task::spawn_blocking(move || {
            let writer = connect(&path, false, fsync)?;
            let readers = (0..READERS)
                .map(|_| connect(&path, true, fsync))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok::<_, rusqlite::Error>((writer, readers))
        })
        .await
        .map_err(backend)?
        .map_err(backend)?;
        Ok(SqliteCatalog {
            writer: Writer::spawn(writer)?,
            readers: Readers::spawn(readers)?,
            locks: KeyedLocks::new(),
        })
    }

    /// Whether the database answers (for readiness checks).
    pub async fn ping(&self) -> CatalogResult<()> {
        self.readers
            .run(|c| rows::one(c, "SELECT 1", [], |_| Ok(())).map(drop))
            .await
    }
}

/// Creates the database file 0600 if it is missing (an empty file is an
/// empty database), whatever the umask, and takes the permissions of other
/// users off it and off its `-wal` and `-shm` files if they have any.
fn make_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .mode(0o600)
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        let mode = match std::fs::metadata(&file) {
            Ok(meta) => meta.permissions().mode(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700))?;
            tracing::info!(
                "took the permissions of other users off {} (mode {:o} → {:o})",
                file.display(),
                mode & 0o777,
                mode & 0o700
            );
        }
    }
    Ok(())
}

/// Creates the database if needed and brings its schema up to date, on a
/// connection of its own that is closed again.
async fn migrate(path: &Path) -> CatalogResult<()> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30));
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(backend)?;
    let migrated = MIGRATIONS.run(&pool).await.map_err(backend);
    pool.close().await;
    migrated
}

/// Opens a connection to the (migrated) database: the writer's, or a
/// reader's (read-only).
fn connect(path: &Path, read_only: bool, fsync: bool) -> rusqlite::Result<Connection> {
    let access = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    if !read_only {
        conn.execute_batch("PRAGMA journal_mode = WAL")?;
    }
    conn.execute_batch(if fsync {
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON"
    } else {
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON"
    })?;
    Ok(conn)
}

#[async_trait]
impl Catalog for SqliteCatalog {
    async fn insert_upload(&self, u: &Upload) -> CatalogResult<()> {
        let u = u.clone();
        self.writer.run(move |c| uploads::insert(c, &u)).await
    }

    async fn get_upload(&self, id: &UploadId) -> CatalogResult<Option<Upload>> {
        let id = id.clone();
        self.readers.run(move |c| uploads::get_upload(c, &id)).await
    }

    async fn find_resumable(
        &self,
        owner: &Owner,
        hash: &ContentHash,
        size: u64,
    ) -> CatalogResult<Vec<Upload>> {
        let (owner, hash) = (owner.clone(), *hash);
        self.readers
            .run(move |c| uploads::find_resumable(c, &owner, &hash, size))
            .await
    }

    async fn relabel_upload(
        &self,
        id: &UploadId,
        name: &str,
        mime: &str,
        claims: &Claims,
    ) -> CatalogResult<()> {
        let (id, name, mime, claims) =
            (id.clone(), name.to_owned(), mime.to_owned(), claims.clone());
        self.writer
            .run(move |c| uploads::relabel_upload(c, &id, &name, &mime, &claims))
            .await
    }

    async fn touch_upload(&self, id: &UploadId, expires_at: Timestamp) -> CatalogResult<()> {
        let id = id.clone();
        self.writer
            .run(move |c| uploads::touch_upload(c, &id, expires_at))
            .await
    }

    async fn reserve_upload(&self, id: &UploadId, to: u64) -> CatalogResult<()> {
        let id = id.clone();
        self.writer
            .run(move |c| uploads::reserve_upload(c, &id, to))
            .await
    }

    async fn record_chunk(
        &self,
        id: &UploadId,
        chunk: &ChunkRecord,
        expires_at: Timestamp,
    ) -> CatalogResult<()> {
        let (id, chunk) = (id.clone(), chunk.clone());
        self.writer
            .run(move |c| uploads::record_chunk(c, &id, &chunk, expires_at))
            .await
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
        let (id, chunks, tail) = (id.clone(), chunks.to_vec(), tail.map(<[u8]>::to_vec));
        self.writer
            .run(move |c| {
                uploads::record_append(c, &id, (from, to), &chunks, tail.as_deref(), expires_at)
            })
            .await
    }

    async fn set_upload_size(&self, id: &UploadId, size: u64) -> CatalogResult<()> {
        let id = id.clone();
        self.writer
            .run(move |c| uploads::set_size(c, &id, size))
            .await
    }

    async fn chunks(&self, id: &UploadId) -> CatalogResult<Vec<ChunkRecord>> {
        let id = id.clone();
        self.readers.run(move |c| uploads::chunks(c, &id)).await
    }

    async fn delete_upload(&self, id: &UploadId) -> CatalogResult<bool> {
        let id = id.clone();
        self.writer.run(move |c| uploads::delete(c, &id)).await
    }

    async fn end_upload(
        &self,
        id: &UploadId,
        reason: EndReason,
        at: Timestamp,
    ) -> CatalogResult<bool> {
        let id = id.clone();
        self.writer
            .run(move |c| uploads::end(c, &id, reason, at))
            .await
    }

    async fn ended_upload(&self, id: &UploadId) -> CatalogResult<Option<EndedUpload>> {
        let id = id.clone();
        self.readers.run(move |c| uploads::ended(c, &id)).await
    }

    async fn expired_uploads(&self, now: Timestamp, limit: u32) -> CatalogResult<Vec<UploadId>> {
        self.readers
            .run(move |c| uploads::expired(c, now, limit))
            .await
    }

    async fn staging_in_use(&self, blob: &BlobId) -> CatalogResult<bool> {
        let blob = blob.clone();
        self.readers
            .run(move |c| uploads::staging_in_use(c, &blob))
            .await
    }

    async fn blobs_in_use(&self, blobs: &[BlobId]) -> CatalogResult<Vec<BlobId>> {
        let blobs = blobs.to_vec();
        self.readers
            .run(move |c| uploads::blobs_in_use(c, &blobs))
            .await
    }

    async fn finals_with_part(&self, part: &UploadId) -> CatalogResult<Vec<UploadId>> {
        let part = part.clone();
        self.readers
            .run(move |c| uploads::finals_with_part(c, &part))
            .await
    }

    async fn find_blob(&self, hash: &ContentHash) -> CatalogResult<Option<Blob>> {
        let hash = *hash;
        self.readers
            .run(move |c| content::find_blob(c, &hash))
            .await
    }

    async fn set_blob_checksums(
        &self,
        blob: &BlobId,
        md5: Option<[u8; 16]>,
        sha256: Option<Digest32>,
    ) -> CatalogResult<()> {
        let blob = blob.clone();
        self.writer
            .run(move |c| content::set_checksums(c, &blob, md5, sha256))
            .await
    }

    async fn insert_file(&self, file: &NewFile, blob: &BlobId) -> CatalogResult<FileRecord> {
        let (file, blob) = (file.clone(), blob.clone());
        self.writer
            .run(move |c| content::insert_file(c, &file, &blob))
            .await
    }

    async fn complete_upload(
        &self,
        upload: &UploadId,
        blob: &NewBlob,
        file: &NewFile,
    ) -> CatalogResult<Completed> {
        let (upload, blob, file) = (upload.clone(), blob.clone(), file.clone());
        self.writer
            .run(move |c| content::complete_upload(c, &upload, &blob, &file))
            .await
    }

    async fn insert_files(&self, files: &NewFiles) -> CatalogResult<InsertedFiles> {
        let files = files.clone();
        self.writer
            .run(move |c| batch::insert_files(c, &files))
            .await
    }

    async fn get_file(&self, id: &FileId) -> CatalogResult<Option<FileRecord>> {
        let id = id.clone();
        self.readers.run(move |c| rows::file_in(c, &id)).await
    }

    async fn list_files(&self, q: &FileQuery) -> CatalogResult<FilePage> {
        let q = q.clone();
        self.readers.run(move |c| content::list_files(c, &q)).await
    }

    async fn delete_file(&self, owner: &Owner, id: &FileId) -> CatalogResult<Option<DeletedFile>> {
        let (owner, id) = (owner.clone(), id.clone());
        self.writer
            .run(move |c| content::delete_file(c, &owner, &id))
            .await
    }

    async fn find_owned_blob(
        &self,
        owner: &Owner,
        hash: &ContentHash,
    ) -> CatalogResult<Option<Blob>> {
        let (owner, hash) = (owner.clone(), *hash);
        self.readers
            .run(move |c| content::find_owned_blob(c, &owner, &hash))
            .await
    }

    async fn set_file_public(
        &self,
        owner: &Owner,
        id: &FileId,
        public: bool,
    ) -> CatalogResult<Option<FileRecord>> {
        let (owner, id) = (owner.clone(), id.clone());
        self.writer
            .run(move |c| content::set_public(c, &owner, &id, public))
            .await
    }

    async fn insert_token(&self, token: &NewToken) -> CatalogResult<()> {
        let token = token.clone();
        self.writer
            .run(move |c| access::insert_token(c, &token))
            .await
    }

    async fn find_token(&self, secret_hash: &Digest32) -> CatalogResult<Option<TokenRecord>> {
        let hash = *secret_hash;
        self.readers
            .run(move |c| access::find_token(c, &hash))
            .await
    }

    async fn list_tokens(&self) -> CatalogResult<Vec<TokenRecord>> {
        self.readers.run(access::list_tokens).await
    }

    async fn revoke_tokens(&self, which: &Revoke, at: Timestamp) -> CatalogResult<u32> {
        let which = which.clone();
        self.writer
            .run(move |c| access::revoke(c, &which, at))
            .await
    }

    async fn has_tokens(&self) -> CatalogResult<bool> {
        self.readers.run(access::has_tokens).await
    }

    async fn account(&self, owner: &Owner) -> CatalogResult<Option<Account>> {
        let owner = owner.clone();
        self.readers.run(move |c| access::account(c, &owner)).await
    }

    async fn usage(
        &self,
        owner: &Owner,
        now: Timestamp,
        with_stored: bool,
    ) -> CatalogResult<Usage> {
        let owner = owner.clone();
        self.readers
            .run(move |c| access::usage(c, &owner, now, with_stored))
            .await
    }

    async fn signing_key(&self, fresh: &[u8; 32]) -> CatalogResult<[u8; 32]> {
        let fresh = *fresh;
        self.writer
            .run(move |c| access::signing_key(c, &fresh))
            .await
    }

    async fn ping(&self) -> CatalogResult<()> {
        SqliteCatalog::ping(self).await
    }

    async fn lock(&self, key: &str) -> CatalogResult<LockGuard> {
        Ok(self.locks.lock(key).await)
    }

    async fn try_lock(&self, key: &str) -> CatalogResult<Option<LockGuard>> {
        Ok(self.locks.try_lock(key))
    }
}
