//! A file's content into a local file: streamed into `<dest>.part`, which
//! survives an interruption and is continued with `Range` next time, then
//! checked against the file's `sha256-4m` hash and renamed into place.
//!
//! Blocks are written in order, one write at a time, so after a crash the
//! `.part` file holds the file's first bytes and nothing else; it is cut
//! back to a whole number of 4 MiB blocks, whose digests are computed from
//! disk (on every core) while the rest arrives. New blocks are hashed on
//! the blocking pool as they complete, beside the writes.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tusk_core::hash::{BLOCK_SIZE, ContentHash, Digest32};

use crate::api::{Client, ClientError, FileInfo};
use crate::hash::hash_blocks;

/// Blocks being hashed at once (memory: this many 4 MiB buffers).
const HASHING: usize = 4;

/// What a download did.
#[derive(Debug, Clone)]
pub struct DownloadReport {
    pub path: PathBuf,
    pub size: u64,
    /// Bytes kept from an earlier, interrupted download.
    pub resumed_from: u64,
    /// Bytes received from the server by this call.
    pub fetched: u64,
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The bytes received do not have the file's hash.
    #[error("the downloaded bytes do not match the file's hash {0}")]
    Mismatch(String),
}

/// What a download tells its watcher as it goes.
pub trait DownloadProgress: Send + Sync {
    /// `bytes` are kept from an earlier attempt.
    fn already(&self, _bytes: u64) {}
    /// `bytes` more were written.
    fn received(&self, _bytes: u64) {}
    fn retrying(&self, _error: &ClientError, _wait: std::time::Duration) {}
}

/// The `.part` file a download into `dest` goes through.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// Downloads `file` into `dest`, continuing `<dest>.part` if there is one.
pub async fn download_to(
    client: &Client,
    file: &FileInfo,
    dest: &Path,
    progress: &dyn DownloadProgress,
) -> Result<DownloadReport, DownloadError> {
    let part = part_path(dest);
    let expected: ContentHash = file
        .hash
        .parse()
        .map_err(|_| ClientError::Protocol(format!("bad hash {:?} from the server", file.hash)))?;
    let mut report = fetch(client, file, &part, progress).await?;
    let mut digests = report.1;
    if ContentHash::from_block_digests(&digests) != expected && report.0.resumed_from > 0 {
        // The kept bytes were not this file's (a `.part` left by another
        // download to the same place): start from nothing, once.
        File::create(&part)?;
        report = fetch(client, file, &part, progress).await?;
        digests = report.1;
    }
    if ContentHash::from_block_digests(&digests) != expected {
        std::fs::remove_file(&part)?;
        return Err(DownloadError::Mismatch(file.hash.clone()));
    }
    let done = part.clone();
    let target = dest.to_owned();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        File::open(&done)?.sync_all()?;
        std::fs::rename(&done, &target)?;
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        File::open(dir)?.sync_all()
    })
    .await
    .map_err(std::io::Error::other)??;
    let mut out = report.0;
    out.path = dest.to_owned();
    Ok(out)
}

