-- What the tus door keeps with an upload: its metadata, verbatim, and its
-- part in a concatenation ('none', 'partial' or 'final').
ALTER TABLE uploads ADD COLUMN meta TEXT;
ALTER TABLE uploads ADD COLUMN concat TEXT NOT NULL DEFAULT 'none';

-- The parts of each final upload, in order.
CREATE TABLE upload_parts (
    final_id    TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    pos         INTEGER NOT NULL,
    part_id     TEXT NOT NULL,
    PRIMARY KEY (final_id, pos)
) WITHOUT ROWID;
CREATE INDEX upload_parts_by_part ON upload_parts(part_id);

-- Uploads that ended (terminated, expired, concatenated, rejected), so that
-- asking for one answers "gone" rather than "never existed".
CREATE TABLE ended_uploads (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    ended_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX ended_uploads_by_time ON ended_uploads(ended_at);
