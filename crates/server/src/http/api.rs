//! The JSON chunk API (`/api/v1/uploads`): check, chunks, complete.
//!
//! Each handler parses its request into typed values, calls the core once,
//! and renders the result. No rule lives here.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tusk_core::hash::parse_hex32;
use tusk_core::model::{Claims, FileId, Upload, UploadId};
use tusk_core::service::{ChunkPut, CreateOutcome, NewUpload, ProofOutcome};
use tusk_core::{ContentHash, Error as CoreError};

use super::error::{ApiError, ApiResult};
use super::form;
use super::request::{
    Path, chunk_hash, content_digest, content_length, idempotency_key, json, stream,
};
use super::views::{FileView, UploadView};
use super::{AppState, Caller};
use crate::metrics::{ChunkTimer, INSTANT_UPLOADS, UPLOADS_CREATED};

/// The body of `POST /api/v1/uploads`.
#[derive(Deserialize)]
struct CreateBody {
    name: String,
    size: u64,
    hash: String,
    md5: Option<String>,
    sha256: Option<String>,
    mime: Option<String>,
    chunk_size: Option<u64>,
}

impl CreateBody {
    /// The core's request; `file_id` names the file an instant upload
    /// records (from the request's idempotency key).
    fn into_request(self, file_id: Option<FileId>) -> ApiResult<NewUpload> {
        let hash = self
            .hash
            .parse::<ContentHash>()
            .map_err(|e| ApiError::InvalidHash(format!("hash: {e}")))?;
        let md5 = self
            .md5
            .map(|s| {
                let mut out = [0u8; 16];
                (s.len() == 32 && hex::decode_to_slice(&s, &mut out).is_ok())
                    .then_some(out)
                    .ok_or_else(|| ApiError::InvalidHash("md5: expected 32 hex digits".into()))
            })
            .transpose()?;
        let sha256 = self
            .sha256
            .map(|s| {
                parse_hex32(&s)
                    .ok_or_else(|| ApiError::InvalidHash("sha256: expected 64 hex digits".into()))
            })
            .transpose()?;
        Ok(NewUpload {
            name: self.name,
            size: self.size,
            claims: Claims {
                hash: Some(hash),
                md5,
                sha256,
            },
            mime: self.mime,
            chunk_size: self.chunk_size,
            file_id,
        })
    }
}

fn upload_id(raw: &str) -> ApiResult<UploadId> {
    UploadId::parse(raw).ok_or(ApiError::Core(CoreError::UploadNotFound))
}

/// `POST /api/v1/uploads`: instant upload, resume, or a new upload. With
/// an `Idempotency-Key`, a repeated check answers with the file an earlier
/// one recorded instead of recording another.
pub async fn create(
    State(app): State<AppState>,
    Caller(owner): Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let file_id = idempotency_key(&headers)?.map(|key| FileId::for_request(&owner, &key, 0));
    let req = json::<CreateBody>(body).await?.into_request(file_id)?;
    let outcome = app.service.create(&owner, req).await?;
    match &outcome {
        CreateOutcome::Instant(_) => metrics::counter!(INSTANT_UPLOADS).increment(1),
        CreateOutcome::Created(_) => metrics::counter!(UPLOADS_CREATED).increment(1),
        CreateOutcome::Resumed(_) => {}
    }
    Ok(match outcome {
        CreateOutcome::Instant(file) => (
            StatusCode::OK,
            Json(json!({ "status": "complete", "file": FileView::of(&app, &file).await? })),
        )
            .into_response(),
        CreateOutcome::Resumed(upload) => {
            (StatusCode::OK, uploading(&app, &upload).await?).into_response()
        }
        CreateOutcome::Created(upload) => {
            (StatusCode::CREATED, uploading(&app, &upload).await?).into_response()
        }
    })
}

/// An upload to send chunks to, with the challenge that may spare sending
/// them (see `POST /api/v1/uploads/{id}/proof`).
async fn uploading(app: &AppState, upload: &Upload) -> ApiResult<Json<serde_json::Value>> {
    let challenge = app.service.challenge(upload).await?;
    Ok(Json(json!({
        "status": "uploading",
        "upload": UploadView::from(upload),
        "challenge": {
            "nonce": hex::encode(challenge.nonce),
            "blocks": challenge.blocks,
        },
    })))
}

/// The body of `POST /api/v1/uploads/{id}/proof`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofBody {
    /// SHA-256(nonce ‖ block), hex, for each block of the challenge.
    digests: Vec<String>,
}

