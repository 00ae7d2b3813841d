//! Counters and latencies for Prometheus, served at `GET /metrics`.
//!
//! Recording goes through the `metrics` facade: the core and the handlers
//! call `metrics::counter!`/`histogram!` where things happen, and this
//! module owns the one recorder they reach. It is installed once per
//! process ([`install`]), however many servers the process runs (tests
//! start dozens), so every number here is a process total. [`track`] is the
//! middleware that counts requests and the body bytes that actually cross
//! the wire, frame by frame — never a `Content-Length` taken on trust.
//! Reading them takes an admin token ([`scrape`]).

use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use metrics::{Counter, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::http::Admin;

/// Requests answered, by method and status code.
pub const HTTP_REQUESTS: &str = "tusk_http_requests_total";
/// Request body bytes read from clients.
pub const BYTES_RECEIVED: &str = "tusk_bytes_received_total";
/// Response body bytes handed to clients.
pub const BYTES_SENT: &str = "tusk_bytes_sent_total";
/// Uploads started (JSON API and tus).
pub const UPLOADS_CREATED: &str = "tusk_uploads_created_total";
/// Uploads completed into a file.
pub const UPLOADS_COMPLETED: &str = "tusk_uploads_completed_total";
/// Uploads ended by the sweeper after sitting idle past their expiry.
pub const UPLOADS_EXPIRED: &str = "tusk_uploads_expired_total";
/// Checks answered with a file at once: the content was already there.
pub const INSTANT_UPLOADS: &str = "tusk_instant_uploads_total";
/// How long a chunk request took (JSON API chunk PUT, tus PATCH).
pub const CHUNK_SECONDS: &str = "tusk_chunk_seconds";

/// The buckets of [`CHUNK_SECONDS`]: a small chunk on a fast disk takes
/// milliseconds, a 1 GiB chunk over a slow link minutes.
const CHUNK_BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// How often histogram samples are folded into their buckets when no one
/// scrapes (a scrape folds them too), so that they cannot pile up.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the process's recorder unless one is installed already, and
/// returns the handle that renders it. Call it before anything is recorded:
/// what is recorded before reaches no one. [`crate::open`] calls it.
///
/// If another recorder was installed first (by a program embedding this
/// server), that one keeps receiving everything, and `/metrics` renders an
/// empty page; this is logged.
pub fn install() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(CHUNK_SECONDS.into()), &CHUNK_BUCKETS)
            .unwrap_or_else(|e| {
                // Only an empty bucket list is refused, and ours is not.
                tracing::warn!(error = %e, "chunk latency buckets refused; reporting quantiles");
                PrometheusBuilder::new()
            });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        match metrics::set_global_recorder(recorder) {
            Ok(()) => {
                describe();
                start_upkeep(handle.clone());
            }
            Err(_) => tracing::warn!(
                "another metrics recorder was installed first; /metrics will stay empty"
            ),
        }
        handle
    })
}

/// Names what each metric means (the `# HELP` lines) and makes the
/// counters show up as 0 before their first event.
fn describe() {
    let counters = [
        (
            HTTP_REQUESTS,
            Unit::Count,
            "HTTP requests answered, by method and status code",
        ),
        (
            BYTES_RECEIVED,
            Unit::Bytes,
            "Request body bytes read from clients",
        ),
        (
            BYTES_SENT,
            Unit::Bytes,
            "Response body bytes sent to clients",
        ),
        (
            UPLOADS_CREATED,
            Unit::Count,
            "Uploads started through the JSON API or tus",
        ),
        (
            UPLOADS_COMPLETED,
            Unit::Count,
            "Uploads verified and completed into a file",
        ),
        (
            UPLOADS_EXPIRED,
            Unit::Count,
            "Unfinished uploads ended by the sweeper after their expiry",
        ),
        (
            INSTANT_UPLOADS,
            Unit::Count,
            "Checks answered with a file at once because the content was already stored",
        ),
    ];
    for (name, unit, help) in counters {
        metrics::describe_counter!(name, unit, help);
        if name != HTTP_REQUESTS {
            metrics::counter!(name).increment(0);
        }
    }
    metrics::describe_histogram!(
        CHUNK_SECONDS,
        Unit::Seconds,
        "Time to store one chunk request (JSON API chunk PUT, tus PATCH), by protocol"
    );
}

/// Folds histogram samples into buckets now and then, on a thread of its
/// own: it outlives any one runtime, as the recorder does.
fn start_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("tusk-metrics".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no metrics upkeep thread; latency samples wait for a scrape");
    }
}

/// `GET /metrics`: every metric in the Prometheus text format. Only for
/// admin tokens (`tusk token create --admin`), or anyone on a server
/// without tokens: the [`Admin`] extractor refuses others with 401/403.
pub async fn scrape(_admin: Admin) -> Response {
    let body = install().render();
    (
        StatusCode::OK,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// The middleware: counts every request by method and status, and the
/// body bytes in both directions as they stream.
pub async fn track(req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let received = metrics::counter!(BYTES_RECEIVED);
    let req = req.map(|body| Body::new(Counted::new(body, received)));
    let response = next.run(req).await;
    metrics::counter!(
        HTTP_REQUESTS,
        "method" => method,
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    let sent = metrics::counter!(BYTES_SENT);
    response.map(|body| Body::new(Counted::new(body, sent)))
}

/// The method as a label: the ones this server answers, or `other`, so that
/// made-up methods cannot grow the number of series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Records how long a chunk request takes once dropped, however the
/// handler ends: `let _timer = ChunkTimer::start("api");`.
pub struct ChunkTimer {
    protocol: &'static str,
    started: Instant,
}

impl ChunkTimer {
    /// Starts timing a chunk request of `protocol` (`api` or `tus`).
    pub fn start(protocol: &'static str) -> Self {
        ChunkTimer {
            protocol,
            started: Instant::now(),
        }
    }
}

impl Drop for ChunkTimer {
    fn drop(&mut self) {
        metrics::histogram!(CHUNK_SECONDS, "protocol" => self.protocol)
            .record(self.started.elapsed());
    }
}

/// A body that adds the length of each data frame to a counter as it
/// passes. Unlike `http_body_util`'s `map_frame` it keeps the size hint, so
/// that responses of known length keep their `Content-Length`.
struct Counted {
    inner: Body,
    counter: Counter,
}

impl Counted {
    fn new(inner: Body, counter: Counter) -> Self {
        Counted { inner, counter }
    }
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.counter.increment(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use http_body_util::BodyExt;

    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let brew = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&brew), "other");
    }

    #[tokio::test]
    async fn a_counted_body_keeps_its_length_and_bytes() {
        let seen = Arc::new(AtomicU64::new(0));
        let body = Body::from("twelve bytes");
        let counted = Counted::new(body, Counter::from_arc(seen.clone()));
        assert_eq!(counted.size_hint().exact(), Some(12));
        let bytes = counted.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"twelve bytes");
        assert_eq!(seen.load(Ordering::Relaxed), 12);
    }
}
