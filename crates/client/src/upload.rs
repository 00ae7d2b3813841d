//! The whole flow for one file: check by hash, send what the server is
//! missing over several streams, complete. Every request is retried while
//! its failure is transient ([`crate::retry`]); an upload the server ended
//! meanwhile (`410`) is started again once.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use reqwest::StatusCode;
use tokio::sync::Semaphore;

use sha2::{Digest, Sha256};

use crate::api::{
    Challenge, Checked, ChunkCheck, Client, ClientError, FileInfo, NewUpload, UploadInfo,
};
use crate::hash::{FileHash, hash_file};
use crate::retry::retrying;

/// How to upload.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// The name to store the file under (default: the file name).
    pub name: Option<String>,
    /// Chunk requests in flight at once.
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
    /// Bytes of those chunks.
    pub bytes_sent: u64,
    /// Bytes the server held already when this call began (a resume).
    pub resumed_bytes: u64,
    pub hashing: Duration,
    /// From the check to the completed file.
    pub transfer: Duration,
}

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The bytes read differ from the bytes hashed: the file was written to
    /// while it was being uploaded.
    #[error("the file changed while it was being uploaded")]
    Changed,
}

/// What an upload tells its watcher as it goes.
pub trait Progress: Send + Sync {
    /// The server holds `bytes` of the file already (a resume), or all of
    /// it (an instant upload).
    fn already(&self, _bytes: u64) {}
    /// The server acknowledged `bytes` more.
    fn acked(&self, _bytes: u64) {}
    /// A request failed but will be tried again after `wait`.
    fn retrying(&self, _error: &ClientError, _wait: Duration) {}
}

/// A watcher that ignores everything.
pub struct Quiet;
impl Progress for Quiet {}

/// Uploads files over one client, sharing a budget of chunk requests in
/// flight among all the files it is uploading at once.
#[derive(Clone)]
pub struct Uploader {
    client: Client,
    slots: Arc<Semaphore>,
    parallel: usize,
    chunk_size: Option<u64>,
    check: Check,
}

/// The content block size of the `sha256-4m` hash.
const BLOCK: u64 = 4 * 1024 * 1024;

/// Files up to this size are sent rather than proven: the server answers
/// a proof after a fixed delay, which sending so few bytes beats.
const PROVE_ABOVE: u64 = 16 * 1024 * 1024;

/// Reads of a chunk body, at a time.
const READ: usize = 1024 * 1024;

