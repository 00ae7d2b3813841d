-- Bytes counted against the quota for an upload whose length is deferred,
-- ahead of what it holds: appended bytes are reserved before they are
-- written, so that no path stores past a quota.
ALTER TABLE uploads ADD COLUMN reserved BIGINT NOT NULL DEFAULT 0;

-- The md5/sha256 this file's owner claimed and the server verified: a file
-- shows these, never what another owner's upload verified on shared content.
ALTER TABLE files ADD COLUMN md5 BYTEA;
ALTER TABLE files ADD COLUMN sha256 BYTEA;
