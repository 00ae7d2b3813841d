//! Rows ↔ records: column lists, decoding, and the statements shared by
//! several catalog operations, for PostgreSQL.
//!
//! Decoding failures (a malformed id, a digest of the wrong length) are
//! `CatalogError::Backend`: the database holds something this catalog did
//! not write.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, Row};
use tusk_core::catalog::{CatalogError, CatalogResult};
use tusk_core::hash::{ContentHash, Digest32};
use tusk_core::model::{
    Blob, BlobId, ChunkRecord, Claims, Concat, FileId, FileRecord, NewFile, Owner, Staging,
    Timestamp, Upload, UploadId, UploadMode,
};

use super::{Attempt, backend};

/// A count or size as PostgreSQL's BIGINT (values past `i64::MAX` do not
/// occur: they would be 8 EiB).
pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored BIGINT that must be a non-negative count or size.
fn to_u64(v: i64) -> CatalogResult<u64> {
    u64::try_from(v).map_err(|_| backend(format!("negative value {v} in the catalog")))
}

pub(super) fn fixed<const N: usize>(v: Option<Vec<u8>>) -> CatalogResult<Option<[u8; N]>> {
    v.map(|b| {
        b.try_into()
            .map_err(|_| backend("stored digest has the wrong length"))
    })
    .transpose()
}

pub(super) fn get<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
    row: &'r PgRow,
    col: &str,
) -> CatalogResult<T> {
    row.try_get(col).map_err(backend)
}

pub(super) fn parse_id<T>(parse: fn(&str) -> Option<T>, s: String) -> CatalogResult<T> {
    parse(&s).ok_or_else(|| backend(format!("malformed id {s:?} in the catalog")))
}

// Column lists are macros so that queries stay `&'static str` literals.
macro_rules! upload_columns {
    () => {
        "id, owner, name, mime, size, hash, md5, sha256, chunk_size, mode, \
    blob_id, staging, \"offset\", tail, file_id, created_at, expires_at, meta, concat, \
    ARRAY(SELECT c.idx FROM upload_chunks c WHERE c.upload_id = uploads.id ORDER BY c.idx) \
    AS received, \
    ARRAY(SELECT p.part_id FROM upload_parts p WHERE p.final_id = uploads.id ORDER BY p.pos) \
    AS parts"
    };
}

pub(super) fn upload_from(row: &PgRow) -> CatalogResult<Upload> {
    let received = get::<Vec<i64>>(row, "received")?
        .into_iter()
        .map(|i| u32::try_from(i).map_err(|_| backend(format!("chunk index {i} out of range"))))
        .collect::<CatalogResult<_>>()?;
    let concat = match get::<String>(row, "concat")?.as_str() {
        "none" => Concat::None,
        "partial" => Concat::Partial,
        "final" => Concat::Final(
            get::<Vec<String>>(row, "parts")?
                .into_iter()
                .map(|id| parse_id(UploadId::parse, id))
                .collect::<CatalogResult<_>>()?,
        ),
        other => return Err(backend(format!("unknown concat kind {other:?}"))),
    };
    Ok(Upload {
        id: parse_id(UploadId::parse, get(row, "id")?)?,
        owner: Owner(get(row, "owner")?),
        name: get(row, "name")?,
        mime: get(row, "mime")?,
        size: get::<Option<i64>>(row, "size")?.map(to_u64).transpose()?,
        claims: Claims {
            hash: fixed::<32>(get(row, "hash")?)?.map(ContentHash),
            md5: fixed(get(row, "md5")?)?,
            sha256: fixed(get(row, "sha256")?)?,
        },
        chunk_size: to_u64(get(row, "chunk_size")?)?,
        mode: UploadMode::parse(&get::<String>(row, "mode")?)
            .ok_or_else(|| backend("unknown upload mode"))?,
        staging: Staging {
            blob: parse_id(BlobId::parse, get(row, "blob_id")?)?,
            handle: get(row, "staging")?,
        },
        offset: to_u64(get(row, "offset")?)?,
        tail: get(row, "tail")?,
        file: get::<Option<String>>(row, "file_id")?
            .map(|s| parse_id(FileId::parse, s))
            .transpose()?,
        concat,
        meta: get(row, "meta")?,
        created_at: Timestamp(get(row, "created_at")?),
        expires_at: Timestamp(get(row, "expires_at")?),
        received,
    })
}

