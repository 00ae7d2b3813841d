//! tusk-client: a Rust client of tusk's JSON API.
//!
//! - [`hash`]: the `sha256-4m` hash of a file, computed on every core
//! - [`api`]: one method per API call, typed requests and responses
//! - [`retry`]: which failures are tried again, and how long to wait
//! - [`upload`]: one file's flow — check, send the missing chunks over
//!   several streams, complete
//! - [`batch`]: many small files in one request
//! - [`download`]: a file's content into a local file, resumable and
//!   verified against its hash

pub mod api;
pub mod batch;
pub mod download;
pub mod hash;
pub mod retry;
pub mod upload;

pub use api::{Client, ClientError, FileInfo, UploadInfo};
pub use hash::hash_file;
pub use upload::{Check, UploadError, UploadOptions, UploadReport, Uploader, upload_file};
