//! Blobs and files, for PostgreSQL: storing content once per hash,
//! counting references, listing and deleting files.
//!
//! How this stays right with several nodes at once, at READ COMMITTED:
//! - One blob per hash: `blobs.hash` is UNIQUE and a blob enters through
//!   [`store_blob`], an `INSERT … ON CONFLICT (hash) DO NOTHING` that waits
//!   for a concurrent inserter of the same hash to finish; the loser then
//!   references the winner's row.
//! - Reference counts: every change of `refs` is an `UPDATE` of the blob
//!   row, which locks it until commit, and a file row is written only after
//!   its blob's count went up in the same transaction. A deletion that took
//!   the count to zero deletes the row before anyone else can count on it;
//!   whoever waited on the row then finds none (`NotFound`).

use sqlx::{PgConnection, PgPool};
use tusk_core::catalog::{CatalogError, Completed, DeletedFile, NewBlob};
use tusk_core::hash::{ContentHash, Digest32};
use tusk_core::model::{
    Blob, BlobId, FileId, FilePage, FileQuery, FileRecord, NewFile, Owner, UploadId,
};

use super::rows::{
    blob_from, file_from, file_in, get, insert_file_row, name_key, parse_id, to_i64, written_file,
};
use super::{Attempt, backend};

/// How often [`store_blob`] goes round when the blob it would reference
/// keeps vanishing under it; past that, something is badly wrong.
const STORE_ROUNDS: usize = 10;

/// Stores `new` unless a blob with its hash is stored; then that blob gains
/// `refs` references and the verified checksums of `new` it lacks. Returns
/// the blob that holds the content and whether it is `new` itself (just
/// inserted, with `refs` references). Either way the blob's row is locked
/// until the caller's transaction ends.
pub(super) async fn store_blob(
    conn: &mut PgConnection,
    new: &NewBlob,
    refs: i64,
) -> Attempt<(BlobId, bool)> {
    let b = &new.blob;
    for _ in 0..STORE_ROUNDS {
        // Waits for a concurrent inserter of the same hash, then either
        // inserts (it rolled back) or does nothing (it committed).
        let inserted = sqlx::query(
            "INSERT INTO blobs (id, hash, size, md5, sha256, refs, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (hash) DO NOTHING RETURNING id",
        )
        .bind(b.id.as_str())
        .bind(b.hash.0.to_vec())
        .bind(to_i64(b.size))
        .bind(b.md5.map(|d| d.to_vec()))
        .bind(b.sha256.map(|d| d.to_vec()))
        .bind(refs)
        .bind(new.created_at.0)
        .fetch_optional(&mut *conn)
        .await?;
        if inserted.is_some() {
            return Ok((b.id.clone(), true));
        }
        let twin = sqlx::query(
            "UPDATE blobs SET refs = refs + $1, md5 = COALESCE(md5, $2), \
             sha256 = COALESCE(sha256, $3) WHERE hash = $4 RETURNING id",
        )
        .bind(refs)
        .bind(b.md5.map(|d| d.to_vec()))
        .bind(b.sha256.map(|d| d.to_vec()))
        .bind(b.hash.0.to_vec())
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = twin {
            return Ok((parse_id(BlobId::parse, get(&row, "id")?)?, false));
        }
        // The twin was freed between the two statements: insert after all.
    }
    Err(backend("the blob of a content hash kept vanishing").into())
}

pub(super) async fn find_blob(pool: &PgPool, hash: &ContentHash) -> Attempt<Option<Blob>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        blob_columns!(),
        " FROM blobs b WHERE b.hash = $1"
    ))
    .bind(hash.0.to_vec())
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(blob_from).transpose()?)
}

pub(super) async fn set_blob_checksums(
    conn: &mut PgConnection,
    blob: &BlobId,
    md5: Option<[u8; 16]>,
    sha256: Option<Digest32>,
) -> Attempt<()> {
    let done = sqlx::query(
        "UPDATE blobs SET md5 = COALESCE(md5, $1), sha256 = COALESCE(sha256, $2) WHERE id = $3",
    )
    .bind(md5.map(|d| d.to_vec()))
    .bind(sha256.map(|d| d.to_vec()))
    .bind(blob.as_str())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(CatalogError::NotFound.into());
    }
    Ok(())
}

pub(super) async fn insert_file(
    conn: &mut PgConnection,
    file: &NewFile,
    blob: &BlobId,
) -> Attempt<FileRecord> {
    // Waits for a concurrent deletion holding the row; finds no row if that
    // deletion freed the blob.
    let counted = sqlx::query("UPDATE blobs SET refs = refs + 1 WHERE id = $1")
        .bind(blob.as_str())
        .execute(&mut *conn)
        .await?;
    if counted.rows_affected() == 0 {
        return Err(CatalogError::NotFound.into());
    }
    insert_file_row(conn, file, blob).await?;
    written_file(conn, &file.id).await
}

