//! tusk-server: the HTTP server of tusk.
//!
//! - [`config`]: the `tusk serve` settings (flags, environment)
//! - [`http`]: the doors — JSON API, tus, form posts, downloads — as an
//!   axum app
//! - [`metrics`]: the Prometheus recorder, `/metrics`, and the middleware
//!   counting requests and bytes
//! - [`access_log`]: what is logged of each request
//! - [`open`]: builds the store, catalog and service a configuration names
//!   ([`open_unheld`] for commands beside a running server)
//! - [`run`]: serves an app on a listener until shutdown
//! - [`sweep_forever`]: ends uploads left idle past their expiry and
//!   discards what no record names ([`sweep_once`]: one round)
//!
//! Tests build the app with [`http::app`] or run the whole server on
//! `127.0.0.1:0` with [`run`].

pub mod access_log;
pub mod config;
pub mod http;
mod listen;
pub mod metrics;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tusk_catalog::{PostgresCatalog, SqliteCatalog};
use tusk_core::model::Timestamp;
use tusk_core::{BlobStore, Catalog, UploadService};
use tusk_store::{FsStore, S3Config, S3Store};

pub use config::{CatalogUrl, ServeConfig, StoreUrl};
pub use http::{AppState, app};
pub use listen::run;

/// Opens the store and the catalog a configuration names — by default
/// both in the data folder: blobs under `<data>/`, the catalog in
/// `<data>/catalog.db`. Fails, naming what and where, unless both work.
/// Whatever it creates there only the server's user may open (folders
/// 0700, files 0600).
pub async fn open(config: &ServeConfig) -> anyhow::Result<AppState> {
    // Before anything can be counted.
    crate::metrics::install();
    let mut held = Vec::new();
    let service = open_with(config, Some(&mut held)).await?;
    Ok(AppState {
        _held: Arc::new(held),
        service: Arc::new(service),
        exposure: http::exposure::Exposure {
            cors_origins: config.cors_origins.clone(),
            public_url: config.public_url.clone(),
            public_uploads: config.public_uploads,
        },
        pace: http::pace::Pace {
            idle: config.body_timeout,
            min_rate: config.min_rate,
        },
    })
}

/// The service over the store and catalog a configuration names, for
/// commands that manage a server's records while it may be running
/// (`tusk token`): nothing is held, so a running `tusk serve` on the same
/// data folder is not in the way (SQLite lets the two take turns).
pub async fn open_unheld(config: &ServeConfig) -> anyhow::Result<UploadService> {
    open_with(config, None).await
}

async fn open_with(
    config: &ServeConfig,
    mut held: Option<&mut Vec<std::fs::File>>,
) -> anyhow::Result<UploadService> {
    let store = open_store(config, held.as_deref_mut()).await?;
    let catalog = open_catalog(config, held).await?;
    Ok(UploadService::new(store, catalog, config.limits()))
}

/// Holds `lock` (a file beside what it guards) for this process alone, so
/// that a second `tusk serve` on the same folder or database file refuses
/// to start instead of writing over the first: their locks live in
/// process memory. The kernel lets go when the process ends, however it
/// ends.
fn hold(lock: &Path, what: &str, held: Option<&mut Vec<std::fs::File>>) -> anyhow::Result<()> {
    let Some(held) = held else {
        return Ok(());
    };
    let file = tusk_store::fs::private::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock)
        .with_context(|| format!("cannot open {}", lock.display()))?;
    match file.try_lock() {
        Ok(()) => {
            held.push(file);
            Ok(())
        }
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "{what} is in use by another tusk serve (it holds {}); one process per \
             data folder — several nodes share --store s3://… and --catalog postgres://…",
            lock.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", lock.display()))
        }
    }
}

