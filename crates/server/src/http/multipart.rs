//! `multipart/form-data` bodies read with bounded memory: the parsing of
//! the `multer` crate, with bounds on what it would otherwise hold without
//! limit.
//!
//! multer keeps every byte it has not yet placed in its buffer, and looks
//! for the next boundary or the end of a part's headers by searching that
//! whole buffer again each time more bytes arrive. A body without the
//! boundary (or with endless part headers) would thus grow the buffer for
//! as long as the client sends, at a cost that grows with the square of
//! its length. multer's own `Constraints` bound only whole bodies and part
//! contents, which must stay unbounded here (files are streamed). So:
//!
//! - what precedes a part's content — the text before the first boundary,
//!   the boundary line, the part's headers — may be at most [`HEAD_LIMIT`]
//!   (16 KiB): while the next part is looked for, the body stream hands
//!   multer no more than that, and fails if multer asks for more;
//! - a form has at most [`MAX_PARTS`] parts;
//! - a part that is not a file may hold at most [`FIELD_LIMIT`] bytes.
//!
//! Part contents stream through as they arrive, in pieces multer gives
//! out without holding them; every search then covers only new bytes, so
//! parsing stays linear in the bytes received. A bound passed is answered
//! at once (400 or 413), without reading the rest of the body.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use futures::Stream;

use super::error::{ApiError, ApiResult};
use super::request::stream;

/// The most bytes before a part's content: the text before the first
/// boundary, the boundary line and the part's headers (16 KiB). Browsers
/// and HTTP clients send a few hundred.
pub const HEAD_LIMIT: usize = 16 << 10;

/// The most parts in one form.
pub const MAX_PARTS: usize = 10_000;

/// The most bytes of a part that is not a file (64 KiB).
pub const FIELD_LIMIT: usize = 64 << 10;

/// No bound: the budget while a part's content is read.
const UNBOUNDED: usize = usize::MAX;

/// A `multipart/form-data` body, part by part.
pub struct Form {
    parts: multer::Multipart<'static>,
    /// Bytes the body stream may still hand multer ([`UNBOUNDED`] while
    /// a part's content is read).
    budget: Arc<AtomicUsize>,
    count: usize,
}

impl Form {
    pub fn new(body: Body, boundary: String) -> Form {
        let budget = Arc::new(AtomicUsize::new(UNBOUNDED));
        let guarded = Guarded {
            inner: stream(body),
            budget: budget.clone(),
            held: None,
            starved: false,
        };
        Form {
            parts: multer::Multipart::new(guarded, boundary),
            budget,
            count: 0,
        }
    }

    /// The next part, or `None` after the last. The previous part must
    /// have been read to its end (or [`Form::skip`]ped).
    pub async fn next_field(&mut self) -> ApiResult<Option<multer::Field<'static>>> {
        self.budget.store(HEAD_LIMIT, Ordering::Relaxed);
        let next = self.parts.next_field().await;
        self.budget.store(UNBOUNDED, Ordering::Relaxed);
        let Some(field) = next.map_err(bad_form)? else {
            return Ok(None);
        };
        self.count += 1;
        if self.count > MAX_PARTS {
            return Err(ApiError::FormTooLarge(format!(
                "the form has more than {MAX_PARTS} parts; send them in several requests"
            )));
        }
        Ok(Some(field))
    }

    /// Reads a part that is not a file to its end and drops it.
    pub async fn skip(&mut self, field: &mut multer::Field<'static>) -> ApiResult<()> {
        let mut len = 0;
        while let Some(bytes) = field.chunk().await.map_err(bad_form)? {
            len += bytes.len();
            if len > FIELD_LIMIT {
                return Err(ApiError::FormTooLarge(format!(
                    "the form field {:?} passes {} KiB; only files may be longer",
                    field.name().unwrap_or_default(),
                    FIELD_LIMIT >> 10
                )));
            }
        }
        Ok(())
    }
}

/// multer's error as the API's: a body that came too slowly, a bound
/// passed, or a malformed body.
pub fn bad_form(e: multer::Error) -> ApiError {
    if tusk_core::error::too_slow(&e) {
        return ApiError::Core(tusk_core::Error::TooSlow);
    }
    if has_source::<HeadTooLong>(&e) {
        return ApiError::InvalidRequest(format!(
            "malformed multipart body: no part starts within {} KiB (is the boundary in \
             Content-Type the one the body uses?)",
            HEAD_LIMIT >> 10
        ));
    }
    ApiError::InvalidRequest(format!("malformed multipart body: {e}"))
}

/// Whether `e` or one of its sources is a `T`. An `io::Error`'s own
/// `source` skips the error it wraps: that one is looked at too.
fn has_source<T: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        let wrapped = e.downcast_ref::<io::Error>().and_then(io::Error::get_ref);
        if e.is::<T>() || wrapped.is_some_and(|w| w.is::<T>()) {
            return true;
        }
        next = e.source();
    }
    false
}

/// Raised by the body stream when multer wants more than [`HEAD_LIMIT`]
/// bytes to find the next part.
#[derive(Debug, thiserror::Error)]
#[error("no part starts within {HEAD_LIMIT} bytes")]
struct HeadTooLong;

/// The request body as multer reads it: while a budget is set, it hands
/// out at most that many bytes. Once they are out it answers "not yet"
/// (waking itself at once) so that multer looks at everything it has; if
/// multer still asks for more, it had the whole budget and found no part
/// in it: the stream fails.
struct Guarded {
    inner: tusk_core::store::ByteStream,
    budget: Arc<AtomicUsize>,
    /// The rest of a piece cut at the end of a budget.
    held: Option<Bytes>,
    /// The budget ran out and multer was told "not yet" once.
    starved: bool,
}

impl Stream for Guarded {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let budget = self.budget.load(Ordering::Relaxed);
        if budget == 0 {
            if self.starved {
                return Poll::Ready(Some(Err(io::Error::other(HeadTooLong))));
            }
            self.starved = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.starved = false;
        let mut bytes = match self.held.take() {
            Some(bytes) => bytes,
            None => match self.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => bytes,
                other => return other,
            },
        };
        if budget != UNBOUNDED {
            if bytes.len() > budget {
                self.held = Some(bytes.split_off(budget));
            }
            self.budget.store(budget - bytes.len(), Ordering::Relaxed);
        }
        Poll::Ready(Some(Ok(bytes)))
    }
}
