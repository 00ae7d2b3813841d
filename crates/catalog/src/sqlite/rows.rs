//! Rows ↔ records: column lists, decoding, and the statements shared by
//! several catalog operations.

use rusqlite::types::FromSql;
use rusqlite::{Connection, OptionalExtension, Row, params};
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

pub(super) fn get<T: FromSql>(row: &Row<'_>, col: &str) -> CatalogResult<T> {
    row.get(col).map_err(backend)
}

pub(super) fn parse_id<T>(parse: fn(&str) -> Option<T>, s: String) -> CatalogResult<T> {
    parse(&s).ok_or_else(|| backend(format!("malformed id {s:?} in the catalog")))
}

/// Runs a query expected to return at most one row, decoding it with
/// `from`.
pub(super) fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    from: impl FnOnce(&Row<'_>) -> CatalogResult<T>,
) -> CatalogResult<Option<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(params).map_err(backend)?;
    rows.next().map_err(backend)?.map(from).transpose()
}

/// Runs a query, decoding every row with `from`.
pub(super) fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    mut from: impl FnMut(&Row<'_>) -> CatalogResult<T>,
) -> CatalogResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(params).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(from(row)?);
    }
    Ok(out)
}

/// Runs a statement that returns no rows; the number of rows it changed.
pub(super) fn exec(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> CatalogResult<usize> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute(params))
        .map_err(backend)
}

/// Whether a query returns a row.
pub(super) fn exists(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> CatalogResult<bool> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.query_row(params, |_| Ok(())).optional())
        .map(|row| row.is_some())
        .map_err(backend)
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

pub(super) fn upload_from(row: &Row<'_>) -> CatalogResult<Upload> {
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

/// The blob columns of a `RETURNING` clause on `blobs`, named as
/// [`blob_from`] reads them.
macro_rules! returning_blob {
    () => {
        " RETURNING id AS blob_id, hash, size, md5, sha256"
    };
}

pub(super) fn blob_from(row: &Row<'_>) -> CatalogResult<Blob> {
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
        "SELECT f.seq, f.id, f.owner, f.name, f.mime, f.created_at, f.public, \
    f.md5 AS file_md5, f.sha256 AS file_sha256, \
    b.id AS blob_id, b.hash, b.size, b.md5, b.sha256 \
    FROM files f JOIN blobs b ON b.id = f.blob_id"
    };
}

pub(super) fn file_from(row: &Row<'_>) -> CatalogResult<FileRecord> {
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

/// The record of a file just inserted on `blob`: what the catalog now
/// holds, without reading it back.
pub(super) fn file_record(file: &NewFile, blob: Blob) -> FileRecord {
    FileRecord {
        id: file.id.clone(),
        owner: file.owner.clone(),
        name: file.name.clone(),
        mime: file.mime.clone(),
        blob,
        created_at: file.created_at,
        public: false,
        md5: file.md5,
        sha256: file.sha256,
    }
}

/// The form of a name that searches match against: Unicode lower case
/// (SQLite's own `lower()` folds ASCII only).
pub(super) fn name_key(name: &str) -> String {
    name.to_lowercase()
}

pub(super) fn digests_to_bytes(digests: &[Digest32]) -> Vec<u8> {
    digests.concat()
}

pub(super) fn chunk_from(row: &Row<'_>) -> CatalogResult<ChunkRecord> {
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

pub(super) fn insert_chunks(
    conn: &Connection,
    id: &UploadId,
    chunks: &[ChunkRecord],
) -> CatalogResult<()> {
    for c in chunks {
        exec(
            conn,
            "INSERT OR IGNORE INTO upload_chunks (upload_id, idx, digests, receipt) VALUES (?, ?, ?, ?)",
            params![
                id.as_str(),
                c.index as i64,
                digests_to_bytes(&c.digests),
                c.receipt
            ],
        )?;
    }
    Ok(())
}

pub(super) fn file_in(conn: &Connection, id: &FileId) -> CatalogResult<Option<FileRecord>> {
    one(
        conn,
        concat!(file_query!(), " WHERE f.id = ?"),
        [id.as_str()],
        file_from,
    )
}

pub(super) fn insert_file_row(
    conn: &Connection,
    file: &NewFile,
    blob: &BlobId,
) -> CatalogResult<()> {
    exec(
        conn,
        "INSERT INTO files (id, owner, name, name_key, mime, blob_id, created_at, md5, sha256) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            file.id.as_str(),
            file.owner.0,
            file.name,
            name_key(&file.name),
            file.mime,
            blob.as_str(),
            file.created_at.0,
            file.md5.map(|d| d.to_vec()),
            file.sha256.map(|d| d.to_vec()),
        ],
    )?;
    Ok(())
}
