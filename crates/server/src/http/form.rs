//! `multipart/form-data`: small files in one request (`POST /api/v1/files`)
//! and chunks sent by form-based uploaders.
//!
//! Parts are streamed straight into the core as they arrive; nothing is
//! buffered beyond what the multipart parser holds.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde_json::json;
use tusk_core::model::FileRecord;
use tusk_core::store::ByteStream;

use super::error::{ApiError, ApiResult};
use super::request::stream;
use super::views::FileView;
use super::{AppState, Caller};

/// The boundary of a `multipart/form-data` body; `None` for other bodies.
pub fn boundary(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    if !ct
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Ok(None);
    }
    multer::parse_boundary(ct)
        .map(Some)
        .map_err(|_| ApiError::UnsupportedMediaType("multipart/form-data needs a boundary".into()))
}

fn bad_form(e: multer::Error) -> ApiError {
    ApiError::InvalidRequest(format!("malformed multipart body: {e}"))
}

/// A part that carries a file. An empty `filename` is what browsers send
/// for a file input with nothing chosen: no file.
fn is_file(field: &multer::Field<'_>) -> bool {
    match field.file_name() {
        Some(name) => !name.is_empty(),
        None => field.name() == Some("file"),
    }
}

/// The bytes of the first file part; the rest of the body is read and
/// dropped after it.
pub async fn single_file(body: Body, boundary: String) -> ApiResult<ByteStream> {
    let mut form = multer::Multipart::new(stream(body), boundary);
    loop {
        let Some(mut field) = form.next_field().await.map_err(bad_form)? else {
            return Err(ApiError::NoFiles);
        };
        if !is_file(&field) {
            while field.chunk().await.map_err(bad_form)?.is_some() {}
            continue;
        }
        let parts =
            futures::stream::unfold((Some(field), Some(form)), |(field, form)| async move {
                if let Some(mut field) = field {
                    match field.chunk().await {
                        Ok(Some(bytes)) => return Some((Ok(bytes), (Some(field), form))),
                        Ok(None) => {}
                        Err(e) => return Some((Err(std::io::Error::other(e)), (None, None))),
                    }
                }
                if let Some(mut form) = form {
                    while let Ok(Some(mut rest)) = form.next_field().await {
                        while let Ok(Some(_)) = rest.chunk().await {}
                    }
                }
                None
            });
        return Ok(Box::pin(parts));
    }
}

/// `POST /api/v1/files`: every file part becomes a file. If any part fails,
/// the files already stored by this request are deleted again.
pub async fn upload_files(
    State(app): State<AppState>,
    Caller(owner): Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let boundary = boundary(&headers)?
        .ok_or_else(|| ApiError::UnsupportedMediaType("send multipart/form-data".into()))?;
    let mut form = multer::Multipart::new(stream(body), boundary);
    let mut stored: Vec<FileRecord> = Vec::new();
    let result: ApiResult<()> = async {
        while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
            if !is_file(&field) {
                while field.chunk().await.map_err(bad_form)?.is_some() {}
                continue;
            }
            // Browsers escape `"` in file names as %22 (HTML's form encoding).
            let name = field
                .file_name()
                .or(field.name())
                .unwrap_or_default()
                .replace("%22", "\"");
            // Many clients label every part octet-stream: guess from the name then.
            let mime = field
                .content_type()
                .map(|m| m.to_string())
                .filter(|m| m != "application/octet-stream");
            let bytes: ByteStream = Box::pin(field.map_err(std::io::Error::other));
            stored.push(
                app.service
                    .store_stream(&owner, &name, mime.as_deref(), bytes)
                    .await?,
            );
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        for file in &stored {
            if let Err(cleanup) = app.service.delete_file(&owner, &file.id).await {
                tracing::warn!(file = %file.id, error = %cleanup, "could not roll back a form file");
            }
        }
        return Err(e);
    }
    if stored.is_empty() {
        return Err(ApiError::NoFiles);
    }
    let files: Vec<FileView> = stored.iter().map(FileView::from).collect();
    Ok((StatusCode::CREATED, Json(json!({ "files": files }))).into_response())
}
