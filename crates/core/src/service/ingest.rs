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

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures::{FutureExt, StreamExt};

use crate::checksum::Verifier;
use crate::error::{Error, Result};
use crate::hash::BlockHasher;
use crate::store::{ByteStream, ChunkWriter};

use super::buffers::{ALIGN, Batch, Buffers, Share};

/// Most bytes held per batch: a request holds at most two (one being
/// written and hashed, the next being read).
pub(crate) const BATCH: usize = 512 * 1024;

/// How long a batch that has bytes waits on the client for more before it
/// is handed on (time spent waiting only, as `pace` counts it).
///
/// Handing a batch on the moment the network has nothing ready would free
/// its memory soonest, but at the pace of a network slower than the
/// server it would cut the body into batches of a few KiB, each paying for
/// its own store write and hashing task (and a batch taken whole would
/// count far more than it holds). Waiting this long lets a batch fill at
/// any rate above `BATCH / LINGER` (10 MB/s). A client that pauses holds
/// a batch counted by its bytes for these moments, or a whole one if it
/// sent [`STREAM_AT`] bytes: to keep one taken all the time, a client must
/// send that much every `LINGER`, 640 KB/s, and it still waits its turn
/// behind every other request.
const LINGER: Duration = Duration::from_millis(50);

/// Bytes in hand that show a client sending as fast as the server reads:
/// half of the most the HTTP server reads at once.
const STREAM_AT: usize = 32 * 1024;

