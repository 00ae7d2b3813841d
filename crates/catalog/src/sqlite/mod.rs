//! The SQLite `Catalog`: one database file, the default.
//!
//! WAL mode with `synchronous = FULL`, so a committed transaction survives
//! a crash or power loss. All writes go through one connection (SQLite has
//! one writer anyway; a single connection also rules out the deadlocks of
//! concurrent read-then-write transactions); reads use a small pool and run
//! beside the writer thanks to WAL. Locks are in-process: an SQLite
//! catalog belongs to one server process.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tusk_core::catalog::{
    Catalog, CatalogError, CatalogResult, Completed, DeletedFile, InsertedFiles, LockGuard,
    NewBlob, NewFiles,
};
use tusk_core::hash::{ContentHash, Digest32};
use tusk_core::locks::KeyedLocks;
use tusk_core::model::{
    Blob, BlobId, ChunkRecord, Concat, EndReason, EndedUpload, FileId, FilePage, FileQuery,
    FileRecord, NewFile, Owner, Timestamp, Upload, UploadId,
};

#[macro_use]
mod rows;
mod batch;

use rows::{
    blob_from, chunk_from, file_from, file_in, get, insert_chunks, insert_file_row, name_key,
    parse_id, to_i64, upload_from,
};

/// An UPDATE that must have found its row.
fn changed(done: sqlx::sqlite::SqliteQueryResult) -> CatalogResult<()> {
    if done.rows_affected() == 0 {
        return Err(CatalogError::NotFound);
    }
    Ok(())
}

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A catalog in one SQLite database file.
pub struct SqliteCatalog {
    writer: SqlitePool,
    reader: SqlitePool,
    locks: KeyedLocks,
}

fn backend(e: impl std::fmt::Display) -> CatalogError {
    CatalogError::Backend(e.to_string())
}

