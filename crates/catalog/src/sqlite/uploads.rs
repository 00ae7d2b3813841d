//! Uploads: the statements of each upload operation, run on a connection
//! of the writer (inside its transaction) or of a reader.

use rusqlite::{Connection, params};
use tusk_core::catalog::{CatalogError, CatalogResult, RESUMABLE_CANDIDATES};
use tusk_core::hash::ContentHash;
use tusk_core::model::{
    BlobId, ChunkRecord, Claims, Concat, EndReason, EndedUpload, Owner, Timestamp, Upload, UploadId,
};

use super::backend;
use super::rows::{
    all, chunk_from, exec, exists, get, insert_chunks, one, parse_id, to_i64, upload_from,
};

/// An UPDATE that must have found its row.
fn changed(rows: usize) -> CatalogResult<()> {
    if rows == 0 {
        return Err(CatalogError::NotFound);
    }
    Ok(())
}

pub(super) fn insert(conn: &Connection, u: &Upload) -> CatalogResult<()> {
    exec(
        conn,
        "INSERT INTO uploads (id, owner, name, mime, size, hash, md5, sha256, chunk_size, mode, \
         blob_id, staging, \"offset\", tail, file_id, created_at, expires_at, meta, concat) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            u.id.as_str(),
            u.owner.0,
            u.name,
            u.mime,
            u.size.map(to_i64),
            u.claims.hash.as_ref().map(|h| &h.0[..]),
            u.claims.md5.as_ref().map(|d| &d[..]),
            u.claims.sha256.as_ref().map(|d| &d[..]),
            to_i64(u.chunk_size),
            u.mode.as_str(),
            u.staging.blob.as_str(),
            u.staging.handle,
            to_i64(u.offset),
            u.tail.as_deref(),
            u.file.as_ref().map(|f| f.as_str()),
            u.created_at.0,
            u.expires_at.0,
            u.meta.as_deref(),
            u.concat.as_str(),
        ],
    )?;
    if let Concat::Final(parts) = &u.concat {
        for (pos, part) in parts.iter().enumerate() {
            exec(
                conn,
                "INSERT INTO upload_parts (final_id, pos, part_id) VALUES (?, ?, ?)",
                params![u.id.as_str(), pos as i64, part.as_str()],
            )?;
        }
    }
    Ok(())
}

pub(super) fn get_upload(conn: &Connection, id: &UploadId) -> CatalogResult<Option<Upload>> {
    one(
        conn,
        concat!("SELECT ", upload_columns!(), " FROM uploads WHERE id = ?"),
        [id.as_str()],
        upload_from,
    )
}

pub(super) fn find_resumable(
    conn: &Connection,
    owner: &Owner,
    hash: &ContentHash,
    size: u64,
) -> CatalogResult<Vec<Upload>> {
    all(
        conn,
        concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads WHERE owner = ? AND hash = ? AND size = ? \
             AND file_id IS NULL AND mode = 'chunks' ORDER BY created_at DESC LIMIT ?"
        ),
        params![
            owner.0,
            &hash.0[..],
            to_i64(size),
            i64::from(RESUMABLE_CANDIDATES)
        ],
        upload_from,
    )
}

pub(super) fn relabel_upload(
    conn: &Connection,
    id: &UploadId,
    name: &str,
    mime: &str,
    claims: &Claims,
) -> CatalogResult<()> {
    changed(exec(
        conn,
        "UPDATE uploads SET name = ?, mime = ?, md5 = ?, sha256 = ? \
         WHERE id = ? AND file_id IS NULL",
        params![
            name,
            mime,
            claims.md5.map(|d| d.to_vec()),
            claims.sha256.map(|d| d.to_vec()),
            id.as_str()
        ],
    )?)
}

pub(super) fn touch_upload(
    conn: &Connection,
    id: &UploadId,
    expires_at: Timestamp,
) -> CatalogResult<()> {
    changed(exec(
        conn,
        "UPDATE uploads SET expires_at = ? WHERE id = ? AND file_id IS NULL",
        params![expires_at.0, id.as_str()],
    )?)
}

pub(super) fn reserve_upload(conn: &Connection, id: &UploadId, to: u64) -> CatalogResult<()> {
    changed(exec(
        conn,
        "UPDATE uploads SET reserved = ? WHERE id = ? AND file_id IS NULL",
        params![to_i64(to), id.as_str()],
    )?)
}

pub(super) fn record_chunk(
    conn: &Connection,
    id: &UploadId,
    chunk: &ChunkRecord,
    expires_at: Timestamp,
) -> CatalogResult<()> {
    changed(exec(
        conn,
        "UPDATE uploads SET expires_at = ? WHERE id = ?",
        params![expires_at.0, id.as_str()],
    )?)?;
    insert_chunks(conn, id, std::slice::from_ref(chunk))
}

