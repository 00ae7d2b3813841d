//! Turning the raw parts of requests into typed values: JSON bodies, body
//! streams, `Content-Length`, RFC 9530 `Content-Digest`.

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use base64::Engine;
use futures::TryStreamExt;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use tusk_core::checksum::{Algorithm, Checksum};
use tusk_core::store::ByteStream;

use super::error::{ApiError, ApiResult};

/// A query string parsed into `T`; a bad one is `invalid_request`.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::try_from_uri(&parts.uri)
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::InvalidRequest(format!("bad query string: {}", e.body_text())))
    }
}

/// The largest JSON request body accepted.
const MAX_JSON: usize = 64 * 1024;

/// Reads a small JSON body into `T`. Broken JSON is `invalid_json`; JSON of
/// the wrong shape is `invalid_request`, naming the field.
pub async fn json<T: DeserializeOwned>(body: Body) -> ApiResult<T> {
    let bytes = http_body_util::Limited::new(body, MAX_JSON)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::RequestTooLarge
            } else if tusk_core::error::too_slow(&*e) {
                ApiError::Core(tusk_core::Error::TooSlow)
            } else {
                ApiError::InvalidJson(format!("the body could not be read: {e}"))
            }
        })?
        .to_bytes();
    // Syntax first, then shape: broken JSON is never reported as a field error.
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    let value = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        ApiError::InvalidRequest(if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        })
    })?;
    Ok(value)
}

/// A request body as the core reads it.
pub fn stream(body: Body) -> ByteStream {
    Box::pin(TryStreamExt::map_err(
        body.into_data_stream(),
        std::io::Error::other,
    ))
}

/// The announced body length, if any.
pub fn content_length(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    headers
        .get(CONTENT_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| ApiError::InvalidRequest("Content-Length is not a number".into()))
        })
        .transpose()
}

fn malformed(why: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidDigest(format!("Content-Digest is malformed: {why}"))
}

/// The digests of RFC 9530 `Content-Digest` this server checks (`sha-256`,
/// `sha-512`); other algorithms are ignored, as the RFC allows.
pub fn content_digest(headers: &HeaderMap) -> ApiResult<Vec<Checksum>> {
    let mut checks = Vec::new();
    for value in headers.get_all("content-digest") {
        let text = value.to_str().map_err(|_| malformed("not ASCII"))?;
        let dict: sfv::Dictionary = sfv::Parser::new(text).parse().map_err(malformed)?;
        for (key, entry) in dict {
            let algorithm = match key.as_str() {
                "sha-256" => Algorithm::Sha256,
                "sha-512" => Algorithm::Sha512,
                _ => continue,
            };
            let bytes = match entry {
                sfv::ListEntry::Item(item) => item.bare_item.as_byte_sequence().map(<[u8]>::to_vec),
                sfv::ListEntry::InnerList(_) => None,
            }
            .ok_or_else(|| malformed(format!("{} must be a byte sequence", key.as_str())))?;
            let check = Checksum::new(algorithm, bytes)
                .ok_or_else(|| malformed(format!("{} has the wrong length", key.as_str())))?;
            checks.push(check);
        }
    }
    Ok(checks)
}

/// The longest `Idempotency-Key` taken.
const KEY_MAX: usize = 255;

/// The `Idempotency-Key` header (draft-ietf-httpapi-idempotency-key-header):
/// a structured-field string, e.g. `"8e03978e-40d5-43e8"` (a bare token is
/// taken too), of 1 to 255 characters.
pub fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::InvalidRequest(format!(
            "Idempotency-Key must be a quoted string of 1 to {KEY_MAX} characters"
        ))
    };
    let text = value.to_str().map_err(|_| bad())?;
    let item: sfv::Item = sfv::Parser::new(text).parse().map_err(|_| bad())?;
    let key = match (item.bare_item.as_string(), item.bare_item.as_token()) {
        (Some(s), _) => s.as_str(),
        (_, Some(t)) => t.as_str(),
        _ => return Err(bad()),
    };
    if key.is_empty() || key.len() > KEY_MAX {
        return Err(bad());
    }
    Ok(Some(key.to_owned()))
}

/// The `Chunk-Hash` header: the chunk's own `sha256-4m` hash.
pub fn chunk_hash(headers: &HeaderMap) -> ApiResult<Option<tusk_core::ContentHash>> {
    headers
        .get("chunk-hash")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| {
                    ApiError::InvalidDigest("Chunk-Hash must be sha256-4m:<64 hex digits>".into())
                })
        })
        .transpose()
}

/// Renders a `Content-Digest` value (for responses and clients).
pub fn render_sha256_digest(digest: &[u8]) -> String {
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(digest: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-digest", digest.parse().unwrap());
        h
    }

    #[test]
    fn content_digest_parses() {
        let d = [7u8; 32];
        let got = content_digest(&headers(&render_sha256_digest(&d))).unwrap();
        assert_eq!(
            got,
            vec![Checksum::new(Algorithm::Sha256, d.to_vec()).unwrap()]
        );
        // Unknown algorithms are ignored; known ones are still checked.
        let both = format!(
            "md5=:AAAAAAAAAAAAAAAAAAAAAA==:, {}",
            render_sha256_digest(&d)
        );
        assert_eq!(content_digest(&headers(&both)).unwrap().len(), 1);
        assert!(content_digest(&HeaderMap::new()).unwrap().is_empty());
        for bad in [
            "sha-256=abc",
            "sha-256=:AAAA:",
            "sha-256",
            "=:x:",
            "sha-256=:%%%:",
        ] {
            assert!(content_digest(&headers(bad)).is_err(), "{bad}");
        }
    }
}