impl SqliteCatalog {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> CatalogResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(backend)?;
        MIGRATIONS.run(&writer).await.map_err(backend)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(backend)?;
        Ok(SqliteCatalog {
            writer,
            reader,
            locks: KeyedLocks::new(),
        })
    }

    /// Whether the database answers (for readiness checks).
    pub async fn ping(&self) -> CatalogResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl Catalog for SqliteCatalog {
    async fn insert_upload(&self, u: &Upload) -> CatalogResult<()> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO uploads (id, owner, name, mime, size, hash, md5, sha256, chunk_size, mode, \
             blob_id, staging, \"offset\", tail, file_id, created_at, expires_at, meta, concat) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(u.id.as_str())
        .bind(&u.owner.0)
        .bind(&u.name)
        .bind(&u.mime)
        .bind(u.size.map(to_i64))
        .bind(u.claims.hash.map(|h| h.0.to_vec()))
        .bind(u.claims.md5.map(|d| d.to_vec()))
        .bind(u.claims.sha256.map(|d| d.to_vec()))
        .bind(to_i64(u.chunk_size))
        .bind(u.mode.as_str())
        .bind(u.staging.blob.as_str())
        .bind(&u.staging.handle)
        .bind(to_i64(u.offset))
        .bind(u.tail.as_deref())
        .bind(u.file.as_ref().map(|f| f.as_str()))
        .bind(u.created_at.0)
        .bind(u.expires_at.0)
        .bind(u.meta.as_deref())
        .bind(u.concat.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if let Concat::Final(parts) = &u.concat {
            for (pos, part) in parts.iter().enumerate() {
                sqlx::query("INSERT INTO upload_parts (final_id, pos, part_id) VALUES (?, ?, ?)")
                    .bind(u.id.as_str())
                    .bind(pos as i64)
                    .bind(part.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            }
        }
        tx.commit().await.map_err(backend)
    }

    async fn get_upload(&self, id: &UploadId) -> CatalogResult<Option<Upload>> {
        sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads WHERE id = ?"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?
        .as_ref()
        .map(upload_from)
        .transpose()
    }

    async fn find_resumable(
        &self,
        owner: &Owner,
        hash: &ContentHash,
        size: u64,
        name: &str,
    ) -> CatalogResult<Option<Upload>> {
        sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads WHERE owner = ? AND hash = ? AND size = ? AND name = ? \
             AND file_id IS NULL AND mode = 'chunks' ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(&owner.0)
        .bind(hash.0.to_vec())
        .bind(to_i64(size))
        .bind(name)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?
        .as_ref()
        .map(upload_from)
        .transpose()
    }

    async fn record_chunk(
        &self,
        id: &UploadId,
        chunk: &ChunkRecord,
        expires_at: Timestamp,
    ) -> CatalogResult<()> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        sqlx::query("UPDATE uploads SET expires_at = ? WHERE id = ?")
            .bind(expires_at.0)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)
            .and_then(changed)?;
        insert_chunks(&mut tx, id, std::slice::from_ref(chunk)).await?;
        tx.commit().await.map_err(backend)
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
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let moved = sqlx::query("UPDATE uploads SET \"offset\" = ?, tail = ?, expires_at = ? WHERE id = ? AND \"offset\" = ?")
            .bind(to_i64(to))
            .bind(tail)
            .bind(expires_at.0)
            .bind(id.as_str())
            .bind(to_i64(from))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if moved.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 FROM uploads WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
            return Err(if exists.is_some() {
                CatalogError::OffsetConflict
            } else {
                CatalogError::NotFound
            });
        }
        insert_chunks(&mut tx, id, chunks).await?;
        tx.commit().await.map_err(backend)
    }

    async fn set_upload_size(&self, id: &UploadId, size: u64) -> CatalogResult<()> {
        sqlx::query("UPDATE uploads SET size = ? WHERE id = ?")
            .bind(to_i64(size))
            .bind(id.as_str())
            .execute(&self.writer)
            .await
            .map_err(backend)
            .and_then(changed)
    }

    async fn chunks(&self, id: &UploadId) -> CatalogResult<Vec<ChunkRecord>> {
        sqlx::query(
            "SELECT idx, digests, receipt FROM upload_chunks WHERE upload_id = ? ORDER BY idx",
        )
        .bind(id.as_str())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?
        .iter()
        .map(chunk_from)
        .collect()
    }

    async fn delete_upload(&self, id: &UploadId) -> CatalogResult<bool> {
        let gone = sqlx::query("DELETE FROM uploads WHERE id = ?")
            .bind(id.as_str())
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(gone.rows_affected() > 0)
    }

    async fn end_upload(
        &self,
        id: &UploadId,
        reason: EndReason,
        at: Timestamp,
    ) -> CatalogResult<bool> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let Some(row) = sqlx::query("DELETE FROM uploads WHERE id = ? RETURNING owner")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
        else {
            return Ok(false);
        };
        sqlx::query(
            "INSERT OR REPLACE INTO ended_uploads (id, owner, reason, ended_at) VALUES (?, ?, ?, ?)",
        )
        .bind(id.as_str())
        .bind(get::<String>(&row, "owner")?)
        .bind(reason.as_str())
        .bind(at.0)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn ended_upload(&self, id: &UploadId) -> CatalogResult<Option<EndedUpload>> {
        let Some(row) =
            sqlx::query("SELECT owner, reason, ended_at FROM ended_uploads WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?
        else {
            return Ok(None);
        };
        Ok(Some(EndedUpload {
            owner: Owner(get(&row, "owner")?),
            reason: EndReason::parse(&get::<String>(&row, "reason")?)
                .ok_or_else(|| backend("unknown end reason"))?,
            ended_at: Timestamp(get(&row, "ended_at")?),
        }))
    }

    async fn expired_uploads(&self, now: Timestamp, limit: u32) -> CatalogResult<Vec<UploadId>> {
        sqlx::query(
            "SELECT id FROM uploads WHERE expires_at <= ? AND file_id IS NULL \
             AND concat <> 'final' ORDER BY expires_at LIMIT ?",
        )
        .bind(now.0)
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?
        .iter()
        .map(|row| parse_id(UploadId::parse, get(row, "id")?))
        .collect()
    }

    async fn staging_in_use(&self, blob: &BlobId) -> CatalogResult<bool> {
        let row = sqlx::query("SELECT EXISTS (SELECT 1 FROM uploads WHERE blob_id = ?) AS used")
            .bind(blob.as_str())
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;
        get::<bool>(&row, "used")
    }

    async fn finals_with_part(&self, part: &UploadId) -> CatalogResult<Vec<UploadId>> {
        sqlx::query(
            "SELECT DISTINCT p.final_id FROM upload_parts p JOIN uploads u ON u.id = p.final_id \
             WHERE p.part_id = ? AND u.file_id IS NULL ORDER BY p.final_id",
        )
        .bind(part.as_str())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?
        .iter()
        .map(|row| parse_id(UploadId::parse, get(row, "final_id")?))
        .collect()
    }

    async fn find_blob(&self, hash: &ContentHash) -> CatalogResult<Option<Blob>> {
        sqlx::query(concat!(
            "SELECT ",
            blob_columns!(),
            " FROM blobs b WHERE b.hash = ?"
        ))
        .bind(hash.0.to_vec())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?
        .as_ref()
        .map(blob_from)
        .transpose()
    }

    async fn set_blob_checksums(
        &self,
        blob: &BlobId,
        md5: Option<[u8; 16]>,
        sha256: Option<Digest32>,
    ) -> CatalogResult<()> {
        sqlx::query(
            "UPDATE blobs SET md5 = COALESCE(md5, ?), sha256 = COALESCE(sha256, ?) WHERE id = ?",
        )
        .bind(md5.map(|d| d.to_vec()))
        .bind(sha256.map(|d| d.to_vec()))
        .bind(blob.as_str())
        .execute(&self.writer)
        .await
        .map_err(backend)
        .and_then(changed)
    }

    async fn insert_file(&self, file: &NewFile, blob: &BlobId) -> CatalogResult<FileRecord> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        sqlx::query("UPDATE blobs SET refs = refs + 1 WHERE id = ?")
            .bind(blob.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)
            .and_then(changed)?;
        insert_file_row(&mut tx, file, blob).await?;
        let record = file_in(&mut tx, &file.id)
            .await?
            .ok_or(CatalogError::NotFound)?;
        tx.commit().await.map_err(backend)?;
        Ok(record)
    }

    async fn complete_upload(
        &self,
        upload: &UploadId,
        blob: &NewBlob,
        file: &NewFile,
    ) -> CatalogResult<Completed> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let row = sqlx::query("SELECT file_id FROM uploads WHERE id = ?")
            .bind(upload.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
            .ok_or(CatalogError::NotFound)?;
        if let Some(done) = get::<Option<String>>(&row, "file_id")? {
            let record = file_in(&mut tx, &parse_id(FileId::parse, done)?)
                .await?
                .ok_or(CatalogError::NotFound)?;
            let kept_own_blob = record.blob.id == blob.blob.id;
            return Ok(Completed {
                file: record,
                kept_own_blob,
            });
        }
        let b = &blob.blob;
        let existing = sqlx::query("SELECT id FROM blobs WHERE hash = ?")
            .bind(b.hash.0.to_vec())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let (blob_id, kept_own_blob) = match existing {
            Some(row) => {
                let existing = parse_id(BlobId::parse, get(&row, "id")?)?;
                sqlx::query("UPDATE blobs SET refs = refs + 1, md5 = COALESCE(md5, ?), sha256 = COALESCE(sha256, ?) WHERE id = ?")
                    .bind(b.md5.map(|d| d.to_vec()))
                    .bind(b.sha256.map(|d| d.to_vec()))
                    .bind(existing.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                (existing, false)
            }
            None => {
                sqlx::query("INSERT INTO blobs (id, hash, size, md5, sha256, refs, created_at) VALUES (?, ?, ?, ?, ?, 1, ?)")
                    .bind(b.id.as_str())
                    .bind(b.hash.0.to_vec())
                    .bind(to_i64(b.size))
                    .bind(b.md5.map(|d| d.to_vec()))
                    .bind(b.sha256.map(|d| d.to_vec()))
                    .bind(blob.created_at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                (b.id.clone(), true)
            }
        };
        insert_file_row(&mut tx, file, &blob_id).await?;
        sqlx::query("UPDATE uploads SET file_id = ? WHERE id = ?")
            .bind(file.id.as_str())
            .bind(upload.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let record = file_in(&mut tx, &file.id)
            .await?
            .ok_or(CatalogError::NotFound)?;
        tx.commit().await.map_err(backend)?;
        Ok(Completed {
            file: record,
            kept_own_blob,
        })
    }

    async fn insert_files(&self, files: &NewFiles) -> CatalogResult<InsertedFiles> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let inserted = batch::insert_files(&mut tx, files).await?;
        tx.commit().await.map_err(backend)?;
        Ok(inserted)
    }

    async fn get_file(&self, id: &FileId) -> CatalogResult<Option<FileRecord>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        file_in(&mut conn, id).await
    }

    async fn list_files(&self, q: &FileQuery) -> CatalogResult<FilePage> {
        let cursor: Option<i64> = match &q.cursor {
            None => None,
            Some(c) => Some(c.parse().map_err(|_| CatalogError::InvalidCursor)?),
        };
        let limit = q.limit.clamp(1, 1000);
        let search = q.search.as_deref().map(name_key);
        let rows = sqlx::query(concat!(
            file_query!(),
            " WHERE f.owner = ? AND (? IS NULL OR f.seq < ?) \
             AND (? IS NULL OR instr(f.name_key, ?) > 0) \
             ORDER BY f.seq DESC LIMIT ?"
        ))
        .bind(&q.owner.0)
        .bind(cursor)
        .bind(cursor)
        .bind(search.as_deref())
        .bind(search.as_deref())
        .bind(limit as i64 + 1)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        let more = rows.len() > limit as usize;
        let rows = &rows[..rows.len().min(limit as usize)];
        let next_cursor = match rows.last() {
            Some(last) if more => Some(get::<i64>(last, "seq")?.to_string()),
            _ => None,
        };
        let files = rows.iter().map(file_from).collect::<CatalogResult<_>>()?;
        Ok(FilePage { files, next_cursor })
    }

    async fn delete_file(&self, owner: &Owner, id: &FileId) -> CatalogResult<Option<DeletedFile>> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let Some(row) = sqlx::query("SELECT blob_id FROM files WHERE id = ? AND owner = ?")
            .bind(id.as_str())
            .bind(&owner.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let blob: String = get(&row, "blob_id")?;
        sqlx::query("DELETE FROM files WHERE id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let refs: i64 = sqlx::query("UPDATE blobs SET refs = refs - 1 WHERE id = ? RETURNING refs")
            .bind(&blob)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?
            .try_get("refs")
            .map_err(backend)?;
        let freed_blob = if refs <= 0 {
            sqlx::query("DELETE FROM blobs WHERE id = ?")
                .bind(&blob)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            Some(parse_id(BlobId::parse, blob)?)
        } else {
            None
        };
        tx.commit().await.map_err(backend)?;
        Ok(Some(DeletedFile { freed_blob }))
    }

    async fn ping(&self) -> CatalogResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn lock(&self, key: &str) -> CatalogResult<LockGuard> {
        Ok(self.locks.lock(key).await)
    }

    async fn try_lock(&self, key: &str) -> CatalogResult<Option<LockGuard>> {
        Ok(self.locks.try_lock(key))
    }
}
