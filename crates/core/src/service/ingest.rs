//! The write path shared by chunk writes and appends.
//!
//! A request body arrives as frames of any size. [`Body`] copies them into
//! batches of at most [`BATCH`] bytes, taken from the service's shared
//! [`Buffers`] budget (bounded memory however many requests run) and
//! aligned for `O_DIRECT`, and [`pump`] sends each batch to the store's
//! chunk writer while, beside the write, a blocking-pool task feeds the same
//! batch to the block hasher and any per-request checksum verifier. That one
//! copy is the only one on the way to the disk, and block digests are ready
//! the moment the last byte is written: nothing is ever read back.

use std::time::Duration;

use bytes::{Buf, Bytes};
use futures::StreamExt;

use crate::checksum::Verifier;
use crate::error::{Error, Result};
use crate::hash::BlockHasher;
use crate::store::{ByteStream, ChunkWriter};

use super::buffers::Buffers;

/// Most bytes held per batch: a request holds at most two (one being
/// written and hashed, the next being read).
pub(crate) const BATCH: usize = 512 * 1024;

/// A request body, read in batches.
pub(crate) struct Body {
    stream: ByteStream,
    buffers: Buffers,
    /// A body that sends nothing for this long has failed: a client that
    /// vanished without closing its connection must not hold a chunk's
    /// lock forever.
    idle: Duration,
    /// Bytes received but not handed out yet.
    pending: Bytes,
    done: bool,
    /// A read error held back until the bytes before it are handed out.
    failed: Option<Error>,
}

impl Body {
    pub(crate) fn new(stream: ByteStream, idle: Duration, buffers: Buffers) -> Self {
        Body {
            stream,
            buffers,
            idle,
            pending: Bytes::new(),
            done: false,
            failed: None,
        }
    }

    /// Up to `max` (≤ [`BATCH`]) next bytes; `None` once the body ended. A
    /// read error of the body (a client that went away) is an error.
    pub(crate) async fn next_batch(&mut self, max: usize) -> Result<Option<Bytes>> {
        let max = max.min(BATCH);
        if max == 0 {
            return Ok(Some(Bytes::new()));
        }
        if self.pending.is_empty() {
            match self.next_frame().await? {
                Some(frame) => self.pending = frame,
                None => return Ok(None),
            }
        }
        // Memory is taken once bytes are there to fill it.
        let mut batch = self.buffers.take(max).await;
        loop {
            let n = batch.room().min(self.pending.len());
            batch.extend_from_slice(&self.pending[..n]);
            self.pending.advance(n);
            if batch.room() == 0 {
                break;
            }
            match self.next_frame().await {
                Ok(Some(frame)) => self.pending = frame,
                Ok(None) => break,
                // Hand out what arrived; report the failure next time.
                Err(e) => {
                    self.failed = Some(e);
                    break;
                }
            }
        }
        Ok(Some(batch.freeze()))
    }

    /// The next non-empty frame, `None` at the end.
    async fn next_frame(&mut self) -> Result<Option<Bytes>> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        while !self.done {
            let Ok(next) = tokio::time::timeout(self.idle, self.stream.next()).await else {
                self.done = true;
                return Err(Error::TooSlow);
            };
            match next {
                Some(Ok(frame)) if frame.is_empty() => continue,
                Some(Ok(frame)) => return Ok(Some(frame)),
                Some(Err(e)) => {
                    self.done = true;
                    return Err(Error::from_body(e));
                }
                None => self.done = true,
            }
        }
        Ok(None)
    }

    /// Whether more bytes follow; reads at most one frame ahead.
    pub(crate) async fn has_more(&mut self) -> Result<bool> {
        if self.pending.is_empty() {
            self.pending = self.next_frame().await?.unwrap_or_default();
        }
        Ok(!self.pending.is_empty())
    }

    /// Reads and drops up to `limit` bytes (a little more if a frame ends
    /// past it); returns how many there were.
    pub(crate) async fn drain(&mut self, limit: u64) -> Result<u64> {
        let mut seen = std::mem::take(&mut self.pending).len() as u64;
        while seen <= limit {
            match self.next_frame().await? {
                Some(frame) => seen += frame.len() as u64,
                None => break,
            }
        }
        Ok(seen)
    }
}

/// What bytes are digested into while they are written.
pub(crate) struct Digests {
    pub hasher: BlockHasher,
    pub verifier: Verifier,
}

