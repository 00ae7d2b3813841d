//! Writes that bypass the page cache (`O_DIRECT`), double-buffered.
//!
//! On the machines measured, buffered writes into the page cache were the
//! slowest step of an upload: about half the speed of the same writes with
//! `O_DIRECT`, and the cache gains nothing from bytes written once and read
//! much later. `O_DIRECT` needs 4 KiB-aligned memory, offsets and lengths,
//! so bytes are gathered in an aligned buffer and sent in whole blocks; the
//! unaligned head of a write that starts mid-block and the tail left at the
//! end go through the page cache instead. While one buffer is on its way to
//! the device, the next one fills: the device is kept busy while the
//! network is read and the bytes are hashed.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex};

use aligned_vec::{AVec, RuntimeAlign};
use tokio::task::{JoinHandle, spawn_blocking};

/// The alignment `O_DIRECT` needs (of memory, offsets and lengths).
const ALIGN: usize = 4096;
/// Bytes gathered before they go to the device in one write.
const FLUSH_AT: usize = 512 << 10;

type Buf = AVec<u8, RuntimeAlign>;

/// One chunk's writes through an `O_DIRECT` descriptor.
pub(super) struct DirectWriter {
    direct: Arc<File>,
    /// The same file through the page cache, for unaligned pieces.
    cached: Arc<File>,
    /// Bytes gathered, not yet sent.
    buf: Buf,
    /// The file offset of `buf`'s first byte (of the next byte when empty).
    at: u64,
    /// The buffer on its way to the device, if any.
    inflight: Option<Inflight>,
}

struct Inflight {
    task: JoinHandle<io::Result<Buf>>,
    done: Arc<Done>,
}

/// Set once a background write has finished, so that dropping a writer can
/// wait for it without a runtime: no write may land after its writer (and
/// the lock held around it) is gone.
#[derive(Default)]
struct Done(Mutex<bool>, Condvar);

impl Done {
    fn set(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.1.notify_all();
    }

    fn wait(&self) {
        let mut done = self.0.lock().unwrap_or_else(|p| p.into_inner());
        while !*done {
            done = self.1.wait(done).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Opens `path` for `O_DIRECT` writes; `None` where the file system does
/// not support them (tmpfs, some network file systems) or off Linux.
#[cfg(target_os = "linux")]
pub(super) fn open(path: &std::path::Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
pub(super) fn open(_path: &std::path::Path) -> Option<File> {
    None
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    spawn_blocking(f).await.map_err(io::Error::other)?
}

impl DirectWriter {
    pub(super) fn new(direct: File, cached: Arc<File>, at: u64) -> Self {
        DirectWriter {
            direct: Arc::new(direct),
            cached,
            buf: AVec::with_capacity(ALIGN, FLUSH_AT),
            at,
            inflight: None,
        }
    }

    /// Takes the next bytes of the chunk. They reach the device later, at
    /// the latest in [`DirectWriter::drain`].
    pub(super) async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let mut data = data;
        if self.buf.is_empty() && !self.at.is_multiple_of(ALIGN as u64) {
            // A start inside a block: through the page cache up to the next
            // block boundary.
            let head = (ALIGN - (self.at % ALIGN as u64) as usize).min(data.len());
            let (cached, piece, at) = (self.cached.clone(), data[..head].to_vec(), self.at);
            blocking(move || cached.write_all_at(&piece, at)).await?;
            self.at += head as u64;
            data = &data[head..];
        }
        while !data.is_empty() {
            let take = (FLUSH_AT - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == FLUSH_AT {
                self.send().await?;
            }
        }
        Ok(())
    }

    /// Sends the whole blocks of the buffer to the device in the background
    /// (after the previous send finished); the rest starts the next buffer.
    async fn send(&mut self) -> io::Result<()> {
        let mut next = self
            .finish_inflight()
            .await?
            .unwrap_or_else(|| AVec::with_capacity(ALIGN, FLUSH_AT));
        let whole = self.buf.len() / ALIGN * ALIGN;
        next.clear();
        next.extend_from_slice(&self.buf[whole..]);
        let mut full = std::mem::replace(&mut self.buf, next);
        full.truncate(whole);
        let (direct, at) = (self.direct.clone(), self.at);
        self.at += whole as u64;
        let done = Arc::new(Done::default());
        let signal = done.clone();
        let task = spawn_blocking(move || {
            let written = direct.write_all_at(&full, at).map(|()| full);
            signal.set();
            written
        });
        self.inflight = Some(Inflight { task, done });
        Ok(())
    }

    /// Waits for the buffer on its way, and hands it back for reuse.
    async fn finish_inflight(&mut self) -> io::Result<Option<Buf>> {
        let Some(inflight) = &mut self.inflight else {
            return Ok(None);
        };
        let written = (&mut inflight.task).await.map_err(io::Error::other);
        self.inflight = None;
        Ok(Some(written??))
    }

    /// Writes out everything taken so far and waits until it is written
    /// (durable only after the caller's `fdatasync`).
    pub(super) async fn drain(&mut self) -> io::Result<()> {
        self.finish_inflight().await?;
        let buf = std::mem::replace(&mut self.buf, AVec::new(ALIGN));
        let (direct, cached, at) = (self.direct.clone(), self.cached.clone(), self.at);
        let whole = buf.len() / ALIGN * ALIGN;
        self.at += buf.len() as u64;
        self.buf = blocking(move || {
            direct.write_all_at(&buf[..whole], at)?;
            cached.write_all_at(&buf[whole..], at + whole as u64)?;
            Ok(buf)
        })
        .await?;
        self.buf.clear();
        Ok(())
    }
}

impl Drop for DirectWriter {
    fn drop(&mut self) {
        if let Some(inflight) = &self.inflight {
            inflight.done.wait();
        }
    }
}