async fn open_store(
    config: &ServeConfig,
    held: Option<&mut Vec<std::fs::File>>,
) -> anyhow::Result<Arc<dyn BlobStore>> {
    let url = config.store_url();
    Ok(match &url {
        StoreUrl::File(path) => {
            tusk_store::fs::private::create_dir(path).with_context(|| {
                format!("cannot create the blob store's folder {}", path.display())
            })?;
            hold(
                &path.join("tusk.lock"),
                &format!("the blob store {url}"),
                held,
            )?;
            let store =
                FsStore::open(path).with_context(|| format!("cannot open the blob store {url}"))?;
            Arc::new(if config.no_fsync {
                store.without_fsync()
            } else {
                store
            })
        }
        StoreUrl::S3 { bucket, prefix } => {
            let s3 = S3Config {
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                endpoint: config.s3_endpoint.clone(),
                region: config.s3_region.clone(),
                path_style: config.s3_path_style.unwrap_or(config.s3_endpoint.is_some()),
                part_memory: config.s3_part_memory,
            };
            let at = s3.endpoint.as_deref().unwrap_or("AWS");
            Arc::new(S3Store::open(&s3).await.with_context(|| {
                format!(
                    "cannot use the blob store {url} at {at} (it must exist and the \
                     credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY must allow \
                     writing to it)"
                )
            })?)
        }
    })
}

async fn open_catalog(
    config: &ServeConfig,
    held: Option<&mut Vec<std::fs::File>>,
) -> anyhow::Result<Arc<dyn Catalog>> {
    let url = config.catalog_url();
    Ok(match &url {
        CatalogUrl::Sqlite(path) => {
            if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                tusk_store::fs::private::create_dir(folder).with_context(|| {
                    format!("cannot create the catalog's folder {}", folder.display())
                })?;
            }
            let lock = PathBuf::from(format!("{}.lock", path.display()));
            hold(&lock, &format!("the catalog {url}"), held)?;
            let catalog = if config.no_fsync {
                SqliteCatalog::open_without_fsync(path).await
            } else {
                SqliteCatalog::open(path).await
            };
            Arc::new(catalog.with_context(|| format!("cannot open the catalog {url}"))?)
        }
        CatalogUrl::Postgres(pg) => Arc::new(
            PostgresCatalog::connect(pg)
                .await
                .with_context(|| format!("cannot use the catalog {url}"))?,
        ),
    })
}

/// How often a node looks for expired uploads to sweep.
pub const SWEEP_EVERY: Duration = Duration::from_secs(300);

/// Sweeps now and then every [`SWEEP_EVERY`], for ever
/// (spawn it, abort it at shutdown). Every node may run one: they share
/// the work through the catalog's locks.
pub async fn sweep_forever(service: Arc<UploadService>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        sweep_once(&service).await;
    }
}

/// What one round of the sweeper did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Uploads ended after their expiry.
    pub expired: usize,
    /// Staging no upload named, discarded.
    pub stagings: usize,
    /// Blobs no record owned, deleted.
    pub blobs: usize,
    /// Parts of the round that failed (logged).
    pub failed: usize,
}

/// One round of the sweeper, now: expired uploads, then orphaned staging
/// and blobs (older than the service's orphan age). Each part that fails is
/// logged and counted, and the others still run.
pub async fn sweep_once(service: &UploadService) -> Swept {
    let mut swept = Swept::default();
    let now = Timestamp::now();
    match service.sweep_expired(now).await {
        Ok(0) => {}
        Ok(n) => {
            swept.expired = n;
            tracing::info!("swept {n} expired uploads");
        }
        Err(e) => {
            swept.failed += 1;
            tracing::warn!(error = %e, "sweeping expired uploads failed");
        }
    }
    match service.sweep_orphans(now).await {
        Ok(0) => {}
        Ok(n) => {
            swept.stagings = n;
            tracing::info!("discarded {n} orphaned stagings");
        }
        Err(e) => {
            swept.failed += 1;
            tracing::warn!(error = %e, "sweeping orphaned staging failed");
        }
    }
    match service.sweep_orphan_blobs(now).await {
        Ok(0) => {}
        Ok(n) => {
            swept.blobs = n;
            tracing::info!("deleted {n} orphaned blobs");
        }
        Err(e) => {
            swept.failed += 1;
            tracing::warn!(error = %e, "sweeping orphaned blobs failed");
        }
    }
    swept
}
