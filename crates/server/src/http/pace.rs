//! Slow-drip protection: every request body must keep arriving.
//!
//! A client that opens a request and then sends a byte now and then holds a
//! connection, a task and often a lock for as long as it likes. Every
//! request body is wrapped so that it fails with [`TooSlow`] when, while
//! the server is waiting for it, nothing arrives for `idle`, or less than
//! `min_rate` bytes per second arrive over a stretch of `idle`. Only time
//! spent waiting on the client counts: a server that stops reading (its
//! own back-pressure) never makes a client too slow.
//!
//! The body fails with [`BodyTooSlow`], which the core and the doors turn
//! into [`tusk_core::Error::TooSlow`]: 408 `request_timeout` with
//! `Connection: close`.
//!
//! Written by hand: tower-http's timeouts bound a whole request or the gap
//! between frames, not a rate measured over the time spent waiting.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tusk_core::error::BodyTooSlow;

/// How a request body must keep arriving.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// The longest wait for any byte, and the stretch a rate is measured
    /// over.
    pub idle: Duration,
    /// Bytes per second, at least; 0: no rate check.
    pub min_rate: u64,
}

/// Middleware: paces every request's body.
pub async fn pace_bodies(State(pace): State<Pace>, request: Request, next: Next) -> Response {
    let request = request.map(|body| Body::new(Paced::new(body, pace)));
    next.run(request).await
}

pin_project_lite::pin_project! {
    struct Paced {
        #[pin]
        inner: Body,
        pace: Pace,
        // Armed while the server waits on the client.
        #[pin]
        timer: Option<Sleep>,
        // When the current wait began.
        waiting_since: Option<Instant>,
        // Time spent waiting and bytes received in the current stretch.
        waited: Duration,
        received: u64,
    }
}

impl Paced {
    fn new(inner: Body, pace: Pace) -> Self {
        Paced {
            inner,
            pace,
            timer: None,
            waiting_since: None,
            waited: Duration::ZERO,
            received: 0,
        }
    }
}

impl http_body::Body for Paced {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(frame) => {
                let now = Instant::now();
                if let Some(since) = this.waiting_since.take() {
                    *this.waited += now - since;
                }
                this.timer.set(None);
                if let Some(Ok(f)) = &frame
                    && let Some(data) = f.data_ref()
                {
                    *this.received += data.len() as u64;
                }
                if frame.is_some() && *this.waited >= this.pace.idle && this.pace.min_rate > 0 {
                    let needed = this.pace.min_rate.saturating_mul(this.waited.as_secs());
                    if *this.received < needed {
                        return Poll::Ready(Some(Err(axum::Error::new(BodyTooSlow))));
                    }
                    *this.waited = Duration::ZERO;
                    *this.received = 0;
                }
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let since = *this.waiting_since.get_or_insert_with(Instant::now);
                if this.timer.is_none() {
                    this.timer
                        .set(Some(tokio::time::sleep_until(since + this.pace.idle)));
                }
                let timer = this.timer.as_mut().as_pin_mut().expect("armed above");
                ready!(timer.poll(cx));
                Poll::Ready(Some(Err(axum::Error::new(BodyTooSlow))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
