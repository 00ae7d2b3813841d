//! Accounts, tokens and server-wide settings, for SQLite.

use rusqlite::{Connection, Row, params};
use tusk_core::catalog::CatalogResult;
use tusk_core::hash::Digest32;
use tusk_core::model::{Account, NewToken, Owner, Revoke, Timestamp, TokenId, TokenRecord, Usage};

use super::backend;
use super::rows::{all, exec, exists, fixed, get, one, parse_id, to_i64};

macro_rules! token_query {
    () => {
        "SELECT t.id, t.created_at, t.revoked_at, a.owner, a.quota, a.admin \
         FROM tokens t JOIN accounts a ON a.owner = t.owner"
    };
}

fn token_from(row: &Row<'_>) -> CatalogResult<TokenRecord> {
    Ok(TokenRecord {
        id: parse_id(TokenId::parse, get(row, "id")?)?,
        account: account_from(row)?,
        created_at: Timestamp(get(row, "created_at")?),
        revoked_at: get::<Option<i64>>(row, "revoked_at")?.map(Timestamp),
    })
}

fn account_from(row: &Row<'_>) -> CatalogResult<Account> {
    Ok(Account {
        owner: Owner(get(row, "owner")?),
        quota: get::<Option<i64>>(row, "quota")?.map(|q| q as u64),
        admin: get(row, "admin")?,
    })
}

pub(super) fn insert_token(conn: &Connection, t: &NewToken) -> CatalogResult<()> {
    exec(
        conn,
        "INSERT INTO accounts (owner, quota, admin, created_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (owner) DO UPDATE SET quota = COALESCE(?2, quota), admin = admin OR ?3",
        params![t.owner.0, t.quota.map(to_i64), t.admin, t.created_at.0],
    )?;
    exec(
        conn,
        "INSERT INTO tokens (id, owner, secret_hash, created_at) VALUES (?, ?, ?, ?)",
        params![t.id.as_str(), t.owner.0, &t.secret_hash[..], t.created_at.0],
    )?;
    Ok(())
}

pub(super) fn find_token(conn: &Connection, hash: &Digest32) -> CatalogResult<Option<TokenRecord>> {
    one(
        conn,
        concat!(token_query!(), " WHERE t.secret_hash = ?"),
        [&hash[..]],
        token_from,
    )
}

pub(super) fn list_tokens(conn: &Connection) -> CatalogResult<Vec<TokenRecord>> {
    all(
        conn,
        concat!(token_query!(), " ORDER BY t.created_at, t.id"),
        [],
        token_from,
    )
}

pub(super) fn revoke(conn: &Connection, which: &Revoke, at: Timestamp) -> CatalogResult<u32> {
    let n = match which {
        Revoke::Token(id) => exec(
            conn,
            "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            params![at.0, id.as_str()],
        )?,
        Revoke::Owner(owner) => exec(
            conn,
            "UPDATE tokens SET revoked_at = ? WHERE owner = ? AND revoked_at IS NULL",
            params![at.0, owner.0],
        )?,
    };
    Ok(n as u32)
}

pub(super) fn has_tokens(conn: &Connection) -> CatalogResult<bool> {
    exists(conn, "SELECT 1 FROM tokens LIMIT 1", [])
}

pub(super) fn account(conn: &Connection, owner: &Owner) -> CatalogResult<Option<Account>> {
    one(
        conn,
        "SELECT owner, quota, admin FROM accounts WHERE owner = ?",
        [&owner.0],
        account_from,
    )
}

pub(super) fn usage(
    conn: &Connection,
    owner: &Owner,
    now: Timestamp,
    with_stored: bool,
) -> CatalogResult<Usage> {
    let (uploads, uploading) = one(
        conn,
        "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN u.concat = 'final' \
             THEN MAX(0, COALESCE(u.size, 0) - ( \
                 SELECT COALESCE(SUM(COALESCE(q.size, MAX(q.\"offset\", q.reserved))), 0) \
                 FROM uploads q WHERE q.expires_at > ? AND q.id IN \
                     (SELECT p.part_id FROM upload_parts p WHERE p.final_id = u.id))) \
             ELSE COALESCE(u.size, MAX(u.\"offset\", u.reserved)) END), 0) AS bytes \
         FROM uploads u WHERE u.owner = ? AND u.file_id IS NULL AND u.expires_at > ?",
        params![now.0, owner.0, now.0],
        |row| Ok((get::<i64>(row, "n")?, get::<i64>(row, "bytes")?)),
    )?
    .unwrap_or((0, 0));
    let stored = if with_stored {
        one(
            conn,
            "SELECT COALESCE(SUM(b.size), 0) AS bytes \
             FROM files f JOIN blobs b ON b.id = f.blob_id WHERE f.owner = ?",
            [&owner.0],
            |row| get::<i64>(row, "bytes"),
        )?
        .unwrap_or(0)
    } else {
        0
    };
    Ok(Usage {
        stored: stored as u64,
        uploading: uploading as u64,
        uploads: uploads as u32,
    })
}

pub(super) fn signing_key(conn: &Connection, fresh: &[u8; 32]) -> CatalogResult<[u8; 32]> {
    exec(
        conn,
        "INSERT INTO settings (name, value) VALUES ('signing_key', ?) \
         ON CONFLICT (name) DO NOTHING",
        [&fresh[..]],
    )?;
    let stored = one(
        conn,
        "SELECT value FROM settings WHERE name = 'signing_key'",
        [],
        |row| fixed::<32>(get(row, "value")?),
    )?
    .flatten();
    stored.ok_or_else(|| backend("the signing key is missing"))
}
