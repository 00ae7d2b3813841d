//! tusk-store: `BlobStore` backends.
//!
//! - [`fs`]: local disk, the default — sparse part files written in place,
//!   committed by rename.

pub mod fs;

pub use fs::FsStore;