/// Fills `part` with the file's bytes; returns the report and the digests
/// of every block.
async fn fetch(
    client: &Client,
    file: &FileInfo,
    part: &Path,
    progress: &dyn DownloadProgress,
) -> Result<(DownloadReport, Vec<Digest32>), DownloadError> {
    let size = file.size;
    let out = Arc::new(
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(part)?,
    );
    let kept = out.metadata()?.len().min(size);
    let kept_blocks = (kept / BLOCK_SIZE) as usize;
    let from = kept_blocks as u64 * BLOCK_SIZE;
    out.set_len(from)?;
    progress.already(from);
    let prefix = {
        let out = out.clone();
        tokio::task::spawn_blocking(move || {
            hash_blocks(&out, from, 0..kept_blocks, 0, &AtomicU64::new(0))
        })
    };
    let mut sink = Sink::new(out.clone(), from);
    let mut pos = from;
    let mut delays = crate::retry::delays();
    while pos < size {
        let failure = match client.get_content(file, pos).await {
            Ok(response) => {
                if pos > 0 && response.status() != StatusCode::PARTIAL_CONTENT {
                    return Err(ClientError::Protocol(format!(
                        "the server did not continue at byte {pos} (answered {})",
                        response.status()
                    ))
                    .into());
                }
                let before = pos;
                let mut body = response.bytes_stream();
                let mut failure = None;
                while let Some(frame) = body.next().await {
                    match frame {
                        Ok(frame) => {
                            let take = frame.len().min((size - pos) as usize);
                            sink.push(frame.slice(..take)).await?;
                            pos += take as u64;
                            progress.received(take as u64);
                        }
                        Err(e) => {
                            failure = Some(ClientError::Transport(e));
                            break;
                        }
                    }
                }
                if pos > before {
                    delays = crate::retry::delays();
                }
                match failure {
                    Some(e) => e,
                    None if pos < size => ClientError::Protocol(format!(
                        "the server ended the download at byte {pos} of {size}"
                    )),
                    None => break,
                }
            }
            Err(e) => e,
        };
        if !failure.is_transient() {
            return Err(failure.into());
        }
        let Some(wait) = delays.next() else {
            return Err(failure.into());
        };
        progress.retrying(&failure, wait);
        tokio::time::sleep(wait).await;
        // Bytes that arrived but did not fill a block yet are kept in
        // memory; the next request continues after them.
    }
    let mut digests = prefix.await.map_err(std::io::Error::other)??;
    digests.extend(sink.finish().await?);
    Ok((
        DownloadReport {
            path: part.to_owned(),
            size,
            resumed_from: from,
            fetched: size - from,
        },
        digests,
    ))
}

/// Cuts arriving bytes into 4 MiB blocks; writes them in order, one write
/// at a time, and hashes them on the blocking pool.
struct Sink {
    out: Arc<File>,
    /// Where the next block goes in the file.
    offset: u64,
    block: BytesMut,
    writing: Option<JoinHandle<std::io::Result<()>>>,
    hashing: VecDeque<JoinHandle<Digest32>>,
    digests: Vec<Digest32>,
}

impl Sink {
    fn new(out: Arc<File>, offset: u64) -> Self {
        Sink {
            out,
            offset,
            block: BytesMut::with_capacity(BLOCK_SIZE as usize),
            writing: None,
            hashing: VecDeque::new(),
            digests: Vec::new(),
        }
    }

    async fn push(&mut self, mut bytes: Bytes) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let room = BLOCK_SIZE as usize - self.block.len();
            let take = room.min(bytes.len());
            self.block.extend_from_slice(&bytes.split_to(take));
            if self.block.len() == BLOCK_SIZE as usize {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Hands the current block to a write (after the previous one ended)
    /// and to a hashing task.
    async fn flush(&mut self) -> std::io::Result<()> {
        let block = std::mem::replace(
            &mut self.block,
            BytesMut::with_capacity(BLOCK_SIZE as usize),
        )
        .freeze();
        if let Some(previous) = self.writing.take() {
            previous.await.map_err(std::io::Error::other)??;
        }
        while self.hashing.len() >= HASHING {
            let digest = self.hashing.pop_front().expect("non-empty");
            self.digests
                .push(digest.await.map_err(std::io::Error::other)?);
        }
        let (out, at, bytes) = (self.out.clone(), self.offset, block.clone());
        self.writing = Some(tokio::task::spawn_blocking(move || {
            out.write_all_at(&bytes, at)
        }));
        self.hashing.push_back(tokio::task::spawn_blocking(move || {
            Sha256::digest(&block).into()
        }));
        self.offset += BLOCK_SIZE;
        Ok(())
    }

    /// Writes the last, shorter block; returns the digests of all blocks.
    async fn finish(mut self) -> std::io::Result<Vec<Digest32>> {
        if !self.block.is_empty() {
            self.flush().await?;
        }
        if let Some(previous) = self.writing.take() {
            previous.await.map_err(std::io::Error::other)??;
        }
        for digest in self.hashing {
            self.digests
                .push(digest.await.map_err(std::io::Error::other)?);
        }
        Ok(self.digests)
    }
}