impl Digests {
    async fn update(self, batch: Bytes) -> Result<Self> {
        let mut me = self;
        super::blocking(move || {
            me.hasher.update(&batch);
            me.verifier.update(&batch);
            me
        })
        .await
    }
}

/// How a pump ended.
#[derive(Debug)]
pub(crate) enum Stop {
    /// `room` bytes were written.
    Full,
    /// The body ended first.
    BodyEnded,
    /// Reading the body failed (the client went away) after `written` bytes.
    BodyFailed(Error),
}

/// Moves up to `room` bytes from `body` into `writer`, digesting them on the
/// way. Returns the bytes written and why it stopped. A store error is an
/// error; what was written before it is then undefined.
///
/// Three things overlap: while one batch is written and digested, the next
/// one is read from the network. At most two batches are held at a time.
pub(crate) async fn pump(
    body: &mut Body,
    writer: &mut dyn ChunkWriter,
    digests: &mut Option<Digests>,
    room: u64,
) -> Result<(u64, Stop)> {
    let mut written = 0u64;
    let mut next = body.next_batch(batch_len(room)).await;
    loop {
        let batch = match next {
            Ok(Some(b)) => b,
            Ok(None) => return Ok((written, Stop::BodyEnded)),
            Err(e) => return Ok((written, Stop::BodyFailed(e))),
        };
        let len = batch.len() as u64;
        let after = room - written - len;
        let d = digests.take().expect("digests present between batches");
        let read_ahead = async {
            if after == 0 {
                Ok(None)
            } else {
                body.next_batch(batch_len(after)).await
            }
        };
        let (write, d, ahead) =
            tokio::join!(writer.write(batch.clone()), d.update(batch), read_ahead);
        *digests = Some(d?);
        write?;
        written += len;
        if after == 0 {
            return Ok((written, Stop::Full));
        }
        next = ahead;
    }
}

/// The most to read at once when `left` bytes fit.
fn batch_len(left: u64) -> usize {
    usize::try_from(left).unwrap_or(usize::MAX).min(BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(sizes: &[usize]) -> ByteStream {
        let frames: Vec<std::io::Result<Bytes>> = sizes
            .iter()
            .map(|&n| Ok(Bytes::from(vec![7u8; n])))
            .collect();
        Box::pin(futures::stream::iter(frames))
    }

    fn buffers() -> Buffers {
        Buffers::new(4 * BATCH as u64, BATCH)
    }

    #[tokio::test]
    async fn batches_regroup_frames_without_losing_bytes() {
        let sizes = [1, 10, BATCH + 3, 5, BATCH * 2, 0, 9];
        let mut body = Body::new(frames(&sizes), Duration::from_secs(5), buffers());
        let mut total = 0;
        while let Some(b) = body.next_batch(BATCH).await.unwrap() {
            assert!(!b.is_empty() && b.len() <= BATCH);
            assert_eq!(b.as_ptr() as usize % super::super::buffers::ALIGN, 0);
            total += b.len();
        }
        assert_eq!(total, sizes.iter().sum::<usize>());
        let mut body = Body::new(frames(&[100, 100]), Duration::from_secs(5), buffers());
        assert_eq!(body.next_batch(30).await.unwrap().unwrap().len(), 30);
        assert!(body.has_more().await.unwrap());
        assert_eq!(body.drain(1000).await.unwrap(), 170);
        assert!(!body.has_more().await.unwrap());
    }

    #[tokio::test]
    async fn bytes_before_a_failure_are_handed_out() {
        let frames: Vec<std::io::Result<Bytes>> = vec![
            Ok(Bytes::from(vec![1u8; BATCH + 7])),
            Ok(Bytes::from(vec![2u8; 3])),
            Err(std::io::Error::other("gone")),
        ];
        let mut body = Body::new(
            Box::pin(futures::stream::iter(frames)),
            Duration::from_secs(5),
            buffers(),
        );
        assert_eq!(body.next_batch(BATCH).await.unwrap().unwrap().len(), BATCH);
        assert_eq!(body.next_batch(BATCH).await.unwrap().unwrap().len(), 10);
        assert!(body.next_batch(BATCH).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_body_times_out() {
        let silent: ByteStream = Box::pin(futures::stream::pending());
        let mut body = Body::new(silent, Duration::from_secs(60), buffers());
        let err = body.next_batch(10).await.unwrap_err();
        assert!(matches!(&err, Error::TooSlow), "{err:?}");
    }
}
