//! Accepting connections and serving the app on each.
//!
//! What `axum::serve` does, plus one setting it does not expose: the
//! largest read buffer of an HTTP/1 connection. hyper grows it up to about
//! 400 KiB, and while the body of an upload streams, one such buffer is
//! being filled while the bytes of the previous one wait to be copied into
//! a batch: with many clients at once that was the largest share of the
//! server's memory (32 uploads: ~25 MiB), for no gain in speed once reads
//! are 64 KiB. Request bodies are copied into the shared buffer budget
//! (`tusk_core`'s `buffers`) as they come, so memory stays flat.

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::http::{AppState, app};

/// The largest read buffer of an HTTP/1 connection.
const READ_BUF: usize = 64 * 1024;

/// Serves `state` on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // A client gets as long to send a request head as it gets for any
    // silence in a body (`--body-timeout`); then the connection is closed.
    let head_timeout = state.pace.idle;
    let app = app(state);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(READ_BUF)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(head_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait for some
                    // to be freed instead of spinning.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
