-- Accounts: the owners bearer tokens act for, with their limits.
CREATE TABLE accounts (
    owner       TEXT PRIMARY KEY,
    quota       BIGINT,             -- bytes; NULL: none
    admin       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL
);

-- Bearer tokens, by the SHA-256 of the token (never the token itself).
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL REFERENCES accounts(owner),
    secret_hash BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX tokens_by_owner ON tokens(owner);

-- Server-wide secrets shared by every node (the key of signed links).
CREATE TABLE settings (
    name        TEXT PRIMARY KEY,
    value       BYTEA NOT NULL
);

-- Files anyone may download.
ALTER TABLE files ADD COLUMN public BOOLEAN NOT NULL DEFAULT FALSE;

-- Unfinished uploads of an owner, counted against its limits.
CREATE INDEX uploads_unfinished_by_owner ON uploads(owner) WHERE file_id IS NULL;
