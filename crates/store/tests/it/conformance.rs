//! The `BlobStore` conformance suite against the local-disk store.

use std::sync::Arc;

use tusk_core::BlobStore;
use tusk_store::FsStore;

async fn fresh_store() -> (Arc<dyn BlobStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FsStore::open(dir.path().join("data")).expect("open store");
    (Arc::new(store), dir)
}

tusk_core::blob_store_conformance!(fresh_store);
