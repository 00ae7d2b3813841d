//! Many files recorded in one transaction ([`Catalog::insert_files`]) on
//! PostgreSQL: small files posted together.
//!
//! A batch locks several blob rows. Two batches from two nodes that lock
//! the same rows in different orders could deadlock, so every blob row a
//! batch touches is locked in ascending order of content hash: first the
//! batch's new blobs of that hash are stored (or found stored), then its
//! files' references to that hash are counted, all at once. The file rows
//! are written afterwards, in the order given.
//!
//! [`Catalog::insert_files`]: tusk_core::Catalog::insert_files

use std::collections::{BTreeMap, HashMap};

use sqlx::PgConnection;
use tusk_core::catalog::{CatalogError, InsertedFiles, NewBlob, NewFiles};
use tusk_core::hash::Digest32;
use tusk_core::model::{Blob, BlobId, FileRecord};

use super::Attempt;
use super::content::store_blob;
use super::rows::{blob_from, insert_file_row};

/// What a batch does with one content hash.
#[derive(Default)]
struct Touch<'b> {
    /// The batch's new blobs with this hash, in the order given.
    blobs: Vec<&'b NewBlob>,
    /// How many of the batch's files are on this hash.
    files: i64,
}

/// Records `batch` inside the caller's transaction; the caller commits.
pub(super) async fn insert_files(
    conn: &mut PgConnection,
    batch: &NewFiles,
) -> Attempt<InsertedFiles> {
    let mut touched: BTreeMap<Digest32, Touch> = BTreeMap::new();
    for new in &batch.blobs {
        touched.entry(new.blob.hash.0).or_default().blobs.push(new);
    }
    for (_, hash) in &batch.files {
        touched.entry(hash.0).or_default().files += 1;
    }
    let mut fresh = Vec::new();
    let mut redundant = Vec::new();
    let mut stored: HashMap<Digest32, Blob> = HashMap::new();
    for (hash, touch) in &touched {
        for new in &touch.blobs {
            match store_blob(conn, new, 0).await? {
                (id, true) => fresh.push(id),
                // Stored already, or earlier in the batch.
                (id, false) if id != new.blob.id => redundant.push(new.blob.id.clone()),
                // The same blob given twice: stored by its first mention.
                (_, false) => {}
            }
        }
        if touch.files > 0 {
            let row = sqlx::query(
                "UPDATE blobs SET refs = refs + $1 WHERE hash = $2 \
                 RETURNING id AS blob_id, hash, size, md5, sha256",
            )
            .bind(touch.files)
            .bind(hash.to_vec())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(CatalogError::NotFound)?;
            stored.insert(*hash, blob_from(&row)?);
        }
    }
    let mut files = Vec::with_capacity(batch.files.len());
    for (file, hash) in &batch.files {
        let blob = stored.get(&hash.0).ok_or(CatalogError::NotFound)?.clone();
        insert_file_row(conn, file, &blob.id).await?;
        files.push(FileRecord {
            id: file.id.clone(),
            owner: file.owner.clone(),
            name: file.name.clone(),
            mime: file.mime.clone(),
            blob,
            created_at: file.created_at,
            public: false,
            md5: file.md5,
            sha256: file.sha256,
        });
    }
    // A new blob no file uses is not kept.
    for id in fresh {
        if forget_unused(conn, &id).await? {
            redundant.push(id);
        }
    }
    Ok(InsertedFiles { files, redundant })
}

/// Deletes a blob this batch stored if no file references it.
async fn forget_unused(conn: &mut PgConnection, id: &BlobId) -> Attempt<bool> {
    let unused = sqlx::query("DELETE FROM blobs WHERE id = $1 AND refs = 0")
        .bind(id.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(unused.rows_affected() > 0)
}
