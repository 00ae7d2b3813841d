-- The PostgreSQL catalog: the same tables as SQLite's migrations 0001 and
-- 0002 together. Times are milliseconds since the Unix epoch (UTC); digests
-- are raw bytes.

-- Content: one row per stored, verified blob. `hash` is the sha256-4m hash;
-- one blob per content hash.
CREATE TABLE blobs (
    id          TEXT PRIMARY KEY,
    hash        BYTEA NOT NULL UNIQUE,
    size        BIGINT NOT NULL,
    md5         BYTEA,
    sha256      BYTEA,
    refs        BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Named files pointing at blobs. `seq` orders listings (newest first).
CREATE TABLE files (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    owner       TEXT NOT NULL,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL,      -- the name in Unicode lower case, for search
    mime        TEXT NOT NULL,
    blob_id     TEXT NOT NULL REFERENCES blobs(id),
    created_at  BIGINT NOT NULL
);
CREATE INDEX files_by_owner ON files(owner, seq);
CREATE INDEX files_by_blob ON files(blob_id);

-- Uploads in progress, and completed ones (file_id set) until they expire.
CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    name        TEXT NOT NULL,
    mime        TEXT NOT NULL,
    size        BIGINT,             -- NULL while the length is deferred
    hash        BYTEA,              -- claimed sha256-4m hash
    md5         BYTEA,              -- claimed md5
    sha256      BYTEA,              -- claimed sha256
    chunk_size  BIGINT NOT NULL,
    mode        TEXT NOT NULL,      -- 'chunks' or 'append'
    blob_id     TEXT NOT NULL,      -- the blob the staged bytes become
    staging     TEXT NOT NULL,      -- store state (S3 multipart id; '' for fs)
    "offset"    BIGINT NOT NULL,    -- append mode: bytes durably received
    tail        BYTEA,              -- append mode: hasher state of the partial chunk
    file_id     TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    meta        TEXT,               -- tus metadata, verbatim
    concat      TEXT NOT NULL DEFAULT 'none'  -- 'none', 'partial' or 'final'
);
CREATE INDEX uploads_resumable ON uploads(owner, hash, size, name) WHERE file_id IS NULL;
CREATE INDEX uploads_by_expiry ON uploads(expires_at);

-- Chunks durably received: block digests (32 bytes each, concatenated) and
-- the store's receipt (an S3 ETag; '' for fs).
CREATE TABLE upload_chunks (
    upload_id   TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    idx         BIGINT NOT NULL,
    digests     BYTEA NOT NULL,
    receipt     TEXT NOT NULL,
    PRIMARY KEY (upload_id, idx)
);

-- The parts of each final upload, in order.
CREATE TABLE upload_parts (
    final_id    TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    pos         BIGINT NOT NULL,
    part_id     TEXT NOT NULL,
    PRIMARY KEY (final_id, pos)
);
CREATE INDEX upload_parts_by_part ON upload_parts(part_id);

-- Uploads that ended (terminated, expired, concatenated, rejected), so that
-- asking for one answers "gone" rather than "never existed".
CREATE TABLE ended_uploads (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    ended_at    BIGINT NOT NULL
);
CREATE INDEX ended_uploads_by_time ON ended_uploads(ended_at);
