//! One log line per request: method, path, status and latency.
//!
//! tower-http's `TraceLayer` does the work; this module picks what it
//! records. Each request runs in a `request` span carrying its method and
//! path — the path only: query strings can carry signatures and tokens —
//! so that whatever a handler logs names its request too, and the answer
//! is one `served` event at `info` with the status and the milliseconds
//! until the response head. Failures (5xx, a body that broke off) are
//! logged again at `error` by tower-http's default.

use std::time::Duration;

use axum::http::{Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnRequest, MakeSpan, OnResponse, TraceLayer};
use tracing::Span;

/// The access-log layer of the app.
pub type AccessLog = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    DefaultOnRequest,
    LogResponse,
>;

/// The layer: a span per request, an event per response.
pub fn layer() -> AccessLog {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_response(LogResponse)
}

/// Opens the `request` span: method and path, never the query.
#[derive(Clone, Copy, Debug)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = request.uri().path(),
        )
    }
}

/// Logs the status and latency of each response.
#[derive(Clone, Copy, Debug)]
pub struct LogResponse;

impl<B> OnResponse<B> for LogResponse {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &Span) {
        tracing::info!(
            status = response.status().as_u16(),
            // Whole microseconds: a readable number of milliseconds.
            latency_ms = latency.as_micros() as f64 / 1000.0,
            "served"
        );
    }
}
