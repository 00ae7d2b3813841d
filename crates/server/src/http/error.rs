//! The HTTP error: one status and one stable machine-readable code per
//! failure, rendered as `{"error":{"code":…,"message":…}}`.
//!
//! Internal failures (storage, database) are logged with their detail and
//! shown to clients only as `internal`; nothing internal leaks.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tusk_core::Error as CoreError;
use tusk_core::name::NameError;

/// What `Retry-After` says when an owner has too many uploads in progress:
/// by then one may well have finished.
const RETRY_AFTER_SECS: u32 = 60;

/// What `Retry-After` says when the server had no memory free for a
/// request's bytes in time: others' bytes are written within moments.
const BUSY_RETRY_AFTER_SECS: u32 = 1;

/// Everything an HTTP door can answer with instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidHash(String),
    #[error("the chunk index must be a non-negative integer")]
    InvalidChunkIndex,
    #[error("{0}")]
    InvalidDigest(String),
    #[error("the request body is too large for this endpoint")]
    RequestTooLarge,
    #[error("{0}")]
    FormTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the form holds no file")]
    NoFiles,
    #[error("the range cannot be served; the file is {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("the link is not valid or has expired")]
    InvalidLink,
    #[error(
        "this server has no tokens yet, so it answers only to loopback names and addresses \
         (it was reached as {0:?}); set --public-url to the address clients use, or create a \
         token with `tusk token create`"
    )]
    HostNotAllowed(String),
    #[error(
        "pages of {0} may not use this server while it has no tokens; list the origin with \
         --cors-origin, or create a token with `tusk token create`"
    )]
    OriginNotAllowed(String),
    #[error("no such endpoint")]
    NotFound,
    #[error("method not allowed here")]
    MethodNotAllowed,
}

impl ApiError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Core(e) => core_status(e),
            ApiError::InvalidJson(_)
            | ApiError::InvalidRequest(_)
            | ApiError::InvalidHash(_)
            | ApiError::InvalidChunkIndex
            | ApiError::InvalidDigest(_)
            | ApiError::NoFiles => StatusCode::BAD_REQUEST,
            ApiError::RequestTooLarge | ApiError::FormTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::InvalidLink | ApiError::OriginNotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::HostNotAllowed(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The stable code clients branch on.
    pub fn code(&self) -> &'static str {
        use CoreError as C;
        match self {
            ApiError::Core(e) => match e {
                C::InvalidName(NameError::Empty) => "invalid_name",
                C::InvalidName(NameError::TooLong) => "name_too_long",
                C::InvalidMime => "invalid_mime",
                C::FileTooLarge { .. } => "file_too_large",
                C::InvalidChunkSize { .. } => "invalid_chunk_size",
                C::UploadNotFound => "upload_not_found",
                C::UploadGone(_) => "upload_gone",
                C::Locked => "upload_busy",
                C::InvalidPart { .. } => "invalid_concat",
                C::InvalidTrailer(_) => "invalid_checksum_trailer",
                C::FileNotFound => "file_not_found",
                C::ChunkOutOfRange { .. } => "chunk_index_out_of_range",
                C::ChunkLength { .. } => "chunk_length_mismatch",
                C::DigestMismatch(_) | C::ChunkHashMismatch(_) => "digest_mismatch",
                C::MissingChunks(_) => "missing_chunks",
                C::HashMismatch(_) => "hash_mismatch",
                C::OffsetMismatch { .. } => "offset_mismatch",
                C::PastEnd { .. } => "past_end",
                C::WrongMode => "wrong_upload_kind",
                C::LengthUnknown => "length_unknown",
                C::LengthAlreadySet(_) => "length_already_set",
                C::Body(_) => "body_read_failed",
                C::InvalidCursor => "invalid_cursor",
                C::Contended => "conflict",
                C::StorageFull => "insufficient_storage",
                C::Unauthorized(_) => "unauthorized",
                C::Forbidden => "forbidden",
                C::InvalidOwner => "invalid_owner",
                C::QuotaExceeded { .. } => "quota_exceeded",
                C::TooManyUploads { .. } => "too_many_uploads",
                C::TooSlow => "request_timeout",
                C::Busy => "server_busy",
                C::InvalidProof { .. } => "invalid_proof",
                C::IdempotencyKeyReused => "idempotency_key_reused",
                C::Store(_) | C::Catalog(_) => "internal",
            },
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::InvalidHash(_) => "invalid_hash",
            ApiError::InvalidChunkIndex => "invalid_chunk_index",
            ApiError::InvalidDigest(_) => "invalid_digest",
            ApiError::RequestTooLarge | ApiError::FormTooLarge(_) => "request_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::NoFiles => "no_files",
            ApiError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            ApiError::InvalidLink => "invalid_link",
            ApiError::HostNotAllowed(_) => "host_not_allowed",
            ApiError::OriginNotAllowed(_) => "origin_not_allowed",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
        }
    }

    /// What the client reads: the error's own words, except for internal
    /// failures.
    fn message(&self) -> String {
        match self {
            ApiError::Core(CoreError::Store(_) | CoreError::Catalog(_)) => {
                "the server failed; try again later".to_owned()
            }
            e => e.to_string(),
        }
    }
}

