//! The `Catalog` conformance suite against SQLite.

use std::sync::Arc;

use tusk_catalog::SqliteCatalog;
use tusk_core::Catalog;

async fn fresh_catalog() -> (Arc<dyn Catalog>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let catalog = SqliteCatalog::open(&dir.path().join("catalog.db"))
        .await
        .expect("open catalog");
    (Arc::new(catalog), dir)
}

tusk_core::catalog_conformance!(fresh_catalog);
