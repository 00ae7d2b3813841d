//! tusk-server: the HTTP server of tusk.
//!
//! - [`config`]: the `tusk serve` settings (flags, environment)
//! - [`http`]: the doors — JSON API, tus, form posts, downloads — as an
//!   axum app
//! - [`open`]: builds the store, catalog and service a configuration names
//! - [`run`]: serves an app on a listener until shutdown
//!
//! Tests build the app with [`http::app`] or run the whole server on
//! `127.0.0.1:0` with [`run`].

pub mod config;
pub mod http;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tusk_catalog::SqliteCatalog;
use tusk_core::UploadService;
use tusk_store::FsStore;

pub use config::ServeConfig;
pub use http::{AppState, app};

/// Opens the data folder a configuration names: the blob store under
/// `<data>/`, the catalog in `<data>/catalog.db`.
pub async fn open(config: &ServeConfig) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&config.data)
        .with_context(|| format!("cannot create the data folder {}", config.data.display()))?;
    let store = FsStore::open(&config.data)
        .with_context(|| format!("cannot open the blob store in {}", config.data.display()))?;
    let catalog_path = config.data.join("catalog.db");
    let catalog = SqliteCatalog::open(&catalog_path)
        .await
        .with_context(|| format!("cannot open the catalog {}", catalog_path.display()))?;
    let service = UploadService::new(Arc::new(store), Arc::new(catalog), config.limits());
    Ok(AppState {
        service: Arc::new(service),
        cors_origins: config.cors_origins.clone(),
    })
}

/// Serves `state` on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
