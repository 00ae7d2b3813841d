//! Many files recorded in one transaction ([`Catalog::insert_files`]):
//! small files posted together.
//!
//! [`Catalog::insert_files`]: tusk_core::Catalog::insert_files

use rusqlite::{Connection, params};
use tusk_core::catalog::{CatalogError, CatalogResult, InsertedFiles, NewBlob, NewFiles};
use tusk_core::model::BlobId;

use super::rows::{blob_from, exec, file_record, get, insert_file_row, one, parse_id, to_i64};

/// Records `batch` inside the caller's transaction; the caller commits.
pub(super) fn insert_files(conn: &Connection, batch: &NewFiles) -> CatalogResult<InsertedFiles> {
    let mut fresh = Vec::new();
    let mut redundant = Vec::new();
    for new in &batch.blobs {
        match stored_twin(conn, new)? {
            Some(twin) if twin != new.blob.id => redundant.push(new.blob.id.clone()),
            // The same blob given twice: stored by its first mention.
            Some(_) => {}
            None => {
                insert_blob(conn, new)?;
                fresh.push(&new.blob.id);
            }
        }
    }
    let mut files = Vec::with_capacity(batch.files.len());
    for (file, hash) in &batch.files {
        let blob = one(
            conn,
            concat!(
                "UPDATE blobs SET refs = refs + 1 WHERE hash = ?",
                returning_blob!()
            ),
            [&hash.0[..]],
            blob_from,
        )?
        .ok_or(CatalogError::NotFound)?;
        insert_file_row(conn, file, &blob.id)?;
        files.push(file_record(file, blob));
    }
    // A new blob no file uses is not kept.
    for id in fresh {
        let unused = exec(
            conn,
            "DELETE FROM blobs WHERE id = ? AND refs = 0",
            [id.as_str()],
        )?;
        if unused > 0 {
            redundant.push(id.clone());
        }
    }
    Ok(InsertedFiles { files, redundant })
}

/// The stored blob with the same hash as `new`, if any, after giving it
/// the verified checksums of `new` it lacks.
fn stored_twin(conn: &Connection, new: &NewBlob) -> CatalogResult<Option<BlobId>> {
    let b = &new.blob;
    one(
        conn,
        "UPDATE blobs SET md5 = COALESCE(md5, ?), sha256 = COALESCE(sha256, ?) \
         WHERE hash = ? RETURNING id",
        params![b.md5, b.sha256, &b.hash.0[..]],
        |row| parse_id(BlobId::parse, get(row, "id")?),
    )
}

/// Stores a new blob that no file references yet.
fn insert_blob(conn: &Connection, new: &NewBlob) -> CatalogResult<()> {
    let b = &new.blob;
    exec(
        conn,
        "INSERT INTO blobs (id, hash, size, md5, sha256, refs, created_at) \
         VALUES (?, ?, ?, ?, ?, 0, ?)",
        params![
            b.id.as_str(),
            &b.hash.0[..],
            to_i64(b.size),
            b.md5,
            b.sha256,
            new.created_at.0,
        ],
    )?;
    Ok(())
}
