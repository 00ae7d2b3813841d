//! The local-disk `BlobStore`.
//!
//! ```text
//! <root>/parts/<blob id>          one sparse file per upload in progress
//! <root>/blobs/<ab>/<blob id>     finished blobs, fanned out by id prefix
//! ```
//!
//! Chunks are written in place at their offset with positional writes, so
//! parallel chunks of one upload never move each other's bytes and there is
//! no merge step; the bulk of them bypasses the page cache (`O_DIRECT`)
//! where the file system allows. A chunk is durable once `fdatasync`
//! returns. Commit is
//! fsync + rename into `blobs/` + fsync of the directories: O(1) in the size
//! of the file. Small whole blobs skip the chunk path: `batch` writes
//! many at once and syncs them together. Names on disk are blob ids chosen
//! by the server, never anything a client sent.
//!
//! Only the server's user may read the store: folders are created 0700
//! and files 0600, whatever the umask ([`private`]). Opening a store made
//! with looser modes tightens `blobs/` and `parts/`, which closes every
//! file under them; the root itself is left as it is, since it may be a
//! folder the operator also uses for other things.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod batch;
mod direct;
pub mod private;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::task::spawn_blocking;
use tokio_util::io::ReaderStream;
use tusk_core::model::{BlobId, ChunkRecord, ChunkRef, Staging, Timestamp};
use tusk_core::store::{BlobIds, BlobStore, ByteStream, ChunkWriter, StoreError, StoreResult};

use direct::DirectWriter;

/// Read buffer of downloads.
const READ_BUF: usize = 256 * 1024;

/// Blobs and staged uploads under one directory.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
    /// Whether anything is synced before it is acknowledged (see
    /// [`FsStore::without_fsync`]).
    fsync: bool,
}

impl FsStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        let blobs = root.join("blobs");
        private::create_dir(&root)?;
        for dir in [root.join("parts"), blobs.clone()] {
            private::create_dir(&dir)?;
            private::tighten(&dir)?;
        }
        // All 256 fan-out folders up front: a commit never creates a folder,
        // so a rename never lands in one whose own entry is not yet durable.
        for prefix in 0..=255u8 {
            private::create_dir(&blobs.join(format!("{prefix:02x}")))?;
        }
        sync_dir(&blobs)?;
        sync_dir(&root)?;
        Ok(FsStore { root, fsync: true })
    }

    /// The same store, acknowledging writes once the kernel has them,
    /// without waiting for the disk: no `fdatasync`, no folder syncs. What
    /// is acknowledged survives a crash of the process but not of the
    /// machine (power loss, kernel panic). For measurements and scratch
    /// servers; never the default.
    pub fn without_fsync(mut self) -> Self {
        self.fsync = false;
        self
    }

    fn part_path(&self, blob: &BlobId) -> PathBuf {
        self.root.join("parts").join(blob.as_str())
    }

    fn blob_dir(&self, blob: &BlobId) -> PathBuf {
        self.root.join("blobs").join(&blob.as_str()[..2])
    }

    fn blob_path(&self, blob: &BlobId) -> PathBuf {
        self.blob_dir(blob).join(blob.as_str())
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> StoreResult<T> {
    spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("file task failed: {e}")))?
        .map_err(StoreError::from)
}

/// Asks the kernel to start writing `len` bytes at `pos` to the device now,
/// without waiting. Chunks are then streamed to disk while they arrive, and
/// the `fdatasync` that acknowledges a chunk only waits for the tail: the
/// device keeps many writes in flight instead of one flush per chunk.
/// (`sync_file_range` has no std wrapper; `libc` is the plain binding.)
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, pos: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on an open descriptor; no memory is passed.
    let rc = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            pos as i64,
            len as i64,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Elsewhere the final `fdatasync` does all the work.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _pos: u64, _len: u64) -> io::Result<()> {
    Ok(())
}

/// The files in `dir` named by a blob id and last modified before
/// `before`. A file removed while the folder is read is left out.
fn written_before(dir: &Path, before: Timestamp) -> io::Result<Vec<BlobId>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(blob) = entry.file_name().to_str().and_then(BlobId::parse) else {
            continue;
        };
        let written = match entry.metadata() {
            Ok(meta) => meta.modified()?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let millis = written
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        if millis < before.0 {
            found.push(blob);
        }
    }
    Ok(found)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `fsync` of a file, unless the store runs without.
fn sync_file(file: &File, fsync: bool) -> io::Result<()> {
    if fsync { file.sync_all() } else { Ok(()) }
}

/// `fsync` of a folder, unless the store runs without.
fn sync_folder(dir: &Path, fsync: bool) -> io::Result<()> {
    if fsync { sync_dir(dir) } else { Ok(()) }
}

#[async_trait]
impl BlobStore for FsStore {
    async fn begin(&self, blob: &BlobId, size: Option<u64>) -> StoreResult<Staging> {
        let path = self.part_path(blob);
        let (parts, fsync) = (self.root.join("parts"), self.fsync);
        blocking(move || {
            let file = private::options()
                .write(true)
                .create_new(true)
                .open(&path)?;
            if let Some(size) = size {
                // Sparse: no space is used until chunks arrive.
                file.set_len(size)?;
            }
            sync_file(&file, fsync)?;
            sync_folder(&parts, fsync)
        })
        .await?;
        Ok(Staging {
            blob: blob.clone(),
            handle: String::new(),
        })
    }

