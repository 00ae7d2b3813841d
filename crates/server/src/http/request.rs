//! Turning the raw parts of requests into typed values: path parameters,
//! query strings, JSON bodies, body streams, `Content-Length`, RFC 9530
//! `Content-Digest`.

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

/// Path parameters parsed into `T`. A segment that is not UTF-8 once
/// percent-decoded (`/files/%FF`) is `invalid_request`, in the JSON shape
/// of every other error.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::InvalidRequest(format!("bad path: {}", e.body_text())))
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
    mod props {
        use axum::http::HeaderValue;
        use base64::engine::general_purpose::STANDARD;
        use proptest::prelude::*;
        use serde_json::Value;

        use super::super::*;

        /// Any bytes a header value can hold, biased towards the pieces of
        /// structured fields.
        fn value() -> impl Strategy<Value = HeaderValue> {
            let word = prop_oneof![
                Just(b"sha-256=".to_vec()),
                Just(b"sha-512=".to_vec()),
                Just(b":".to_vec()),
                Just(b", ".to_vec()),
                Just(b";".to_vec()),
                Just(b"(".to_vec()),
                Just(b")".to_vec()),
                Just(b"\"".to_vec()),
                Just(b"sha256-4m:".to_vec()),
                "[A-Za-z0-9+/=]{0,16}".prop_map(String::into_bytes),
                "[0-9a-f]{0,70}".prop_map(String::into_bytes),
                prop::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..8),
            ];
            prop::collection::vec(word, 0..12)
                .prop_map(|w| HeaderValue::from_bytes(&w.concat()).expect("no control bytes"))
        }

        fn headers(name: &'static str, values: Vec<HeaderValue>) -> HeaderMap {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(name, v);
            }
            h
        }

        /// JSON values of every kind, nested a few levels.
        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(Value::from),
                any::<String>().prop_map(Value::String),
            ];
            leaf.prop_recursive(3, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::vec((any::<String>(), inner), 0..6)
                        .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                ]
            })
        }

        fn read_json(body: Vec<u8>) -> ApiResult<Value> {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime")
                .block_on(json::<Value>(Body::from(body)))
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 512,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            /// No header value panics a parser; what fails is a client
            /// error of the header's own kind.
            #[test]
            fn any_value_is_parsed_or_refused(values in prop::collection::vec(value(), 0..3)) {
                match content_digest(&headers("content-digest", values.clone())) {
                    Ok(checks) => {
                        for c in checks {
                            prop_assert_eq!(c.digest.len(), c.algorithm.digest_len());
                        }
                    }
                    Err(e) => prop_assert_eq!(e.code(), "invalid_digest"),
                }
                if let Err(e) = chunk_hash(&headers("chunk-hash", values.clone())) {
                    prop_assert_eq!(e.code(), "invalid_digest");
                }
                if let Err(e) = content_length(&headers("content-length", values)) {
                    prop_assert_eq!(e.code(), "invalid_request");
                }
            }

            /// A `Content-Digest` dictionary gives exactly its `sha-256`
            /// and `sha-512` members, in order, whatever else it holds; a
            /// member of the wrong length is refused.
            #[test]
            fn content_digest_reads_its_members(
                members in prop::collection::btree_map(
                    prop_oneof![
                        Just("sha-256".to_owned()),
                        Just("sha-512".to_owned()),
                        "[a-z][a-z0-9_*.-]{0,10}",
                    ],
                    prop_oneof![
                        any::<[u8; 32]>().prop_map(|d| d.to_vec()),
                        any::<[u8; 64]>().prop_map(|d| d.to_vec()),
                        prop::collection::vec(any::<u8>(), 0..80),
                    ],
                    0..5,
                ),
            ) {
                let text = members
                    .iter()
                    .map(|(k, v)| format!("{k}=:{}:", STANDARD.encode(v)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let got = content_digest(&headers("content-digest", vec![HeaderValue::from_str(&text).unwrap()]));
                let mut want = Vec::new();
                let mut wrong_length = false;
                for (k, v) in &members {
                    let algorithm = match k.as_str() {
                        "sha-256" => Algorithm::Sha256,
                        "sha-512" => Algorithm::Sha512,
                        _ => continue,
                    };
                    match Checksum::new(algorithm, v.clone()) {
                        Some(c) => want.push(c),
                        None => wrong_length = true,
                    }
                }
                if wrong_length {
                    prop_assert_eq!(got.map_err(|e| e.code()), Err("invalid_digest"));
                } else {
                    prop_assert_eq!(got.map_err(|e| e.to_string()), Ok(want));
                }
            }

            #[test]
            fn digests_and_hashes_round_trip(digest in any::<[u8; 32]>(), n in any::<u64>()) {
                let v = |s: String| vec![HeaderValue::from_str(&s).unwrap()];
                prop_assert_eq!(
                    content_digest(&headers("content-digest", v(render_sha256_digest(&digest)))).unwrap(),
                    vec![Checksum::new(Algorithm::Sha256, digest.to_vec()).unwrap()]
                );
                let hash = tusk_core::ContentHash(digest);
                prop_assert_eq!(chunk_hash(&headers("chunk-hash", v(hash.to_string()))).unwrap(), Some(hash));
                prop_assert_eq!(content_length(&headers("content-length", v(n.to_string()))).unwrap(), Some(n));
            }

            /// Any body: JSON that reads back as sent, or `invalid_json`.
            #[test]
            fn json_bodies_read_back_or_are_refused(
                body in prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..200),
                    json_value().prop_map(|v| v.to_string().into_bytes()),
                ],
            ) {
                let parsed = serde_json::from_slice::<Value>(&body);
                match read_json(body) {
                    Ok(v) => prop_assert_eq!(Some(v), parsed.ok()),
                    Err(e) => {
                        prop_assert!(parsed.is_err());
                        prop_assert_eq!(e.code(), "invalid_json");
                    }
                }
            }
        }
    }
}
