//! tusk-core: the protocol-neutral heart of tusk.
//!
//! Everything a door (JSON API, tus, form posts) needs to receive, verify,
//! deduplicate and serve very large files, without knowing HTTP, files on
//! disk or SQL:
//!
//! - [`hash`]: content identity, the `sha256-4m` block hash
//! - [`checksum`]: plain MD5/SHA-1/SHA-256 checks of bodies and claims
//! - [`name`]: display names, normalised, never paths
//! - [`model`]: uploads, files, blobs and their ids
//! - [`store`]: the `BlobStore` trait (where bytes live)
//! - [`catalog`]: the `Catalog` trait (what is known, and locks)
//! - [`locks`]: in-process keyed locks for single-process catalogs
//! - [`service`]: `UploadService`, every upload rule in one place
//! - [`error`]: the service's errors
//! - `conformance` (feature `conformance`): the test suites every
//!   `BlobStore` and `Catalog` backend must pass

pub mod catalog;
pub mod checksum;
pub mod error;
pub mod hash;
pub mod locks;
pub mod model;
pub mod name;
pub mod service;
pub mod store;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use catalog::Catalog;
pub use error::{Error, Result};
pub use hash::{BLOCK_SIZE, ContentHash};
pub use service::{Limits, Readiness, UploadService};
pub use store::BlobStore;
