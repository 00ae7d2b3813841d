//! `tusk serve`: open the store and the catalog, listen, serve until
//! SIGINT/SIGTERM.
//!
//! Its command line is the server's settings ([`ServeConfig`]) plus two
//! of this process's own: the config file they may come from (read by
//! `config_file.rs` before anything else) and the format of the logs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tusk_server::ServeConfig;

/// The command line of `tusk serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A TOML file of settings, keyed by the long names of these flags,
    /// e.g. `listen = "0.0.0.0:8080"`, `max-file-size = "10GiB"`,
    /// `cors-origin = ["https://a.example", "https://b.example"]`. A flag
    /// or an environment variable overrides what the file says.
    #[arg(long, env = "TUSK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// How log lines on stderr look: `text` for people, `json` (one object
    /// per line) for log collectors.
    #[arg(long, env = "TUSK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub settings: ServeConfig,
}

/// The shape of log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event: `timestamp`, `level`, `target`,
    /// `message` and the event's fields, `span` with the request's.
    Json,
}

/// How long requests in flight may run on after a shutdown signal. Every
/// acknowledged chunk is already durable, so cutting the rest off loses
/// nothing a client was told it has.
const GRACE: Duration = Duration::from_secs(30);

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if let Some(file) = &args.config {
        tracing::info!(file = %file.display(), "settings read from the config file");
    }
    let config = args.settings;
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