impl Uploader {
    pub fn new(client: Client, opts: &UploadOptions) -> Self {
        Uploader {
            client,
            slots: Arc::new(Semaphore::new(opts.parallel.max(1))),
            parallel: opts.parallel.max(1),
            chunk_size: opts.chunk_size,
            check: opts.check,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Uploads the file at `path`, whose hash is `hashed`, as `name`.
    pub async fn upload(
        &self,
        path: &Path,
        name: &str,
        hashed: &FileHash,
        mime: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<UploadReport, UploadError> {
        let started = Instant::now();
        let request = NewUpload {
            name: name.to_owned(),
            size: hashed.size,
            hash: hashed.hash.to_string(),
            mime: mime.map(str::to_owned),
            chunk_size: self.chunk_size,
            // Every check of this call carries it: one whose answer was
            // lost after an instant upload is not recorded twice.
            idempotency_key: Some(hex::encode(rand::random::<[u8; 16]>())),
            ..NewUpload::default()
        };
        let file = Arc::new(File::open(path).map_err(ClientError::Io)?);
        let mut restarted = false;
        loop {
            match self.attempt(&file, &request, hashed, progress).await {
                Err(UploadError::Client(e)) if is_gone(&e) && !restarted => {
                    // Expired or deleted under us: a fresh check starts over.
                    restarted = true;
                }
                Ok(mut report) => {
                    report.transfer = started.elapsed();
                    return Ok(report);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Answers a challenge from the file's bytes: the server may hold the
    /// content under another owner.
    async fn prove(
        &self,
        file: &Arc<File>,
        upload: &UploadInfo,
        request: &NewUpload,
        challenge: &Challenge,
        progress: &dyn Progress,
    ) -> Result<Checked, UploadError> {
        let size = request.size;
        let nonce = hex::decode(&challenge.nonce)
            .map_err(|_| ClientError::Protocol("the challenge's nonce is not hex".into()))?;
        let (file, blocks) = (file.clone(), challenge.blocks.clone());
        let digests = tokio::task::spawn_blocking(move || {
            blocks
                .iter()
                .map(|&i| {
                    let start = i * BLOCK;
                    let len = BLOCK.min(size.saturating_sub(start)) as usize;
                    let mut block = vec![0u8; len];
                    file.read_exact_at(&mut block, start)?;
                    let mut h = Sha256::new();
                    h.update(&nonce);
                    h.update(&block);
                    Ok(hex::encode(h.finalize()))
                })
                .collect::<std::io::Result<Vec<String>>>()
        })
        .await
        .map_err(|e| ClientError::Protocol(format!("hashing the proof failed: {e}")))?
        .map_err(ClientError::Io)?;
        let client = &self.client;
        Ok(retrying(
            || client.prove(&upload.id, &digests, request.idempotency_key.as_deref()),
            |e, w| progress.retrying(e, w),
        )
        .await?)
    }

    async fn attempt(
        &self,
        file: &Arc<File>,
        request: &NewUpload,
        hashed: &FileHash,
        progress: &dyn Progress,
    ) -> Result<UploadReport, UploadError> {
        let client = &self.client;
        let checked = retrying(|| client.check(request), |e, w| progress.retrying(e, w)).await;
        let upload = match checked {
            Ok(Checked::Instant(file)) => {
                progress.already(hashed.size);
                return Ok(report(file, true, 0, 0, hashed.size));
            }
            Ok(Checked::Uploading {
                upload, challenge, ..
            }) => match challenge {
                Some(c) if upload.received.is_empty() && hashed.size > PROVE_ABOVE => {
                    match self.prove(file, &upload, request, &c, progress).await? {
                        Checked::Instant(file) => {
                            progress.already(hashed.size);
                            return Ok(report(file, true, 0, 0, hashed.size));
                        }
                        Checked::Uploading { upload, .. } => upload,
                    }
                }
                _ => upload,
            },
            Err(e) if e.code() == Some("hash_mismatch") => return Err(UploadError::Changed),
            Err(e) => return Err(e.into()),
        };
        let mut missing = upload.missing();
        let resumed = hashed.size - chunks_len(&upload, &missing);
        progress.already(resumed);
        let (mut chunks_sent, mut bytes_sent) = (0, 0);
        // A complete that finds chunks missing (another client's upload of
        // the same file lost some?) names them: send those and try again.
        for _ in 0..3 {
            futures::stream::iter(missing.iter().copied())
                .map(|index| self.send_chunk(file, &upload, index, hashed, progress))
                .buffer_unordered(self.parallel * 2)
                .try_collect::<Vec<()>>()
                .await?;
            chunks_sent += missing.len();
            bytes_sent += chunks_len(&upload, &missing);
            let done = retrying(
                || client.complete(&upload.id),
                |e, w| progress.retrying(e, w),
            )
            .await;
            match done {
                Ok(file) => return Ok(report(file, false, chunks_sent, bytes_sent, resumed)),
                Err(ClientError::Refused {
                    code, missing: m, ..
                }) if code == "missing_chunks" => {
                    missing = m;
                }
                Err(e) if e.code() == Some("hash_mismatch") => return Err(UploadError::Changed),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ClientError::Protocol(format!(
            "upload {} still misses chunks {missing:?} after sending them",
            upload.id
        ))
        .into())
    }

    /// Sends chunk `index` once a slot is free, reading it from the file as
    /// it goes out, with retries.
    async fn send_chunk(
        &self,
        file: &Arc<File>,
        upload: &UploadInfo,
        index: u32,
        hashed: &FileHash,
        progress: &dyn Progress,
    ) -> Result<(), UploadError> {
        let _slot = self.slots.acquire().await.expect("slots never close");
        let offset = index as u64 * upload.chunk_size;
        let len = upload.chunk_size.min(hashed.size - offset);
        let check = match self.check {
            Check::None => ChunkCheck::None,
            Check::ChunkHash => ChunkCheck::ChunkHash(hashed.chunk_hash(index, upload.chunk_size)),
            Check::ContentDigest => {
                let file = file.clone();
                let digest = tokio::task::spawn_blocking(move || digest_range(&file, offset, len))
                    .await
                    .map_err(|e| ClientError::Protocol(format!("reading failed: {e}")))?
                    .map_err(ClientError::Io)?;
                ChunkCheck::ContentDigest(digest)
            }
        };
        let sent = retrying(
            || {
                let body = reqwest::Body::wrap_stream(read_range(file.clone(), offset, len));
                self.client
                    .put_chunk(&upload.id, index, body, len, check.clone())
            },
            |e, w| progress.retrying(e, w),
        )
        .await;
        match sent {
            Ok(_) => {
                progress.acked(len);
                Ok(())
            }
            Err(e) if e.code() == Some("digest_mismatch") => Err(UploadError::Changed),
            Err(e) => Err(e.into()),
        }
    }
}

fn report(file: FileInfo, instant: bool, chunks: usize, bytes: u64, resumed: u64) -> UploadReport {
    UploadReport {
        file,
        instant,
        chunks_sent: chunks,
        bytes_sent: bytes,
        resumed_bytes: resumed,
        hashing: Duration::ZERO,
        transfer: Duration::ZERO,
    }
}

/// The upload ended or vanished under us (`410`, or `404 upload_not_found`:
/// for instance a proof that recorded the file and ended the upload, whose
/// answer was lost). A fresh check with the same idempotency key finds
/// the file such a proof recorded.
fn is_gone(e: &ClientError) -> bool {
    e.status() == Some(StatusCode::GONE) || e.code() == Some("upload_not_found")
}

/// Bytes in the chunks `indexes` of `upload`.
fn chunks_len(upload: &UploadInfo, indexes: &[u32]) -> u64 {
    let size = upload.size.unwrap_or(0);
    indexes
        .iter()
        .map(|&i| {
            let start = i as u64 * upload.chunk_size;
            upload.chunk_size.min(size.saturating_sub(start))
        })
        .sum()
}

/// `len` bytes of `file` from `offset`, as a stream of 1 MiB reads.
fn read_range(
    file: Arc<File>,
    offset: u64,
    len: u64,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures::stream::try_unfold(offset, move |at| {
        let file = file.clone();
        async move {
            let end = offset + len;
            if at >= end {
                return Ok(None);
            }
            let n = (READ as u64).min(end - at) as usize;
            let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Bytes> {
                let mut buf = vec![0u8; n];
                file.read_exact_at(&mut buf, at)?;
                Ok(buf.into())
            })
            .await
            .map_err(std::io::Error::other)??;
            Ok(Some((bytes, at + n as u64)))
        }
    })
}

/// The RFC 9530 `Content-Digest` of `len` bytes of `file` from `offset`.
fn digest_range(file: &File, offset: u64, len: u64) -> std::io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; READ];
    let mut at = offset;
    while at < offset + len {
        let n = (READ as u64).min(offset + len - at) as usize;
        file.read_exact_at(&mut buf[..n], at)?;
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(crate::api::format_digest(&hasher.finalize()))
}

/// Hashes and uploads one file: the simplest use of [`Uploader`].
pub async fn upload_file(
    client: &Client,
    path: &Path,
    opts: &UploadOptions,
) -> Result<UploadReport, UploadError> {
    let started = Instant::now();
    let owned = path.to_owned();
    let threads = opts.hash_threads;
    let hashed = tokio::task::spawn_blocking(move || hash_file(&owned, threads))
        .await
        .map_err(|e| ClientError::Protocol(format!("hashing failed: {e}")))?
        .map_err(ClientError::Io)?;
    let hashing = started.elapsed();
    let name = opts.name.clone().unwrap_or_else(|| {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_owned())
    });
    let mut report = Uploader::new(client.clone(), opts)
        .upload(path, &name, &hashed, None, &Quiet)
        .await?;
    report.hashing = hashing;
    Ok(report)
}
