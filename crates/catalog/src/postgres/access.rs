//! Accounts, tokens and server-wide settings, for PostgreSQL.
//!
//! Creating a token upserts its account (`INSERT … ON CONFLICT`), so two
//! nodes creating tokens for the same new owner at once both succeed; the
//! signing key is inserted once (`ON CONFLICT DO NOTHING`) and every node
//! then reads the one that won.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool};
use tusk_core::hash::Digest32;
use tusk_core::model::{Account, NewToken, Owner, Revoke, Timestamp, TokenId, TokenRecord, Usage};

use super::rows::{fixed, get, parse_id, to_i64};
use super::{Attempt, backend};

macro_rules! token_query {
    () => {
        "SELECT t.id, t.created_at, t.revoked_at, a.owner, a.quota, a.admin \
         FROM tokens t JOIN accounts a ON a.owner = t.owner"
    };
}

fn token_from(row: &PgRow) -> Attempt<TokenRecord> {
    Ok(TokenRecord {
        id: parse_id(TokenId::parse, get(row, "id")?)?,
        account: account_from(row)?,
        created_at: Timestamp(get(row, "created_at")?),
        revoked_at: get::<Option<i64>>(row, "revoked_at")?.map(Timestamp),
    })
}

fn account_from(row: &PgRow) -> Attempt<Account> {
    Ok(Account {
        owner: Owner(get(row, "owner")?),
        quota: get::<Option<i64>>(row, "quota")?.map(|q| q.max(0) as u64),
        admin: get(row, "admin")?,
    })
}

pub(super) async fn insert_token(conn: &mut PgConnection, t: &NewToken) -> Attempt<()> {
    sqlx::query(
        "INSERT INTO accounts (owner, quota, admin, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (owner) DO UPDATE SET quota = COALESCE($2, accounts.quota), \
         admin = accounts.admin OR $3",
    )
    .bind(&t.owner.0)
    .bind(t.quota.map(to_i64))
    .bind(t.admin)
    .bind(t.created_at.0)
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO tokens (id, owner, secret_hash, created_at) VALUES ($1, $2, $3, $4)")
        .bind(t.id.as_str())
        .bind(&t.owner.0)
        .bind(t.secret_hash.to_vec())
        .bind(t.created_at.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn find_token(pool: &PgPool, hash: &Digest32) -> Attempt<Option<TokenRecord>> {
    let row = sqlx::query(concat!(token_query!(), " WHERE t.secret_hash = $1"))
        .bind(hash.to_vec())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(token_from).transpose()
}

pub(super) async fn list_tokens(pool: &PgPool) -> Attempt<Vec<TokenRecord>> {
    let rows = sqlx::query(concat!(token_query!(), " ORDER BY t.created_at, t.id"))
        .fetch_all(pool)
        .await?;
    rows.iter().map(token_from).collect()
}

pub(super) async fn revoke(conn: &mut PgConnection, which: &Revoke, at: Timestamp) -> Attempt<u32> {
    let query = match which {
        Revoke::Token(id) => {
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(at.0)
                .bind(id.as_str())
        }
        Revoke::Owner(owner) => {
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE owner = $2 AND revoked_at IS NULL")
                .bind(at.0)
                .bind(&owner.0)
        }
    };
    Ok(query.execute(&mut *conn).await?.rows_affected() as u32)
}

pub(super) async fn has_tokens(pool: &PgPool) -> Attempt<bool> {
    let row = sqlx::query("SELECT 1 FROM tokens LIMIT 1")
        .fetch_optional(pool)
        .await?;
    Ok(row.is_some())
}

pub(super) async fn account(pool: &PgPool, owner: &Owner) -> Attempt<Option<Account>> {
    let row = sqlx::query("SELECT owner, quota, admin FROM accounts WHERE owner = $1")
        .bind(&owner.0)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(account_from).transpose()
}

pub(super) async fn usage(
    pool: &PgPool,
    owner: &Owner,
    now: Timestamp,
    with_stored: bool,
) -> Attempt<Usage> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN u.concat = 'final' \
             THEN GREATEST(0, COALESCE(u.size, 0) - ( \
                 SELECT COALESCE(SUM(COALESCE(q.size, GREATEST(q.\"offset\", q.reserved))), 0) \
                 FROM uploads q WHERE q.expires_at > $2 AND q.id IN \
                     (SELECT p.part_id FROM upload_parts p WHERE p.final_id = u.id))) \
             ELSE COALESCE(u.size, GREATEST(u.\"offset\", u.reserved)) END), 0)::BIGINT AS bytes \
         FROM uploads u WHERE u.owner = $1 AND u.file_id IS NULL AND u.expires_at > $2",
    )
    .bind(&owner.0)
    .bind(now.0)
    .fetch_one(pool)
    .await?;
    let (uploads, uploading): (i64, i64) = (get(&row, "n")?, get(&row, "bytes")?);
    let stored: i64 = if with_stored {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(b.size), 0)::BIGINT AS bytes \
             FROM files f JOIN blobs b ON b.id = f.blob_id WHERE f.owner = $1",
        )
        .bind(&owner.0)
        .fetch_one(pool)
        .await?;
        get(&row, "bytes")?
    } else {
        0
    };
    Ok(Usage {
        stored: stored.max(0) as u64,
        uploading: uploading.max(0) as u64,
        uploads: uploads.max(0) as u32,
    })
}

pub(super) async fn signing_key(conn: &mut PgConnection, fresh: &[u8; 32]) -> Attempt<[u8; 32]> {
    sqlx::query(
        "INSERT INTO settings (name, value) VALUES ('signing_key', $1) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(fresh.to_vec())
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query("SELECT value FROM settings WHERE name = 'signing_key'")
        .fetch_one(&mut *conn)
        .await?;
    Ok(fixed::<32>(get(&row, "value")?)?.ok_or_else(|| backend("the signing key is missing"))?)
}
