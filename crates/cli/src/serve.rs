//! `tusk serve`: open the store and the catalog, listen, serve until
//! SIGINT/SIGTERM.

use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tusk_server::ServeConfig;

/// How long requests in flight may run on after a shutdown signal. Every
/// acknowledged chunk is already durable, so cutting the rest off loses
/// nothing a client was told it has.
const GRACE: Duration = Duration::from_secs(30);

pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let state = tusk_server::open(&config).await?;
    if !config.listen.ip().is_loopback()
        && !config.public_uploads
        && state.service.is_open().await?
    {
        anyhow::bail!(
            "refusing to serve {} without tokens: anyone reaching it could upload, read and \
             delete files. Create one with `tusk token create --name NAME` (same --data or \
             --catalog), or pass --public-uploads to serve it open on purpose",
            config.listen
        );
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // One plain line on stdout, for people and for tools waiting on readiness.
    println!(
        "tusk listening on http://{addr} (store {}, catalog {})",
        config.store_url(),
        config.catalog_url()
    );

    if config.no_fsync {
        tracing::warn!(
            "--no-fsync: uploads are acknowledged before they reach the disk and can be lost if the machine crashes"
        );
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let sweeper = tokio::spawn(tusk_server::sweep_forever(state.service.clone()));
    let server = tokio::spawn(tusk_server::run(listener, state, shutdown));
    let signal_name = wait_for_signal().await?;
    tracing::info!(
        "{signal_name}: finishing requests in flight (at most {}s)",
        GRACE.as_secs()
    );
    let _ = stop_tx.send(true);
    sweeper.abort();
    match tokio::time::timeout(GRACE, server).await {
        Ok(joined) => joined
            .context("server task failed")?
            .context("server failed")?,
        Err(_) => tracing::warn!(
            "requests still running after {}s; stopping anyway",
            GRACE.as_secs()
        ),
    }
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<&'static str> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