pub(super) async fn complete_upload(
    conn: &mut PgConnection,
    upload: &UploadId,
    blob: &NewBlob,
    file: &NewFile,
) -> Attempt<Completed> {
    // Locks the upload: a second completion of it waits, then sees it done.
    let row = sqlx::query("SELECT file_id FROM uploads WHERE id = $1 FOR UPDATE")
        .bind(upload.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(CatalogError::NotFound)?;
    if let Some(done) = get::<Option<String>>(&row, "file_id")? {
        let record = written_file(conn, &parse_id(FileId::parse, done)?).await?;
        let kept_own_blob = record.blob.id == blob.blob.id;
        return Ok(Completed {
            file: record,
            kept_own_blob,
        });
    }
    let (blob_id, kept_own_blob) = store_blob(conn, blob, 1).await?;
    insert_file_row(conn, file, &blob_id).await?;
    sqlx::query("UPDATE uploads SET file_id = $1 WHERE id = $2")
        .bind(file.id.as_str())
        .bind(upload.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(Completed {
        file: written_file(conn, &file.id).await?,
        kept_own_blob,
    })
}

pub(super) async fn get_file(pool: &PgPool, id: &FileId) -> Attempt<Option<FileRecord>> {
    let mut conn = pool.acquire().await?;
    file_in(&mut conn, id).await
}

pub(super) async fn list_files(pool: &PgPool, q: &FileQuery) -> Attempt<FilePage> {
    let cursor: Option<i64> = match &q.cursor {
        None => None,
        Some(c) => Some(c.parse().map_err(|_| CatalogError::InvalidCursor)?),
    };
    let limit = q.limit.clamp(1, 1000);
    let search = q.search.as_deref().map(name_key);
    let rows = sqlx::query(concat!(
        file_query!(),
        " WHERE f.owner = $1 AND ($2::BIGINT IS NULL OR f.seq < $2) \
         AND ($3::TEXT IS NULL OR strpos(f.name_key, $3) > 0) \
         ORDER BY f.seq DESC LIMIT $4"
    ))
    .bind(&q.owner.0)
    .bind(cursor)
    .bind(search.as_deref())
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?;
    let more = rows.len() > limit as usize;
    let rows = &rows[..rows.len().min(limit as usize)];
    let next_cursor = match rows.last() {
        Some(last) if more => Some(get::<i64>(last, "seq")?.to_string()),
        _ => None,
    };
    let files = rows.iter().map(file_from).collect::<Result<_, _>>()?;
    Ok(FilePage { files, next_cursor })
}

pub(super) async fn delete_file(
    conn: &mut PgConnection,
    owner: &Owner,
    id: &FileId,
) -> Attempt<Option<DeletedFile>> {
    let Some(row) = sqlx::query("DELETE FROM files WHERE id = $1 AND owner = $2 RETURNING blob_id")
        .bind(id.as_str())
        .bind(&owner.0)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let blob: String = get(&row, "blob_id")?;
    // Locks the blob row until commit: no one counts a new reference
    // between this and the deletion of a blob left without any.
    let refs: i64 = sqlx::query("UPDATE blobs SET refs = refs - 1 WHERE id = $1 RETURNING refs")
        .bind(&blob)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| backend(format!("file {id} references no blob")))
        .and_then(|row| get(&row, "refs"))?;
    let freed_blob = if refs <= 0 {
        sqlx::query("DELETE FROM blobs WHERE id = $1")
            .bind(&blob)
            .execute(&mut *conn)
            .await?;
        Some(parse_id(BlobId::parse, blob)?)
    } else {
        None
    };
    Ok(Some(DeletedFile { freed_blob }))
}

pub(super) async fn find_owned_blob(
    pool: &PgPool,
    owner: &Owner,
    hash: &ContentHash,
) -> Attempt<Option<Blob>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        blob_columns!(),
        " FROM blobs b WHERE b.hash = $1 \
         AND EXISTS (SELECT 1 FROM files f WHERE f.blob_id = b.id AND f.owner = $2)"
    ))
    .bind(hash.0.to_vec())
    .bind(&owner.0)
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(blob_from).transpose()?)
}

pub(super) async fn set_public(
    conn: &mut PgConnection,
    owner: &Owner,
    id: &FileId,
    public: bool,
) -> Attempt<Option<FileRecord>> {
    let changed = sqlx::query("UPDATE files SET public = $1 WHERE id = $2 AND owner = $3")
        .bind(public)
        .bind(id.as_str())
        .bind(&owner.0)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if changed == 0 {
        return Ok(None);
    }
    file_in(conn, id).await
}
