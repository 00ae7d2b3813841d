-- Accounts: the owners bearer tokens act for, with their limits.
CREATE TABLE accounts (
    owner       TEXT PRIMARY KEY,
    quota       INTEGER,            -- bytes; NULL: none
    admin       INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Bearer tokens, by the SHA-256 of the token (never the token itself).
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL REFERENCES accounts(owner),
    secret_hash BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX tokens_by_owner ON tokens(owner);

-- Server-wide secrets shared by every node (the key of signed links).
CREATE TABLE settings (
    name        TEXT PRIMARY KEY,
    value       BLOB NOT NULL
) WITHOUT ROWID;

-- Files anyone may download.
ALTER TABLE files ADD COLUMN public INTEGER NOT NULL DEFAULT 0;

-- Unfinished uploads of an owner, counted against its limits.
CREATE INDEX uploads_unfinished_by_owner ON uploads(owner) WHERE file_id IS NULL;
