//! Many small files in one request: a check, a chunk and a complete per
//! file would cost three round trips (and three durable commits) each, so
//! small files go up together as one `multipart/form-data` post. The bytes
//! sent are the bytes hashed (both come from one read into memory), and
//! each file the server recorded is checked against that hash.

use bytes::Bytes;
use std::time::Duration;
use tusk_core::ContentHash;

use crate::api::{Client, ClientError, FileInfo, FormFile};
use crate::retry::retrying;

/// Files at most this large go in batches.
pub const SMALL_FILE: u64 = 1024 * 1024;

/// Most files in one batch.
pub const BATCH_FILES: usize = 256;

/// Most bytes in one batch.
pub const BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// A small file read into memory, with its hash.
#[derive(Debug, Clone)]
pub struct SmallFile {
    pub name: String,
    pub mime: Option<String>,
    pub bytes: Bytes,
    pub hash: ContentHash,
}

impl SmallFile {
    pub fn new(name: String, mime: Option<String>, bytes: Bytes) -> Self {
        let hash = ContentHash::of_bytes(&bytes);
        SmallFile {
            name,
            mime,
            bytes,
            hash,
        }
    }
}

/// Posts `files` in one request, retried while failures are transient;
/// returns the recorded files in the same order. Every attempt carries the
/// same fresh idempotency key, so an attempt whose answer was lost after
/// the server recorded the files is not recorded twice by the next. A file
/// recorded with another hash than sent (bytes damaged on the way) is
/// deleted again and the whole batch fails.
pub async fn post_batch(
    client: &Client,
    files: &[SmallFile],
    on_retry: impl Fn(&ClientError, Duration),
) -> Result<Vec<FileInfo>, ClientError> {
    let form = || {
        files
            .iter()
            .map(|f| FormFile {
                name: f.name.clone(),
                mime: f.mime.clone(),
                bytes: f.bytes.clone(),
            })
            .collect::<Vec<_>>()
    };
    let key = hex::encode(rand::random::<[u8; 16]>());
    let stored = retrying(|| client.post_files(form(), Some(&key)), on_retry).await?;
    if stored.len() != files.len() {
        return Err(ClientError::Protocol(format!(
            "sent {} files, the server recorded {}",
            files.len(),
            stored.len()
        )));
    }
    let wrong: Vec<&FileInfo> = stored
        .iter()
        .zip(files)
        .filter(|(got, sent)| got.hash != sent.hash.to_string())
        .map(|(got, _)| got)
        .collect();
    if !wrong.is_empty() {
        for f in &stored {
            let _ = client.delete_file(&f.id).await;
        }
        return Err(ClientError::Protocol(format!(
            "{} of the files arrived damaged (hash differs); nothing was kept",
            wrong.len()
        )));
    }
    Ok(stored)
}