pub(super) fn record_append(
    conn: &Connection,
    id: &UploadId,
    (from, to): (u64, u64),
    chunks: &[ChunkRecord],
    tail: Option<&[u8]>,
    expires_at: Timestamp,
) -> CatalogResult<()> {
    let moved = exec(
        conn,
        "UPDATE uploads SET \"offset\" = ?, tail = ?, expires_at = ? WHERE id = ? AND \"offset\" = ?",
        params![to_i64(to), tail, expires_at.0, id.as_str(), to_i64(from)],
    )?;
    if moved == 0 {
        let found = exists(conn, "SELECT 1 FROM uploads WHERE id = ?", [id.as_str()])?;
        return Err(if found {
            CatalogError::OffsetConflict
        } else {
            CatalogError::NotFound
        });
    }
    insert_chunks(conn, id, chunks)
}

pub(super) fn set_size(conn: &Connection, id: &UploadId, size: u64) -> CatalogResult<()> {
    changed(exec(
        conn,
        "UPDATE uploads SET size = ? WHERE id = ?",
        params![to_i64(size), id.as_str()],
    )?)
}

pub(super) fn chunks(conn: &Connection, id: &UploadId) -> CatalogResult<Vec<ChunkRecord>> {
    all(
        conn,
        "SELECT idx, digests, receipt FROM upload_chunks WHERE upload_id = ? ORDER BY idx",
        [id.as_str()],
        chunk_from,
    )
}

pub(super) fn delete(conn: &Connection, id: &UploadId) -> CatalogResult<bool> {
    Ok(exec(conn, "DELETE FROM uploads WHERE id = ?", [id.as_str()])? > 0)
}

pub(super) fn end(
    conn: &Connection,
    id: &UploadId,
    reason: EndReason,
    at: Timestamp,
) -> CatalogResult<bool> {
    let Some(owner) = one(
        conn,
        "DELETE FROM uploads WHERE id = ? RETURNING owner",
        [id.as_str()],
        |row| get::<String>(row, "owner"),
    )?
    else {
        return Ok(false);
    };
    exec(
        conn,
        "INSERT OR REPLACE INTO ended_uploads (id, owner, reason, ended_at) VALUES (?, ?, ?, ?)",
        params![id.as_str(), owner, reason.as_str(), at.0],
    )?;
    Ok(true)
}

pub(super) fn ended(conn: &Connection, id: &UploadId) -> CatalogResult<Option<EndedUpload>> {
    one(
        conn,
        "SELECT owner, reason, ended_at FROM ended_uploads WHERE id = ?",
        [id.as_str()],
        |row| {
            Ok(EndedUpload {
                owner: Owner(get(row, "owner")?),
                reason: EndReason::parse(&get::<String>(row, "reason")?)
                    .ok_or_else(|| backend("unknown end reason"))?,
                ended_at: Timestamp(get(row, "ended_at")?),
            })
        },
    )
}

pub(super) fn expired(
    conn: &Connection,
    now: Timestamp,
    limit: u32,
) -> CatalogResult<Vec<UploadId>> {
    all(
        conn,
        "SELECT id FROM uploads WHERE expires_at <= ? AND file_id IS NULL \
         ORDER BY expires_at LIMIT ?",
        params![now.0, i64::from(limit)],
        |row| parse_id(UploadId::parse, get(row, "id")?),
    )
}

pub(super) fn staging_in_use(conn: &Connection, blob: &BlobId) -> CatalogResult<bool> {
    one(
        conn,
        "SELECT EXISTS (SELECT 1 FROM uploads WHERE blob_id = ?) AS used",
        [blob.as_str()],
        |row| get::<bool>(row, "used"),
    )?
    .ok_or_else(|| backend("no row returned"))
}

/// Which of `blobs` a stored blob or an unfinished upload owns; one
/// statement (one view) per blob.
pub(super) fn blobs_in_use(conn: &Connection, blobs: &[BlobId]) -> CatalogResult<Vec<BlobId>> {
    let mut owned = Vec::new();
    for blob in blobs {
        let used = one(
            conn,
            "SELECT EXISTS (SELECT 1 FROM blobs WHERE id = ?1) \
             OR EXISTS (SELECT 1 FROM uploads WHERE blob_id = ?1 AND file_id IS NULL) AS used",
            [blob.as_str()],
            |row| get::<bool>(row, "used"),
        )?
        .ok_or_else(|| backend("no row returned"))?;
        if used {
            owned.push(blob.clone());
        }
    }
    Ok(owned)
}

pub(super) fn finals_with_part(conn: &Connection, part: &UploadId) -> CatalogResult<Vec<UploadId>> {
    all(
        conn,
        "SELECT DISTINCT p.final_id FROM upload_parts p JOIN uploads u ON u.id = p.final_id \
         WHERE p.part_id = ? AND u.file_id IS NULL ORDER BY p.final_id",
        [part.as_str()],
        |row| parse_id(UploadId::parse, get(row, "final_id")?),
    )
}
