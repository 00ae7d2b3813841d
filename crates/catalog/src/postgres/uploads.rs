//! Uploads: their rows, received chunks, parts and ends, for PostgreSQL.
//!
//! Writers take the caller's transaction (`&mut PgConnection`) and leave
//! the commit to it; readers take the pool. Every write that must see the
//! upload as it is now starts with a statement that locks its row (an
//! `UPDATE` or `DELETE` on it), so two nodes working on one upload take
//! turns: an append's compare-and-set of the offset is `UPDATE … WHERE
//! "offset" = $from`, which a concurrent winner makes find no row.

use sqlx::{PgConnection, PgPool};
use tusk_core::catalog::{CatalogError, RESUMABLE_CANDIDATES};
use tusk_core::hash::ContentHash;
use tusk_core::model::{
    BlobId, ChunkRecord, Claims, Concat, EndReason, EndedUpload, Owner, Timestamp, Upload, UploadId,
};

use super::rows::{chunk_from, get, insert_chunks, parse_id, to_i64, upload_from};
use super::{Attempt, backend};

/// An UPDATE that must have found its row.
fn changed(done: sqlx::postgres::PgQueryResult) -> Attempt<()> {
    if done.rows_affected() == 0 {
        return Err(CatalogError::NotFound.into());
    }
    Ok(())
}

pub(super) async fn insert(conn: &mut PgConnection, u: &Upload) -> Attempt<()> {
    sqlx::query(
        "INSERT INTO uploads (id, owner, name, mime, size, hash, md5, sha256, chunk_size, mode, \
         blob_id, staging, \"offset\", tail, file_id, created_at, expires_at, meta, concat) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19)",
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
    .execute(&mut *conn)
    .await?;
    if let Concat::Final(parts) = &u.concat {
        for (pos, part) in parts.iter().enumerate() {
            sqlx::query("INSERT INTO upload_parts (final_id, pos, part_id) VALUES ($1, $2, $3)")
                .bind(u.id.as_str())
                .bind(to_i64(pos as u64))
                .bind(part.as_str())
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

pub(super) async fn get_upload(pool: &PgPool, id: &UploadId) -> Attempt<Option<Upload>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        upload_columns!(),
        " FROM uploads WHERE id = $1"
    ))
    .bind(id.as_str())
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(upload_from).transpose()?)
}

pub(super) async fn find_resumable(
    pool: &PgPool,
    owner: &Owner,
    hash: &ContentHash,
    size: u64,
) -> Attempt<Vec<Upload>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        upload_columns!(),
        " FROM uploads WHERE owner = $1 AND hash = $2 AND size = $3 \
         AND file_id IS NULL AND mode = 'chunks' ORDER BY created_at DESC LIMIT $4"
    ))
    .bind(&owner.0)
    .bind(hash.0.to_vec())
    .bind(to_i64(size))
    .bind(i64::from(RESUMABLE_CANDIDATES))
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(upload_from).collect::<Result<_, _>>()?)
}

pub(super) async fn relabel(
    conn: &mut PgConnection,
    id: &UploadId,
    name: &str,
    mime: &str,
    claims: &Claims,
) -> Attempt<()> {
    let done = sqlx::query(
        "UPDATE uploads SET name = $1, mime = $2, md5 = $3, sha256 = $4 \
         WHERE id = $5 AND file_id IS NULL",
    )
    .bind(name)
    .bind(mime)
    .bind(claims.md5.map(|d| d.to_vec()))
    .bind(claims.sha256.map(|d| d.to_vec()))
    .bind(id.as_str())
    .execute(&mut *conn)
    .await?;
    changed(done)
}

pub(super) async fn touch(
    conn: &mut PgConnection,
    id: &UploadId,
    expires_at: Timestamp,
) -> Attempt<()> {
    let done = sqlx::query("UPDATE uploads SET expires_at = $1 WHERE id = $2 AND file_id IS NULL")
        .bind(expires_at.0)
        .bind(id.as_str())
        .execute(&mut *conn)
        .await?;
    changed(done)
}

pub(super) async fn reserve(conn: &mut PgConnection, id: &UploadId, to: u64) -> Attempt<()> {
    let done = sqlx::query("UPDATE uploads SET reserved = $1 WHERE id = $2 AND file_id IS NULL")
        .bind(to_i64(to))
        .bind(id.as_str())
        .execute(&mut *conn)
        .await?;
    changed(done)
}

pub(super) async fn record_chunk(
    conn: &mut PgConnection,
    id: &UploadId,
    chunk: &ChunkRecord,
    expires_at: Timestamp,
) -> Attempt<()> {
    let moved = sqlx::query("UPDATE uploads SET expires_at = $1 WHERE id = $2")
        .bind(expires_at.0)
        .bind(id.as_str())
        .execute(&mut *conn)
        .await?;
    changed(moved)?;
    insert_chunks(conn, id, std::slice::from_ref(chunk)).await
}

