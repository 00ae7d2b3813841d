//! tusk-client: a Rust client of tusk's JSON API.
//!
//! - [`hash`]: the `sha256-4m` hash of a file, computed on every core
//! - [`api`]: one method per API call, typed requests and responses
//! - [`upload`]: the whole flow for one file — hash, check, send the
//!   missing chunks over several streams, complete

pub mod api;
pub mod hash;
pub mod upload;

pub use api::{Client, ClientError, FileInfo, UploadInfo};
pub use hash::hash_file;
pub use upload::{Check, UploadOptions, UploadReport, upload_file};
