//! The errors of the tus door and their statuses.
//!
//! tus gives some failures statuses of their own (412 for an unsupported
//! version, 415 for a PATCH body of the wrong type, 460 for a checksum
//! mismatch, 403 for writing to a final upload, 410 for an upload that is
//! gone, 423 while another PATCH runs). Bodies are the JSON errors of the
//! rest of the API, with the same stable codes.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tusk_core::Error as CoreError;

use super::headers::VERSION;
use crate::http::error::{ApiError, core_status};

/// 460 Checksum Mismatch, defined by the tus checksum extension.
pub const CHECKSUM_MISMATCH: u16 = 460;

#[derive(Debug, thiserror::Error)]
pub enum TusError {
    #[error("this server speaks tus {VERSION}; send Tus-Resumable: {VERSION}")]
    Version,
    #[error("{name} {why}")]
    Header { name: &'static str, why: String },
    #[error("unknown checksum algorithm {0:?}; this server knows md5, sha1, sha256, sha512")]
    UnknownAlgorithm(String),
    #[error("an upload's bytes must be sent as application/offset+octet-stream")]
    ContentType,
    #[error("a final upload is made of its parts; it cannot be written to")]
    FinalUpload,
    #[error("{0}")]
    Invalid(String),
    #[error("the upload is not complete yet; there is no file to download")]
    Incomplete,
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl TusError {
    pub fn header(name: &'static str, why: impl Into<String>) -> Self {
        TusError::Header {
            name,
            why: why.into(),
        }
    }

    fn status(&self) -> StatusCode {
        use CoreError as C;
        match self {
            TusError::Version => StatusCode::PRECONDITION_FAILED,
            TusError::Header { .. } | TusError::UnknownAlgorithm(_) | TusError::Invalid(_) => {
                StatusCode::BAD_REQUEST
            }
            TusError::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            TusError::FinalUpload => StatusCode::FORBIDDEN,
            TusError::Incomplete => StatusCode::CONFLICT,
            TusError::Core(e) => match e {
                C::UploadGone(_) => StatusCode::GONE,
                C::Locked => StatusCode::LOCKED,
                C::DigestMismatch(_) => {
                    StatusCode::from_u16(CHECKSUM_MISMATCH).expect("a valid status")
                }
                C::WrongMode => StatusCode::FORBIDDEN,
                C::LengthAlreadySet(_) => StatusCode::BAD_REQUEST,
                e => core_status(e),
            },
            TusError::Api(e) => e.status_code(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            TusError::Version => "unsupported_version",
            TusError::Header { .. } => "invalid_header",
            TusError::UnknownAlgorithm(_) => "unknown_checksum_algorithm",
            TusError::ContentType => "unsupported_media_type",
            TusError::FinalUpload => "final_upload",
            TusError::Invalid(_) => "invalid_request",
            TusError::Incomplete => "upload_incomplete",
            TusError::Core(_) | TusError::Api(_) => unreachable!("rendered by ApiError"),
        }
    }
}

impl IntoResponse for TusError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = match self {
            TusError::Core(e) => ApiError::Core(e).render(status),
            TusError::Api(e) => e.render(status),
            other => {
                let body = serde_json::json!({
                    "error": { "code": other.code(), "message": other.to_string() }
                });
                (status, axum::Json(body)).into_response()
            }
        };
        if status == StatusCode::PRECONDITION_FAILED {
            response
                .headers_mut()
                .insert("tus-version", HeaderValue::from_static(VERSION));
        }
        response
    }
}
