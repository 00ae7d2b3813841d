-- Content: one row per stored, verified blob. `hash` is the sha256-4m hash.
CREATE TABLE blobs (
    id          TEXT PRIMARY KEY,
    hash        BLOB NOT NULL UNIQUE,
    size        INTEGER NOT NULL,
    md5         BLOB,
    sha256      BLOB,
    refs        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Named files pointing at blobs. `seq` orders listings (newest first).
CREATE TABLE files (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    owner       TEXT NOT NULL,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL,      -- the name in Unicode lower case, for search
    mime        TEXT NOT NULL,
    blob_id     TEXT NOT NULL REFERENCES blobs(id),
    created_at  INTEGER NOT NULL
);
CREATE INDEX files_by_owner ON files(owner, seq);
CREATE INDEX files_by_blob ON files(blob_id);

-- Uploads in progress, and completed ones (file_id set) until they expire.
CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    name        TEXT NOT NULL,
    mime        TEXT NOT NULL,
    size        INTEGER,            -- NULL while the length is deferred
    hash        BLOB,               -- claimed sha256-4m hash
    md5         BLOB,               -- claimed md5
    sha256      BLOB,               -- claimed sha256
    chunk_size  INTEGER NOT NULL,
    mode        TEXT NOT NULL,      -- 'chunks' or 'append'
    blob_id     TEXT NOT NULL,      -- the blob the staged bytes become
    staging     TEXT NOT NULL,      -- store state (S3 multipart id; '' for fs)
    "offset"    INTEGER NOT NULL,   -- append mode: bytes durably received
    tail        BLOB,               -- append mode: hasher state of the partial chunk
    file_id     TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX uploads_resumable ON uploads(owner, hash, size, name) WHERE file_id IS NULL;
CREATE INDEX uploads_by_expiry ON uploads(expires_at);

-- Chunks durably received: block digests (32 bytes each, concatenated) and
-- the store's receipt (an S3 ETag; '' for fs).
CREATE TABLE upload_chunks (
    upload_id   TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    digests     BLOB NOT NULL,
    receipt     TEXT NOT NULL,
    PRIMARY KEY (upload_id, idx)
) WITHOUT ROWID;
