//! Many files recorded in one transaction ([`Catalog::insert_files`]):
//! small files posted together.
//!
//! [`Catalog::insert_files`]: tusk_core::Catalog::insert_files

use sqlx::SqliteConnection;
use tusk_core::catalog::{CatalogError, CatalogResult, InsertedFiles, NewBlob, NewFiles};
use tusk_core::model::{BlobId, FileRecord};

use super::backend;
use super::rows::{blob_from, get, insert_file_row, parse_id, to_i64};

/// Records `batch` inside the caller's transaction; the caller commits.
pub(super) async fn insert_files(
    conn: &mut SqliteConnection,
    batch: &NewFiles,
) -> CatalogResult<InsertedFiles> {
    let mut fresh = Vec::new();
    let mut redundant = Vec::new();
    for new in &batch.blobs {
        match stored_twin(conn, new).await? {
            Some(twin) if twin != new.blob.id => redundant.push(new.blob.id.clone()),
            // The same blob given twice: stored by its first mention.
            Some(_) => {}
            None => {
                insert_blob(conn, new).await?;
                fresh.push(&new.blob.id);
            }
        }
    }
    let mut files = Vec::with_capacity(batch.files.len());
    for (file, hash) in &batch.files {
        let row = sqlx::query(
            "UPDATE blobs SET refs = refs + 1 WHERE hash = ? \
             RETURNING id AS blob_id, hash, size, md5, sha256",
        )
        .bind(hash.0.to_vec())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .ok_or(CatalogError::NotFound)?;
        let blob = blob_from(&row)?;
        insert_file_row(conn, file, &blob.id).await?;
        files.push(FileRecord {
            id: file.id.clone(),
            owner: file.owner.clone(),
            name: file.name.clone(),
            mime: file.mime.clone(),
            blob,
            created_at: file.created_at,
        });
    }
    // A new blob no file uses is not kept.
    for id in fresh {
        let unused = sqlx::query("DELETE FROM blobs WHERE id = ? AND refs = 0")
            .bind(id.as_str())
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        if unused.rows_affected() > 0 {
            redundant.push(id.clone());
        }
    }
    Ok(InsertedFiles { files, redundant })
}

/// The stored blob with the same hash as `new`, if any, after giving it
/// the verified checksums of `new` it lacks.
async fn stored_twin(conn: &mut SqliteConnection, new: &NewBlob) -> CatalogResult<Option<BlobId>> {
    let b = &new.blob;
    let Some(row) = sqlx::query(
        "UPDATE blobs SET md5 = COALESCE(md5, ?), sha256 = COALESCE(sha256, ?) \
         WHERE hash = ? RETURNING id",
    )
    .bind(b.md5.map(|d| d.to_vec()))
    .bind(b.sha256.map(|d| d.to_vec()))
    .bind(b.hash.0.to_vec())
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?
    else {
        return Ok(None);
    };
    parse_id(BlobId::parse, get(&row, "id")?).map(Some)
}

/// Stores a new blob that no file references yet.
async fn insert_blob(conn: &mut SqliteConnection, new: &NewBlob) -> CatalogResult<()> {
    let b = &new.blob;
    sqlx::query(
        "INSERT INTO blobs (id, hash, size, md5, sha256, refs, created_at) \
         VALUES (?, ?, ?, ?, ?, 0, ?)",
    )
    .bind(b.id.as_str())
    .bind(b.hash.0.to_vec())
    .bind(to_i64(b.size))
    .bind(b.md5.map(|d| d.to_vec()))
    .bind(b.sha256.map(|d| d.to_vec()))
    .bind(new.created_at.0)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}
