//! Errors of the upload service: every way a request can be refused or fail.
//!
//! Client mistakes are first-class variants so that each door (JSON API,
//! tus, form) can map them to its own status codes; backend failures are
//! wrapped and never shown to clients verbatim.

use crate::catalog::CatalogError;
use crate::checksum::Algorithm;
use crate::model::EndReason;
use crate::name::NameError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidName(#[from] NameError),
    #[error("the media type is not valid")]
    InvalidMime,
    #[error("the file is larger than this server takes ({max} bytes at most)")]
    FileTooLarge { max: u64 },
    #[error("chunk_size must be a positive multiple of 4 MiB (4194304 bytes), at most {max}")]
    InvalidChunkSize { max: u64 },
    #[error("no such upload")]
    UploadNotFound,
    #[error("the upload is gone ({})", .0.as_str())]
    UploadGone(EndReason),
    #[error("another request is writing to this upload; ask for its offset and retry")]
    Locked,
    #[error("upload {part} cannot be concatenated: {why}")]
    InvalidPart { part: String, why: &'static str },
    #[error("the checksum trailer is missing or malformed: {0}")]
    InvalidTrailer(String),
    #[error("no such file")]
    FileNotFound,
    #[error("chunk {index} does not exist; this upload has {count} chunks, numbered from 0")]
    ChunkOutOfRange { index: u64, count: u32 },
    #[error("chunk {index} is {expected} bytes long, not {got}")]
    ChunkLength { index: u32, expected: u64, got: u64 },
    #[error("the body does not match its {}", algorithm_list(.0))]
    DigestMismatch(Vec<Algorithm>),
    #[error("chunk {0} does not match its sha256-4m hash")]
    ChunkHashMismatch(u32),
    #[error("chunks are missing")]
    MissingChunks(Vec<u32>),
    #[error("the content does not match the claimed {0}")]
    HashMismatch(&'static str),
    #[error("the upload is at offset {current}, not {given}")]
    OffsetMismatch { current: u64, given: u64 },
    #[error("the body runs past the upload's length of {size} bytes")]
    PastEnd { size: u64 },
    #[error("this operation does not apply to this kind of upload")]
    WrongMode,
    #[error("the upload's length is not known yet")]
    LengthUnknown,
    #[error("the length was already set to {0}")]
    LengthAlreadySet(u64),
    #[error("reading the request body failed: {0}")]
    Body(#[source] std::io::Error),
    #[error("the server is out of storage space")]
    StorageFull,
    #[error("the upload changed while this request ran; ask for its state and retry")]
    Contended,
    #[error("the listing cursor is not one this server handed out")]
    InvalidCursor,
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("this needs an admin token")]
    Forbidden,
    #[error("an owner name is 1 to 64 letters, digits, '.', '_', '-' or '@'")]
    InvalidOwner,
    #[error("the owner's quota of {quota} bytes would be exceeded ({used} bytes in use)")]
    QuotaExceeded { quota: u64, used: u64 },
    #[error("too many uploads in progress ({max} at most per owner); finish or delete some first")]
    TooManyUploads { max: u32 },
    #[error("the request body arrived too slowly")]
    TooSlow,
    /// The server's memory for bytes in flight stayed taken for longer than
    /// a request may wait for it; worth retrying.
    #[error("the server is busy receiving other uploads; try again shortly")]
    Busy,
    #[error("a proof needs {expected} block digests, in the order of the challenge")]
    InvalidProof { expected: usize },
    #[error("this idempotency key belongs to an earlier request that recorded other files")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Catalog(CatalogError),
}

/// What a request body fails with when it arrives too slowly (the doors
/// pace every body). A body read error with this among its sources is
/// [`Error::TooSlow`].
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
pub struct BodyTooSlow;

impl Error {
    /// The error of a request body that failed to read.
    pub fn from_body(e: std::io::Error) -> Error {
        // An io::Error hides what it wraps from `source()`.
        if e.get_ref().is_some_and(|inner| too_slow(inner)) || too_slow(&e) {
            Error::TooSlow
        } else {
            Error::Body(e)
        }
    }
}

/// Whether `e` or one of its sources is [`BodyTooSlow`].
pub fn too_slow(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.is::<BodyTooSlow>() {
            return true;
        }
        next = e.source();
    }
    false
}

fn algorithm_list(algs: &[Algorithm]) -> String {
    let names: Vec<&str> = algs.iter().map(|a| a.name()).collect();
    format!("{} digest", names.join(", "))
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Full => Error::StorageFull,
            e => Error::Store(e),
        }
    }
}

impl From<CatalogError> for Error {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::InvalidCursor => Error::InvalidCursor,
            CatalogError::OffsetConflict => Error::Contended,
            e => Error::Catalog(e),
        }
    }
}

impl Error {
    /// A store's "not found" for something the catalog named a moment ago
    /// means it was deleted meanwhile: the client's `gone` error, not a
    /// server failure.
    pub(crate) fn gone(gone: Error) -> impl FnOnce(StoreError) -> Error {
        move |e| match e {
            StoreError::NotFound => gone,
            e => e.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
