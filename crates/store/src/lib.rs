//! tusk-store: `BlobStore` backends.
//!
//! - [`fs`]: local disk, the default — sparse part files written in place,
//!   committed by rename.
//! - [`s3`]: any S3-compatible object store — one multipart upload per
//!   upload, committed by CompleteMultipartUpload.

pub mod fs;
pub mod s3;

pub use fs::FsStore;
pub use s3::{S3Config, S3Store};
