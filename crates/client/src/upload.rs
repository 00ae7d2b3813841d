//! The whole flow for one file: hash, check, send what is missing over
//! several streams, complete.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

use crate::api::{Checked, ChunkCheck, Client, ClientError, FileInfo, NewUpload};
use crate::hash::hash_file;

/// How to upload.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// The name to store the file under (default: the file name).
    pub name: Option<String>,
    /// Chunks in flight at once.
    pub parallel: usize,
    /// Chunk size to ask for (a multiple of 4 MiB); the server decides.
    pub chunk_size: Option<u64>,
    /// Hashing threads (0: one per core).
    pub hash_threads: usize,
    /// How each chunk is checked by the server before it is recorded.
    pub check: Check,
}

/// The per-chunk check an upload asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// None; the whole-file hash still guards completion.
    None,
    /// The chunk's `sha256-4m` hash (`Chunk-Hash`): free.
    ChunkHash,
    /// RFC 9530 `Content-Digest`: one more SHA-256 pass on each side.
    ContentDigest,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            name: None,
            parallel: 4,
            chunk_size: None,
            hash_threads: 0,
            check: Check::ChunkHash,
        }
    }
}

/// What an upload did.
#[derive(Debug, Clone)]
pub struct UploadReport {
    pub file: FileInfo,
    /// True when the server had the content already.
    pub instant: bool,
    /// Chunks sent by this call.
    pub chunks_sent: usize,
    pub hashing: Duration,
    /// From the check to the completed file.
    pub transfer: Duration,
}

/// Uploads one file.
pub async fn upload_file(
    client: &Client,
    path: &Path,
    opts: &UploadOptions,
) -> Result<UploadReport, ClientError> {
    let started = Instant::now();
    let owned = path.to_owned();
    let threads = opts.hash_threads;
    let hashed = tokio::task::spawn_blocking(move || hash_file(&owned, threads))
        .await
        .map_err(|e| ClientError::Protocol(format!("hashing failed: {e}")))??;
    let hashing = started.elapsed();
    let name = opts.name.clone().unwrap_or_else(|| {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_owned())
    });

    let started = Instant::now();
    let checked = client
        .check(&NewUpload {
            name,
            size: hashed.size,
            hash: hashed.hash.to_string(),
            chunk_size: opts.chunk_size,
            ..NewUpload::default()
        })
        .await?;
    let upload = match checked {
        Checked::Instant(file) => {
            return Ok(UploadReport {
                file,
                instant: true,
                chunks_sent: 0,
                hashing,
                transfer: started.elapsed(),
            });
        }
        Checked::Uploading { upload, .. } => upload,
    };
    let file = Arc::new(File::open(path)?);
    let missing = upload.missing();
    let chunks_sent = missing.len();
    let size = hashed.size;
    let results: Vec<Result<(), ClientError>> = futures::stream::iter(missing)
        .map(|index| {
            let (file, client, id, cs) = (
                file.clone(),
                client.clone(),
                upload.id.clone(),
                upload.chunk_size,
            );
            let check = match opts.check {
                Check::None => ChunkCheck::None,
                Check::ChunkHash => ChunkCheck::ChunkHash(hashed.chunk_hash(index, cs)),
                Check::ContentDigest => ChunkCheck::ContentDigest,
            };
            async move {
                let offset = index as u64 * cs;
                let len = cs.min(size - offset) as usize;
                let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Bytes> {
                    let mut buf = vec![0u8; len];
                    file.read_exact_at(&mut buf, offset)?;
                    Ok(buf.into())
                })
                .await
                .map_err(|e| ClientError::Protocol(format!("read failed: {e}")))??;
                client.put_chunk(&id, index, bytes, check).await.map(|_| ())
            }
        })
        .buffer_unordered(opts.parallel.max(1))
        .collect()
        .await;
    results.into_iter().collect::<Result<(), _>>()?;
    let file = client.complete(&upload.id).await?;
    Ok(UploadReport {
        file,
        instant: false,
        chunks_sent,
        hashing,
        transfer: started.elapsed(),
    })
}
