//! Blobs and files: the statements of each content operation, run on a
//! connection of the writer (inside its transaction) or of a reader.

use rusqlite::{Connection, params};
use tusk_core::catalog::{CatalogError, CatalogResult, Completed, DeletedFile, NewBlob};
use tusk_core::hash::{ContentHash, Digest32};
use tusk_core::model::{
    Blob, BlobId, FileId, FilePage, FileQuery, FileRecord, NewFile, Owner, UploadId,
};

use super::backend;
use super::rows::{
    all, blob_from, exec, file_from, file_in, file_record, get, insert_file_row, name_key, one,
    parse_id, to_i64,
};

pub(super) fn find_blob(conn: &Connection, hash: &ContentHash) -> CatalogResult<Option<Blob>> {
    one(
        conn,
        concat!("SELECT ", blob_columns!(), " FROM blobs b WHERE b.hash = ?"),
        [&hash.0[..]],
        blob_from,
    )
}

pub(super) fn set_checksums(
    conn: &Connection,
    blob: &BlobId,
    md5: Option<[u8; 16]>,
    sha256: Option<Digest32>,
) -> CatalogResult<()> {
    let found = exec(
        conn,
        "UPDATE blobs SET md5 = COALESCE(md5, ?), sha256 = COALESCE(sha256, ?) WHERE id = ?",
        params![md5, sha256, blob.as_str()],
    )?;
    if found == 0 {
        return Err(CatalogError::NotFound);
    }
    Ok(())
}

pub(super) fn insert_file(
    conn: &Connection,
    file: &NewFile,
    blob: &BlobId,
) -> CatalogResult<FileRecord> {
    let blob = one(
        conn,
        concat!(
            "UPDATE blobs SET refs = refs + 1 WHERE id = ?",
            returning_blob!()
        ),
        [blob.as_str()],
        blob_from,
    )?
    .ok_or(CatalogError::NotFound)?;
    insert_file_row(conn, file, &blob.id)?;
    Ok(file_record(file, blob))
}

pub(super) fn complete_upload(
    conn: &Connection,
    upload: &UploadId,
    new: &NewBlob,
    file: &NewFile,
) -> CatalogResult<Completed> {
    let done = one(
        conn,
        "SELECT file_id FROM uploads WHERE id = ?",
        [upload.as_str()],
        |row| get::<Option<String>>(row, "file_id"),
    )?
    .ok_or(CatalogError::NotFound)?;
    if let Some(done) = done {
        let record =
            file_in(conn, &parse_id(FileId::parse, done)?)?.ok_or(CatalogError::NotFound)?;
        let kept_own_blob = record.blob.id == new.blob.id;
        return Ok(Completed {
            file: record,
            kept_own_blob,
        });
    }
    let b = &new.blob;
    let existing = one(
        conn,
        concat!(
            "UPDATE blobs SET refs = refs + 1, md5 = COALESCE(md5, ?), sha256 = COALESCE(sha256, ?) \
             WHERE hash = ?",
            returning_blob!()
        ),
        params![b.md5, b.sha256, &b.hash.0[..]],
        blob_from,
    )?;
    let (stored, kept_own_blob) = match existing {
        Some(stored) => (stored, false),
        None => {
            let stored = one(
                conn,
                concat!(
                    "INSERT INTO blobs (id, hash, size, md5, sha256, refs, created_at) \
                     VALUES (?, ?, ?, ?, ?, 1, ?)",
                    returning_blob!()
                ),
                params![
                    b.id.as_str(),
                    &b.hash.0[..],
                    to_i64(b.size),
                    b.md5,
                    b.sha256,
                    new.created_at.0,
                ],
                blob_from,
            )?
            .ok_or_else(|| backend("no row returned"))?;
            (stored, true)
        }
    };
    insert_file_row(conn, file, &stored.id)?;
    exec(
        conn,
        "UPDATE uploads SET file_id = ? WHERE id = ?",
        params![file.id.as_str(), upload.as_str()],
    )?;
    Ok(Completed {
        file: file_record(file, stored),
        kept_own_blob,
    })
}

pub(super) fn list_files(conn: &Connection, q: &FileQuery) -> CatalogResult<FilePage> {
    let cursor: Option<i64> = match &q.cursor {
        None => None,
        Some(c) => Some(c.parse().map_err(|_| CatalogError::InvalidCursor)?),
    };
    let limit = q.limit.clamp(1, 1000);
    let search = q.search.as_deref().map(name_key);
    let mut rows = all(
        conn,
        concat!(
            file_query!(),
            " WHERE f.owner = ? AND (? IS NULL OR f.seq < ?) \
             AND (? IS NULL OR instr(f.name_key, ?) > 0) \
             ORDER BY f.seq DESC LIMIT ?"
        ),
        params![
            q.owner.0,
            cursor,
            cursor,
            search.as_deref(),
            search.as_deref(),
            limit as i64 + 1
        ],
        |row| Ok((get::<i64>(row, "seq")?, file_from(row)?)),
    )?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = match rows.last() {
        Some((seq, _)) if more => Some(seq.to_string()),
        _ => None,
    };
    let files = rows.into_iter().map(|(_, file)| file).collect();
    Ok(FilePage { files, next_cursor })
}

pub(super) fn delete_file(
    conn: &Connection,
    owner: &Owner,
    id: &FileId,
) -> CatalogResult<Option<DeletedFile>> {
    let Some(blob) = one(
        conn,
        "SELECT blob_id FROM files WHERE id = ? AND owner = ?",
        params![id.as_str(), owner.0],
        |row| get::<String>(row, "blob_id"),
    )?
    else {
        return Ok(None);
    };
    exec(conn, "DELETE FROM files WHERE id = ?", [id.as_str()])?;
    let refs = one(
        conn,
        "UPDATE blobs SET refs = refs - 1 WHERE id = ? RETURNING refs",
        [&blob],
        |row| get::<i64>(row, "refs"),
    )?
    .ok_or_else(|| backend("no row returned"))?;
    let freed_blob = if refs <= 0 {
        exec(conn, "DELETE FROM blobs WHERE id = ?", [&blob])?;
        Some(parse_id(BlobId::parse, blob)?)
    } else {
        None
    };
    Ok(Some(DeletedFile { freed_blob }))
}

pub(super) fn find_owned_blob(
    conn: &Connection,
    owner: &Owner,
    hash: &ContentHash,
) -> CatalogResult<Option<Blob>> {
    one(
        conn,
        concat!(
            "SELECT ",
            blob_columns!(),
            " FROM blobs b WHERE b.hash = ? \
             AND EXISTS (SELECT 1 FROM files f WHERE f.blob_id = b.id AND f.owner = ?)"
        ),
        params![&hash.0[..], owner.0],
        blob_from,
    )
}

pub(super) fn set_public(
    conn: &Connection,
    owner: &Owner,
    id: &FileId,
    public: bool,
) -> CatalogResult<Option<FileRecord>> {
    let changed = exec(
        conn,
        "UPDATE files SET public = ? WHERE id = ? AND owner = ?",
        params![public, id.as_str(), owner.0],
    )?;
    if changed == 0 {
        return Ok(None);
    }
    file_in(conn, id)
}