    async fn open_chunk(
        &self,
        staging: &Staging,
        chunk: ChunkRef,
        start: u64,
    ) -> StoreResult<Box<dyn ChunkWriter>> {
        let path = self.part_path(&staging.blob);
        let (file, direct) = blocking(move || {
            let file = OpenOptions::new().write(true).open(&path)?;
            Ok((file, direct::open(&path)))
        })
        .await?;
        let (file, pos) = (Arc::new(file), chunk.offset + start);
        Ok(Box::new(FsChunkWriter {
            direct: direct.map(|d| DirectWriter::new(d, file.clone(), pos)),
            file,
            pos,
            end: chunk.offset + chunk.len,
            fsync: self.fsync,
        }))
    }

    async fn commit(
        &self,
        staging: &Staging,
        size: u64,
        _chunks: &[ChunkRecord],
    ) -> StoreResult<()> {
        let (part, dir, dest) = (
            self.part_path(&staging.blob),
            self.blob_dir(&staging.blob),
            self.blob_path(&staging.blob),
        );
        let (parts, fsync) = (self.root.join("parts"), self.fsync);
        blocking(move || {
            match OpenOptions::new().write(true).open(&part) {
                Ok(file) => {
                    if file.metadata()?.len() != size {
                        file.set_len(size)?;
                    }
                    sync_file(&file, fsync)?;
                    std::fs::rename(&part, &dest)?;
                }
                // Renamed by an earlier attempt, which may have stopped
                // before the folder syncs below: do them again.
                Err(e) if e.kind() == io::ErrorKind::NotFound && dest.exists() => {
                    sync_file(&File::open(&dest)?, fsync)?;
                }
                Err(e) => return Err(e),
            }
            sync_folder(&dir, fsync)?;
            sync_folder(&parts, fsync)
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        // Both folders still there (a disk unmounted under a running
        // server shows here).
        for dir in ["parts", "blobs"] {
            let meta = tokio::fs::metadata(self.root.join(dir)).await?;
            if !meta.is_dir() {
                return Err(StoreError::Backend(format!("{dir} is not a folder")));
            }
        }
        Ok(())
    }

    async fn abort(&self, staging: &Staging) -> StoreResult<()> {
        let path = self.part_path(&staging.blob);
        blocking(move || match std::fs::remove_file(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        })
        .await
    }

    /// Part files last written before `before`.
    async fn staged_before(&self, before: Timestamp) -> StoreResult<Vec<Staging>> {
        let parts = self.root.join("parts");
        let blobs = blocking(move || written_before(&parts, before)).await?;
        Ok(blobs
            .into_iter()
            .map(|blob| Staging {
                blob,
                handle: String::new(),
            })
            .collect())
    }

    /// Blob files last modified before `before`, one fan-out folder at a
    /// time.
    fn blobs_before(&self, before: Timestamp) -> BlobIds {
        let blobs = self.root.join("blobs");
        futures::stream::iter(0..=255u8)
            .then(move |prefix| {
                let dir = blobs.join(format!("{prefix:02x}"));
                blocking(move || written_before(&dir, before))
            })
            .map_ok(|ids| futures::stream::iter(ids.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    async fn read(&self, blob: &BlobId, range: Range<u64>) -> StoreResult<ByteStream> {
        let mut file = tokio::fs::File::open(self.blob_path(blob)).await?;
        file.seek(io::SeekFrom::Start(range.start)).await?;
        let body = file.take(range.end - range.start);
        Ok(ReaderStream::with_capacity(body, READ_BUF).boxed())
    }

    async fn delete(&self, blob: &BlobId) -> StoreResult<()> {
        let path = self.blob_path(blob);
        blocking(move || match std::fs::remove_file(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        })
        .await
    }

    async fn put_blobs(&self, blobs: &[(BlobId, Bytes)]) -> StoreResult<()> {
        batch::put_blobs(self, blobs).await
    }
}

/// Writes one chunk of a part file with positional writes: through
/// [`direct`] where the file system allows it, else through the page cache
/// with writeback started after each write.
struct FsChunkWriter {
    file: Arc<File>,
    direct: Option<DirectWriter>,
    /// Where the next byte goes.
    pos: u64,
    /// One past the chunk's last byte.
    end: u64,
    /// Whether `sync`/`finish` wait for the disk.
    fsync: bool,
}

#[async_trait]
impl ChunkWriter for FsChunkWriter {
    async fn write(&mut self, data: Bytes) -> StoreResult<()> {
        let len = data.len() as u64;
        if self.pos + len > self.end {
            return Err(StoreError::OutOfBounds);
        }
        match &mut self.direct {
            Some(direct) => direct.write(data).await?,
            None => {
                let (file, pos, fsync) = (self.file.clone(), self.pos, self.fsync);
                blocking(move || {
                    file.write_all_at(&data, pos)?;
                    if fsync {
                        start_writeback(&file, pos, data.len() as u64)?;
                    }
                    Ok(())
                })
                .await?
            }
        }
        self.pos += len;
        Ok(())
    }

    async fn sync(mut self: Box<Self>) -> StoreResult<()> {
        self.drain_and_sync().await
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<String> {
        self.drain_and_sync().await?;
        Ok(String::new())
    }
}

impl FsChunkWriter {
    async fn drain_and_sync(&mut self) -> StoreResult<()> {
        if let Some(direct) = &mut self.direct {
            direct.drain().await?;
        }
        if !self.fsync {
            return Ok(());
        }
        let file = self.file.clone();
        blocking(move || file.sync_data()).await
    }
}