pub(super) async fn record_append(
    conn: &mut PgConnection,
    id: &UploadId,
    (from, to): (u64, u64),
    chunks: &[ChunkRecord],
    tail: Option<&[u8]>,
    expires_at: Timestamp,
) -> Attempt<()> {
    // A concurrent append that moved the offset first makes this find no
    // row: PostgreSQL re-checks the WHERE clause on the row it waited for.
    let moved = sqlx::query(
        "UPDATE uploads SET \"offset\" = $1, tail = $2, expires_at = $3 \
         WHERE id = $4 AND \"offset\" = $5",
    )
    .bind(to_i64(to))
    .bind(tail)
    .bind(expires_at.0)
    .bind(id.as_str())
    .bind(to_i64(from))
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() == 0 {
        let exists = sqlx::query("SELECT 1 FROM uploads WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        return Err(if exists.is_some() {
            CatalogError::OffsetConflict
        } else {
            CatalogError::NotFound
        }
        .into());
    }
    insert_chunks(conn, id, chunks).await
}

pub(super) async fn set_size(conn: &mut PgConnection, id: &UploadId, size: u64) -> Attempt<()> {
    let done = sqlx::query("UPDATE uploads SET size = $1 WHERE id = $2")
        .bind(to_i64(size))
        .bind(id.as_str())
        .execute(&mut *conn)
        .await?;
    changed(done)
}

pub(super) async fn chunks(pool: &PgPool, id: &UploadId) -> Attempt<Vec<ChunkRecord>> {
    let rows = sqlx::query(
        "SELECT idx, digests, receipt FROM upload_chunks WHERE upload_id = $1 ORDER BY idx",
    )
    .bind(id.as_str())
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(chunk_from).collect::<Result<_, _>>()?)
}

pub(super) async fn delete(conn: &mut PgConnection, id: &UploadId) -> Attempt<bool> {
    let gone = sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(id.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(gone.rows_affected() > 0)
}

pub(super) async fn end(
    conn: &mut PgConnection,
    id: &UploadId,
    reason: EndReason,
    at: Timestamp,
) -> Attempt<bool> {
    let Some(row) = sqlx::query("DELETE FROM uploads WHERE id = $1 RETURNING owner")
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(false);
    };
    sqlx::query(
        "INSERT INTO ended_uploads (id, owner, reason, ended_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, reason = EXCLUDED.reason, \
         ended_at = EXCLUDED.ended_at",
    )
    .bind(id.as_str())
    .bind(get::<String>(&row, "owner")?)
    .bind(reason.as_str())
    .bind(at.0)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

pub(super) async fn ended(pool: &PgPool, id: &UploadId) -> Attempt<Option<EndedUpload>> {
    let Some(row) = sqlx::query("SELECT owner, reason, ended_at FROM ended_uploads WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?
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

pub(super) async fn expired_uploads(
    pool: &PgPool,
    now: Timestamp,
    limit: u32,
) -> Attempt<Vec<UploadId>> {
    let rows = sqlx::query(
        "SELECT id FROM uploads WHERE expires_at <= $1 AND file_id IS NULL \
         ORDER BY expires_at LIMIT $2",
    )
    .bind(now.0)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| parse_id(UploadId::parse, get(row, "id")?))
        .collect::<Result<_, _>>()?)
}

pub(super) async fn staging_in_use(pool: &PgPool, blob: &BlobId) -> Attempt<bool> {
    let row = sqlx::query("SELECT EXISTS (SELECT 1 FROM uploads WHERE blob_id = $1) AS used")
        .bind(blob.as_str())
        .fetch_one(pool)
        .await?;
    Ok(get::<bool>(&row, "used")?)
}

/// Which of `blobs` a stored blob or an unfinished upload owns, in one
/// statement (one snapshot).
pub(super) async fn blobs_in_use(pool: &PgPool, blobs: &[BlobId]) -> Attempt<Vec<BlobId>> {
    let ids: Vec<&str> = blobs.iter().map(BlobId::as_str).collect();
    let rows = sqlx::query(
        "SELECT id FROM blobs WHERE id = ANY($1) \
         UNION SELECT blob_id AS id FROM uploads WHERE blob_id = ANY($1) AND file_id IS NULL",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| parse_id(BlobId::parse, get(row, "id")?))
        .collect::<Result<_, _>>()?)
}

pub(super) async fn finals_with_part(pool: &PgPool, part: &UploadId) -> Attempt<Vec<UploadId>> {
    let rows = sqlx::query(
        "SELECT p.final_id FROM upload_parts p JOIN uploads u ON u.id = p.final_id \
         WHERE p.part_id = $1 AND u.file_id IS NULL \
         GROUP BY p.final_id ORDER BY p.final_id COLLATE \"C\"",
    )
    .bind(part.as_str())
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| parse_id(UploadId::parse, get(row, "final_id")?))
        .collect::<Result<_, _>>()?)
}