macro_rules! blob_columns {
    () => {
        "b.id AS blob_id, b.hash, b.size, b.md5, b.sha256"
    };
}

pub(super) fn blob_from(row: &PgRow) -> CatalogResult<Blob> {
    Ok(Blob {
        id: parse_id(BlobId::parse, get(row, "blob_id")?)?,
        hash: ContentHash(
            fixed::<32>(get(row, "hash")?)?.ok_or_else(|| backend("blob without hash"))?,
        ),
        size: to_u64(get(row, "size")?)?,
        md5: fixed(get(row, "md5")?)?,
        sha256: fixed(get(row, "sha256")?)?,
    })
}

macro_rules! file_query {
    () => {
        "SELECT f.seq, f.id, f.owner, f.name, f.mime, f.created_at, f.public, \
    f.md5 AS file_md5, f.sha256 AS file_sha256, \
    b.id AS blob_id, b.hash, b.size, b.md5, b.sha256 \
    FROM files f JOIN blobs b ON b.id = f.blob_id"
    };
}

pub(super) fn file_from(row: &PgRow) -> CatalogResult<FileRecord> {
    Ok(FileRecord {
        id: parse_id(FileId::parse, get(row, "id")?)?,
        owner: Owner(get(row, "owner")?),
        name: get(row, "name")?,
        mime: get(row, "mime")?,
        blob: blob_from(row)?,
        created_at: Timestamp(get(row, "created_at")?),
        public: get(row, "public")?,
        md5: fixed(get(row, "file_md5")?)?,
        sha256: fixed(get(row, "file_sha256")?)?,
    })
}

/// The form of a name that searches match against: Unicode lower case,
/// computed here as for SQLite, so both backends fold names alike.
pub(super) fn name_key(name: &str) -> String {
    name.to_lowercase()
}

pub(super) fn chunk_from(row: &PgRow) -> CatalogResult<ChunkRecord> {
    let raw: Vec<u8> = get(row, "digests")?;
    if !raw.len().is_multiple_of(32) {
        return Err(backend("stored chunk digests are truncated"));
    }
    let index = get::<i64>(row, "idx")?;
    Ok(ChunkRecord {
        index: u32::try_from(index)
            .map_err(|_| backend(format!("chunk index {index} out of range")))?,
        digests: raw
            .chunks_exact(32)
            .map(|c| Digest32::try_from(c).map_err(|_| backend("stored digest is truncated")))
            .collect::<CatalogResult<_>>()?,
        receipt: get(row, "receipt")?,
    })
}

/// Records chunks of an upload; a chunk already recorded stays as it was.
pub(super) async fn insert_chunks(
    conn: &mut PgConnection,
    id: &UploadId,
    chunks: &[ChunkRecord],
) -> Attempt<()> {
    for c in chunks {
        sqlx::query(
            "INSERT INTO upload_chunks (upload_id, idx, digests, receipt) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (upload_id, idx) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(i64::from(c.index))
        .bind(c.digests.concat())
        .bind(&c.receipt)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The file record `id` as `conn` sees it (inside its transaction, if any).
pub(super) async fn file_in(conn: &mut PgConnection, id: &FileId) -> Attempt<Option<FileRecord>> {
    let row = sqlx::query(concat!(file_query!(), " WHERE f.id = $1"))
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(file_from).transpose()?)
}

/// The file record `id`, which the caller's transaction has just written.
pub(super) async fn written_file(conn: &mut PgConnection, id: &FileId) -> Attempt<FileRecord> {
    Ok(file_in(conn, id).await?.ok_or(CatalogError::NotFound)?)
}

/// Inserts the row of a file on `blob`; the caller counts the reference.
pub(super) async fn insert_file_row(
    conn: &mut PgConnection,
    file: &NewFile,
    blob: &BlobId,
) -> Attempt<()> {
    sqlx::query(
        "INSERT INTO files (id, owner, name, name_key, mime, blob_id, created_at, md5, sha256) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(file.id.as_str())
    .bind(&file.owner.0)
    .bind(&file.name)
    .bind(name_key(&file.name))
    .bind(&file.mime)
    .bind(blob.as_str())
    .bind(file.created_at.0)
    .bind(file.md5.map(|d| d.to_vec()))
    .bind(file.sha256.map(|d| d.to_vec()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
