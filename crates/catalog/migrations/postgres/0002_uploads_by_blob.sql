-- The sweeper asks whether any upload stages its bytes as a given blob.
CREATE INDEX uploads_by_blob ON uploads(blob_id);
