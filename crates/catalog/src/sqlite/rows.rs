//! Rows ↔ records: column lists, decoding, and the statements shared by
//! several catalog operations.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use tusk_core::catalog::CatalogResult;
use tusk_core::hash::{ContentHash, Digest32};
use tusk_core::model::{
    Blob, BlobId, ChunkRecord, Claims, Concat, FileId, FileRecord, NewFile, Owner, Staging,
    Timestamp, Upload, UploadId, UploadMode,
};

use super::backend;

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn fixed<const N: usize>(v: Option<Vec<u8>>) -> CatalogResult<Option<[u8; N]>> {
    v.map(|b| {
        b.try_into()
            .map_err(|_| backend("stored digest has the wrong length"))
    })
    .transpose()
}

pub(super) fn get<'r, T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(
    row: &'r SqliteRow,
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
    (SELECT group_concat(idx) FROM upload_chunks c WHERE c.upload_id = uploads.id) AS received, \
    (SELECT group_concat(pos || ':' || part_id) FROM upload_parts p WHERE p.final_id = uploads.id) AS parts"
    };
}

pub(super) fn upload_from(row: &SqliteRow) -> CatalogResult<Upload> {
    let mut received: Vec<u32> = get::<Option<String>>(row, "received")?
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(backend))
        .collect::<CatalogResult<_>>()?;
    received.sort_unstable();
    let concat = match get::<String>(row, "concat")?.as_str() {
        "none" => Concat::None,
        "partial" => Concat::Partial,
        "final" => {
            let mut parts: Vec<(u32, UploadId)> = get::<Option<String>>(row, "parts")?
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let (pos, id) = s.split_once(':').ok_or_else(|| backend("malformed part"))?;
                    Ok((
                        pos.parse().map_err(backend)?,
                        parse_id(UploadId::parse, id.to_owned())?,
                    ))
                })
                .collect::<CatalogResult<_>>()?;
            parts.sort_unstable();
            Concat::Final(parts.into_iter().map(|(_, id)| id).collect())
        }
        other => return Err(backend(format!("unknown concat kind {other:?}"))),
    };
    Ok(Upload {
        id: parse_id(UploadId::parse, get(row, "id")?)?,
        owner: Owner(get(row, "owner")?),
        name: get(row, "name")?,
        mime: get(row, "mime")?,
        size: get::<Option<i64>>(row, "size")?.map(|s| s as u64),
        claims: Claims {
            hash: fixed::<32>(get(row, "hash")?)?.map(ContentHash),
            md5: fixed(get(row, "md5")?)?,
            sha256: fixed(get(row, "sha256")?)?,
        },
        chunk_size: get::<i64>(row, "chunk_size")? as u64,
        mode: UploadMode::parse(&get::<String>(row, "mode")?)
            .ok_or_else(|| backend("unknown upload mode"))?,
        staging: Staging {
            blob: parse_id(BlobId::parse, get(row, "blob_id")?)?,
            handle: get(row, "staging")?,
        },
        offset: get::<i64>(row, "offset")? as u64,
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

pub(super) fn blob_from(row: &SqliteRow) -> CatalogResult<Blob> {
    Ok(Blob {
        id: parse_id(BlobId::parse, get(row, "blob_id")?)?,
        hash: ContentHash(
            fixed::<32>(get(row, "hash")?)?.ok_or_else(|| backend("blob without hash"))?,
        ),
        size: get::<i64>(row, "size")? as u64,
        md5: fixed(get(row, "md5")?)?,
        sha256: fixed(get(row, "sha256")?)?,
    })
}

macro_rules! file_query {
    () => {
        "SELECT f.seq, f.id, f.owner, f.name, f.mime, f.created_at, \
    b.id AS blob_id, b.hash, b.size, b.md5, b.sha256 \
    FROM files f JOIN blobs b ON b.id = f.blob_id"
    };
}

pub(super) fn file_from(row: &SqliteRow) -> CatalogResult<FileRecord> {
    Ok(FileRecord {
        id: parse_id(FileId::parse, get(row, "id")?)?,
        owner: Owner(get(row, "owner")?),
        name: get(row, "name")?,
        mime: get(row, "mime")?,
        blob: blob_from(row)?,
        created_at: Timestamp(get(row, "created_at")?),
    })
}

/// The form of a name that searches match against: Unicode lower case
/// (SQLite's own `lower()` folds ASCII only).
pub(super) fn name_key(name: &str) -> String {
    name.to_lowercase()
}

pub(super) fn digests_to_bytes(digests: &[Digest32]) -> Vec<u8> {
    digests.concat()
}

pub(super) fn chunk_from(row: &SqliteRow) -> CatalogResult<ChunkRecord> {
    let raw: Vec<u8> = get(row, "digests")?;
    if !raw.len().is_multiple_of(32) {
        return Err(backend("stored chunk digests are truncated"));
    }
    Ok(ChunkRecord {
        index: get::<i64>(row, "idx")? as u32,
        digests: raw
            .chunks_exact(32)
            .map(|c| c.try_into().unwrap())
            .collect(),
        receipt: get(row, "receipt")?,
    })
}

pub(super) async fn insert_chunks(
    conn: &mut SqliteConnection,
    id: &UploadId,
    chunks: &[ChunkRecord],
) -> CatalogResult<()> {
    for c in chunks {
        sqlx::query("INSERT OR IGNORE INTO upload_chunks (upload_id, idx, digests, receipt) VALUES (?, ?, ?, ?)")
            .bind(id.as_str())
            .bind(c.index as i64)
            .bind(digests_to_bytes(&c.digests))
            .bind(&c.receipt)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

pub(super) async fn file_in(
    conn: &mut SqliteConnection,
    id: &FileId,
) -> CatalogResult<Option<FileRecord>> {
    sqlx::query(concat!(file_query!(), " WHERE f.id = ?"))
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .as_ref()
        .map(file_from)
        .transpose()
}

pub(super) async fn insert_file_row(
    conn: &mut SqliteConnection,
    file: &NewFile,
    blob: &BlobId,
) -> CatalogResult<()> {
    sqlx::query(
        "INSERT INTO files (id, owner, name, name_key, mime, blob_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(file.id.as_str())
    .bind(&file.owner.0)
    .bind(&file.name)
    .bind(name_key(&file.name))
    .bind(&file.mime)
    .bind(blob.as_str())
    .bind(file.created_at.0)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}