/// `POST /api/v1/uploads/{id}/proof`: proves holding the content; the
/// file is recorded at once if the proof holds, else the upload goes on.
/// The check's `Idempotency-Key` names the file, as for an instant upload.
pub async fn prove(
    State(app): State<AppState>,
    Caller(owner): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let id = upload_id(&id)?;
    let file_id = idempotency_key(&headers)?.map(|key| FileId::for_request(&owner, &key, 0));
    let proof = json::<ProofBody>(body).await?;
    let digests = proof
        .digests
        .iter()
        .map(|d| {
            parse_hex32(d)
                .ok_or_else(|| ApiError::InvalidDigest("digests: each is 64 hex digits".into()))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(
        match app.service.prove(&owner, &id, &digests, file_id).await? {
            ProofOutcome::Instant(file) => Json(json!({
                "status": "complete",
                "file": FileView::of(&app, &file).await?,
            }))
            .into_response(),
            ProofOutcome::Upload(upload) => uploading(&app, &upload).await?.into_response(),
        },
    )
}

/// `GET /api/v1/uploads/{id}`.
pub async fn show(
    State(app): State<AppState>,
    Caller(owner): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let upload = app.service.get_upload(&owner, &upload_id(&id)?).await?;
    Ok(Json(json!({ "upload": UploadView::from(&upload) })).into_response())
}

/// `DELETE /api/v1/uploads/{id}`.
pub async fn delete(
    State(app): State<AppState>,
    Caller(owner): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.service.delete_upload(&owner, &upload_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/uploads/{id}/chunks/{index}`: the chunk's bytes, raw or as
/// the one file part of a `multipart/form-data` body.
pub async fn put_chunk(
    State(app): State<AppState>,
    Caller(owner): Caller,
    Path((id, index)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let _timer = ChunkTimer::start("api");
    let id = upload_id(&id)?;
    let index: u64 = index.parse().map_err(|_| ApiError::InvalidChunkIndex)?;
    let checks = content_digest(&headers)?;
    let hash = chunk_hash(&headers)?;
    let put = match form::boundary(&headers)? {
        Some(boundary) => {
            let part = form::single_file(body, boundary).await?;
            ChunkPut {
                index,
                declared_len: None,
                checks,
                hash,
                body: part,
            }
        }
        None => ChunkPut {
            index,
            declared_len: content_length(&headers)?,
            checks,
            hash,
            body: stream(body),
        },
    };
    let upload = app.service.put_chunk(&owner, &id, put).await?;
    Ok(Json(json!({ "upload": UploadView::from(&upload) })).into_response())
}

/// `POST /api/v1/uploads/{id}/complete`.
pub async fn complete(
    State(app): State<AppState>,
    Caller(owner): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let file = app.service.complete(&owner, &upload_id(&id)?).await?;
    Ok(Json(json!({ "file": FileView::of(&app, &file).await? })).into_response())
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    /// Claims of every shape, biased towards hex of about the right length.
    fn claim() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "(sha256-4m:)?[0-9a-fA-Fg]{30,66}",
            "[0-9a-f]{32}|[0-9a-f]{64}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Any claims: a request with exactly the claims sent, or
        /// `invalid_hash`.
        #[test]
        fn claims_parse_or_are_refused(
            hash in claim(),
            md5 in prop::option::of(claim()),
            sha256 in prop::option::of(claim()),
            size in any::<u64>(),
        ) {
            let body = CreateBody {
                name: "a".into(),
                size,
                hash: hash.clone(),
                md5: md5.clone(),
                sha256: sha256.clone(),
                mime: None,
                chunk_size: None,
            };
            let hex = |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
            let good = hash.parse::<ContentHash>().is_ok()
                && md5.as_deref().is_none_or(|m| hex(m, 32))
                && sha256.as_deref().is_none_or(|s| hex(s, 64));
            match body.into_request(None) {
                Ok(req) => {
                    prop_assert!(good);
                    prop_assert_eq!(req.size, size);
                    prop_assert_eq!(req.claims.hash.map(|h| h.to_string()), Some(hash.to_ascii_lowercase()));
                    prop_assert_eq!(req.claims.md5.map(hex::encode), md5.map(|m| m.to_ascii_lowercase()));
                    prop_assert_eq!(req.claims.sha256.map(hex::encode), sha256.map(|s| s.to_ascii_lowercase()));
                }
                Err(e) => {
                    prop_assert!(!good);
                    prop_assert_eq!(e.code(), "invalid_hash");
                }
            }
        }
    }
}