/// The status of a core error in the JSON API.
pub fn core_status(e: &CoreError) -> StatusCode {
    use CoreError as C;
    match e {
        C::InvalidName(_)
        | C::InvalidMime
        | C::InvalidChunkSize { .. }
        | C::ChunkOutOfRange { .. }
        | C::ChunkLength { .. }
        | C::LengthUnknown
        | C::InvalidCursor
        | C::InvalidPart { .. }
        | C::InvalidTrailer(_)
        | C::Body(_)
        | C::InvalidOwner
        | C::InvalidProof { .. } => StatusCode::BAD_REQUEST,
        C::FileTooLarge { .. } | C::PastEnd { .. } | C::QuotaExceeded { .. } => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        C::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        C::Forbidden => StatusCode::FORBIDDEN,
        C::TooManyUploads { .. } => StatusCode::TOO_MANY_REQUESTS,
        C::TooSlow => StatusCode::REQUEST_TIMEOUT,
        C::UploadNotFound | C::FileNotFound => StatusCode::NOT_FOUND,
        C::UploadGone(_) => StatusCode::GONE,
        C::MissingChunks(_)
        | C::OffsetMismatch { .. }
        | C::WrongMode
        | C::LengthAlreadySet(_)
        | C::Locked
        | C::Contended => StatusCode::CONFLICT,
        C::DigestMismatch(_)
        | C::ChunkHashMismatch(_)
        | C::HashMismatch(_)
        | C::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        C::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        C::Busy => StatusCode::SERVICE_UNAVAILABLE,
        C::Store(_) | C::Catalog(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        self.render(status)
    }
}

impl ApiError {
    /// The error's JSON body under `status` (a door with its own status
    /// conventions, like tus, picks the status; the body stays the same).
    pub fn render(self, status: StatusCode) -> Response {
        if matches!(self, ApiError::Core(CoreError::Busy)) {
            tracing::warn!("no memory free for a request's bytes in time: answered 503");
        } else if status.is_server_error() {
            tracing::error!(error = %self, detail = ?self, "request failed");
        }
        let mut error = json!({ "code": self.code(), "message": self.message() });
        match &self {
            ApiError::Core(CoreError::MissingChunks(missing)) => error["missing"] = json!(missing),
            ApiError::Core(CoreError::FileTooLarge { max, .. }) => {
                error["max_file_size"] = json!(max)
            }
            ApiError::Core(CoreError::OffsetMismatch { current, .. }) => {
                error["offset"] = json!(current)
            }
            ApiError::Core(CoreError::UploadGone(reason)) => {
                error["reason"] = json!(reason.as_str())
            }
            ApiError::Core(CoreError::QuotaExceeded { quota, used }) => {
                error["quota"] = json!(quota);
                error["used"] = json!(used);
            }
            _ => {}
        }
        let mut response = (status, axum::Json(json!({ "error": error }))).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Core(CoreError::Unauthorized(_)) => {
                headers.insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tusk\""),
                );
            }
            ApiError::Core(CoreError::TooManyUploads { .. }) => {
                headers.insert(
                    axum::http::header::RETRY_AFTER,
                    HeaderValue::from(RETRY_AFTER_SECS),
                );
            }
            ApiError::Core(CoreError::Busy) => {
                headers.insert(
                    axum::http::header::RETRY_AFTER,
                    HeaderValue::from(BUSY_RETRY_AFTER_SECS),
                );
            }
            // A client that sends too slowly is not kept on the line.
            ApiError::Core(CoreError::TooSlow) => {
                headers.insert(
                    axum::http::header::CONNECTION,
                    HeaderValue::from_static("close"),
                );
            }
            _ => {}
        }
        if let ApiError::RangeNotSatisfiable { size } = self {
            response.headers_mut().insert(
                axum::http::header::CONTENT_RANGE,
                format!("bytes */{size}").parse().expect("valid header"),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