/// A request body, read in batches.
///
/// Memory is taken for bytes in hand, not for bytes to come: a batch
/// starts once a block's worth ([`ALIGN`]) is in hand (or the body ended),
/// takes more while it keeps coming (waiting on it [`LINGER`] at most),
/// and is handed on with what it has. It is counted frame by frame until
/// [`STREAM_AT`] bytes came; then it takes a whole batch of the budget (it
/// will fill it within moments) and frames are copied into it as they
/// come. Until the batch is full,
/// it hands on whole blocks only and keeps the rest for the next one, so
/// that batches stay aligned for `O_DIRECT` writes; those few bytes wait
/// with the connection, uncounted, like the HTTP server's own read buffer.
pub(crate) struct Body {
    stream: ByteStream,
    buffers: Buffers,
    /// A body that sends nothing for this long has failed: a client that
    /// vanished without closing its connection must not hold a chunk's
    /// lock forever.
    idle: Duration,
    /// Bytes received but not handed out yet, in order.
    in_hand: VecDeque<Bytes>,
    in_hand_len: usize,
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
            in_hand: VecDeque::new(),
            in_hand_len: 0,
            done: false,
            failed: None,
        }
    }

    /// Up to `max` (≤ [`BATCH`]) next bytes; `None` once the body ended. A
    /// read error of the body (a client that went away) is an error, and
    /// so is [`Error::Busy`] when the budget has no room in time.
    pub(crate) async fn next_batch(&mut self, max: usize) -> Result<Option<Bytes>> {
        let max = max.min(BATCH);
        if max == 0 {
            return Ok(Some(Bytes::new()));
        }
        // Wait for a block's worth, holding no budget.
        while self.in_hand_len < max.min(ALIGN) && !self.ended() {
            self.receive().await;
        }
        if self.in_hand_len == 0 {
            return match self.failed.take() {
                Some(e) => Err(e),
                None => Ok(None),
            };
        }
        // A client that sends as fast as the server reads hands over large
        // frames: its batch will fill within moments, so it takes a whole
        // batch of the budget (waiting its turn for it) and its frames are
        // copied as they come, while still in the CPU's cache. Anything
        // else is counted frame by frame, and turns into such a batch once
        // as many bytes came and the budget has the room at once.
        let mut waited = Duration::ZERO;
        let batch = if self.in_hand_len >= max.min(STREAM_AT) {
            let share = self.buffers.reserve(max).await?;
            self.streaming_batch(share, max, &mut waited).await
        } else {
            self.trickling_batch(max, &mut waited).await?
        };
        if self.in_hand_len > 0 && self.in_hand_len < ALIGN {
            // A few bytes: copied out, so that they do not keep the much
            // larger buffer they were received in.
            let mut rest = BytesMut::with_capacity(self.in_hand_len);
            for piece in self.in_hand.drain(..) {
                rest.extend_from_slice(&piece);
            }
            self.in_hand.push_back(rest.freeze());
        }
        Ok(Some(batch.freeze()))
    }

    /// A batch of `max` bytes of the budget (`share`), filled as frames
    /// arrive until it is full, the body ends, or it waited [`LINGER`] in
    /// all.
    async fn streaming_batch(&mut self, share: Share, max: usize, waited: &mut Duration) -> Batch {
        let mut batch = self.buffers.batch(share, max);
        self.fill(&mut batch);
        while batch.room() > 0 && !self.ended() && self.receive_within(waited).await {
            self.fill(&mut batch);
        }
        if batch.room() > 0 && !(self.ended() && self.in_hand_len == 0) {
            // More is to come: whole blocks now, the rest with it.
            let rest = batch.split_off(batch.len() / ALIGN * ALIGN);
            if !rest.is_empty() {
                self.in_hand_len += rest.len();
                self.in_hand.push_front(rest);
            }
        }
        batch
    }

    /// A batch counted by the bytes in hand, frame by frame: takes what
    /// keeps coming, while the budget has room for it now, until it waited
    /// [`LINGER`] in all; streams once [`STREAM_AT`] bytes came.
    async fn trickling_batch(&mut self, max: usize, waited: &mut Duration) -> Result<Batch> {
        let mut counted = self.in_hand_len.min(max);
        let mut share = self.buffers.reserve(counted).await?;
        while counted == self.in_hand_len && counted < max && !self.ended() {
            if counted >= STREAM_AT && self.buffers.try_grow(&mut share, max) {
                return Ok(self.streaming_batch(share, max, waited).await);
            }
            if !self.receive_within(waited).await {
                break;
            }
            let wanted = self.in_hand_len.min(max);
            if self.buffers.try_grow(&mut share, wanted) {
                counted = wanted;
            }
        }
        let everything = self.ended() && counted == self.in_hand_len;
        let len = if counted == max || everything {
            counted
        } else {
            // More is to come: whole blocks now, the rest with it.
            counted / ALIGN * ALIGN
        };
        let mut batch = self.buffers.batch(share, len);
        self.fill(&mut batch);
        Ok(batch)
    }

    /// Receives the next frame (or the end) unless that means waiting on
    /// the client past what is left of [`LINGER`] after `waited`; false if
    /// it would. Only time spent waiting on the client counts: a server too
    /// busy to read at once does not cut a fast client's batches short.
    async fn receive_within(&mut self, waited: &mut Duration) -> bool {
        if self.receive().now_or_never().is_some() {
            return true;
        }
        let Some(left) = LINGER.checked_sub(*waited).filter(|l| !l.is_zero()) else {
            return false;
        };
        let since = tokio::time::Instant::now();
        let received = tokio::time::timeout(left, self.receive()).await.is_ok();
        *waited += since.elapsed();
        received
    }

    /// Copies bytes in hand into `batch`, as many as it has room for.
    fn fill(&mut self, batch: &mut Batch) {
        while batch.room() > 0
            && let Some(front) = self.in_hand.front_mut()
        {
            let n = batch.room().min(front.len());
            batch.extend_from_slice(&front[..n]);
            front.advance(n);
            self.in_hand_len -= n;
            if front.is_empty() {
                self.in_hand.pop_front();
            }
        }
    }

    /// Whether the body will bring no more bytes (it ended or failed).
    fn ended(&self) -> bool {
        self.done || self.failed.is_some()
    }

    /// Adds the next frame to the bytes in hand, or notes the end or the
    /// failure of the body. Cancel-safe: nothing is lost if it is dropped
    /// while waiting.
    async fn receive(&mut self) {
        match self.next_frame().await {
            Ok(Some(frame)) => {
                self.in_hand_len += frame.len();
                self.in_hand.push_back(frame);
            }
            Ok(None) => {}
            Err(e) => self.failed = Some(e),
        }
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
        if self.in_hand_len == 0
            && let Some(frame) = self.next_frame().await?
        {
            self.in_hand_len = frame.len();
            self.in_hand.push_back(frame);
        }
        Ok(self.in_hand_len > 0)
    }

    /// Reads and drops up to `limit` bytes (a little more if a frame ends
    /// past it); returns how many there were.
    pub(crate) async fn drain(&mut self, limit: u64) -> Result<u64> {
        let mut seen = std::mem::take(&mut self.in_hand_len) as u64;
        self.in_hand.clear();
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

    const BUDGET: usize = 4 * BATCH;

    fn buffers() -> Buffers {
        Buffers::new(BUDGET as u64, BATCH, Duration::from_secs(10))
    }

    /// A body fed by hand, frame by frame.
    fn fed() -> (
        futures::channel::mpsc::UnboundedSender<std::io::Result<Bytes>>,
        ByteStream,
    ) {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        (tx, Box::pin(rx))
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_holds_no_more_budget_than_its_bytes() {
        let buffers = buffers();
        let (tx, stream) = fed();
        let mut body = Body::new(stream, Duration::from_secs(60), buffers.clone());
        tx.unbounded_send(Ok(Bytes::from_static(b"abc"))).unwrap();
        let batch = {
            let mut next = std::pin::pin!(body.next_batch(BATCH));
            assert!(futures::poll!(next.as_mut()).is_pending());
            assert_eq!(buffers.available(), BUDGET, "3 bytes wait uncounted");
            tx.unbounded_send(Ok(Bytes::from(vec![1u8; 5000]))).unwrap();
            assert!(futures::poll!(next.as_mut()).is_pending());
            assert_eq!(buffers.available(), BUDGET - 5 * 1024, "5003 bytes");
            // Nothing more comes: the whole blocks are handed on…
            next.await.unwrap().unwrap()
        };
        assert_eq!(batch.len(), ALIGN);
        assert_eq!(&batch[..3], b"abc");
        assert_eq!(buffers.available(), BUDGET - ALIGN);
        // …and waiting for the rest holds nothing more.
        {
            let mut next = std::pin::pin!(body.next_batch(BATCH));
            assert!(futures::poll!(next.as_mut()).is_pending());
            drop(batch);
            assert_eq!(buffers.available(), BUDGET);
            drop(tx);
            assert_eq!(next.await.unwrap().unwrap().len(), 5003 - ALIGN);
        }
        assert!(body.next_batch(BATCH).await.unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_silence_holds_the_budget_no_longer_than_the_linger() {
        let buffers = buffers();
        let (tx, stream) = fed();
        let mut body = Body::new(stream, Duration::from_secs(60), buffers.clone());
        for _ in 0..2 {
            tx.unbounded_send(Ok(Bytes::from(vec![2u8; 64 * 1024 + 100])))
                .unwrap();
        }
        let started = tokio::time::Instant::now();
        let batch = body.next_batch(BATCH).await.unwrap().unwrap();
        assert_eq!(started.elapsed(), LINGER);
        assert_eq!(batch.len(), 2 * 64 * 1024, "whole blocks, the rest kept");
        drop(batch);
        let mut next = std::pin::pin!(body.next_batch(BATCH));
        assert!(futures::poll!(next.as_mut()).is_pending());
        assert_eq!(buffers.available(), BUDGET, "200 bytes wait uncounted");
    }

    #[tokio::test]
    async fn a_body_that_keeps_coming_fills_whole_batches() {
        let sizes = [64 * 1024; 20];
        let mut body = Body::new(frames(&sizes), Duration::from_secs(5), buffers());
        let mut lens = Vec::new();
        while let Some(b) = body.next_batch(BATCH).await.unwrap() {
            lens.push(b.len());
        }
        assert_eq!(lens, [BATCH, BATCH, 4 * 64 * 1024]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_budget_that_stays_taken_is_busy() {
        let buffers = Buffers::new(2 * BATCH as u64, BATCH, Duration::from_secs(10));
        let taken = buffers.reserve(2 * BATCH).await.unwrap();
        let mut body = Body::new(frames(&[BATCH]), Duration::from_secs(5), buffers.clone());
        let err = body.next_batch(BATCH).await.unwrap_err();
        assert!(matches!(&err, Error::Busy), "{err:?}");
        drop(taken);
        assert_eq!(body.next_batch(BATCH).await.unwrap().unwrap().len(), BATCH);
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
