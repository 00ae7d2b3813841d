//! `multipart/form-data`: small files in one request (`POST /api/v1/files`)
//! and chunks sent by form-based uploaders.
//!
//! A file part of at most `SMALL_FILE` (1 MiB) is held in memory and stored
//! with the small files around it in one batch (one round of syncs, one
//! catalog transaction); a longer part is streamed straight into the core
//! as it arrives. A request holds at most `BATCH_BYTES` (16 MiB) of small
//! files plus what the multipart parser holds, which [`super::multipart`]
//! bounds.

use std::io;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use tusk_core::model::{FileId, FileRecord, Owner};
use tusk_core::service::SmallFile;
use tusk_core::store::ByteStream;

use super::error::{ApiError, ApiResult};
use super::multipart::Form;
use super::request::idempotency_key;
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
    let mut form = Form::new(body, boundary);
    loop {
        let Some(mut field) = form.next_field().await? else {
            return Err(ApiError::NoFiles);
        };
        if !is_file(&field) {
            form.skip(&mut field).await?;
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
                        if form.skip(&mut rest).await.is_err() {
                            break;
                        }
                    }
                }
                None
            });
        return Ok(Box::pin(parts));
    }
}

/// A file part is held in memory, to be stored in one batch with other small
/// files, while it is at most this long (1 MiB). Stored one by one, small
/// files would each pay for a whole upload (several syncs and catalog
/// transactions); in a batch they share them. Longer parts gain little from
/// that and are streamed instead, so memory stays bounded whatever the size
/// of the files.
const SMALL_FILE: usize = 1 << 20;

/// Most bytes of small files a request holds before it stores them (16 MiB).
const BATCH_BYTES: usize = 16 << 20;

/// Most small files stored in one batch, which bounds the catalog
/// transaction of a form of many tiny files.
const BATCH_FILES: usize = 1000;

/// `POST /api/v1/files`: every file part becomes a file. If any part fails,
/// the files already stored by this request are deleted again. With an
/// `Idempotency-Key`, each small file's id comes from the key and its
/// position, so that a repeat of the request answers with the files it
/// recorded (see the core's `replay`).
pub async fn upload_files(
    State(app): State<AppState>,
    Caller(owner): Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let boundary = boundary(&headers)?
        .ok_or_else(|| ApiError::UnsupportedMediaType("send multipart/form-data".into()))?;
    let key = idempotency_key(&headers)?;
    let mut form = Form::new(body, boundary);
    let limits = app.service.limits();
    // A part longer than the largest file is streamed, to be refused the
    // moment it passes the limit, as any stream is.
    let small = SMALL_FILE.min(usize::try_from(limits.max_file_size).unwrap_or(usize::MAX));
    let idle = limits.body_idle_timeout;
    let mut files = Files::default();
    let result: ApiResult<()> = async {
        let mut index = 0;
        while let Some(mut field) = form.next_field().await? {
            if !is_file(&field) {
                form.skip(&mut field).await?;
                continue;
            }
            let id = key
                .as_deref()
                .map(|key| FileId::for_request(&owner, key, index));
            index += 1;
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
            // Refused before its bytes are read, as for any upload.
            let label = app.service.label(&name, mime.as_deref())?;
            match read_part(&mut field, small, idle).await? {
                Part::Small(bytes) => {
                    let file = SmallFile { label, bytes, id };
                    files.add(&app, &owner, file).await?
                }
                Part::Large(head) => {
                    // Stored after the small files before it: order is kept.
                    files.flush(&app, &owner).await?;
                    let bytes: ByteStream = Box::pin(
                        futures::stream::iter(head.into_iter().map(Ok))
                            .chain(field.map_err(io::Error::other)),
                    );
                    let file = app.service.store_stream(&owner, &label, bytes).await?;
                    files.stored.push(file);
                }
            }
        }
        files.flush(&app, &owner).await
    }
    .await;
    let stored = files.stored;
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
    let files = FileView::all(&app, &stored).await?;
    Ok((StatusCode::CREATED, Json(json!({ "files": files }))).into_response())
}

/// The files of one form post: small ones waiting to be stored together,
/// and those stored, in the order of their parts.
#[derive(Default)]
struct Files {
    pending: Vec<SmallFile>,
    pending_bytes: usize,
    stored: Vec<FileRecord>,
}

impl Files {
    /// Queues a small file, storing the queue first if it is full.
    async fn add(&mut self, app: &AppState, owner: &Owner, file: SmallFile) -> ApiResult<()> {
        if self.pending.len() >= BATCH_FILES || self.pending_bytes + file.bytes.len() > BATCH_BYTES
        {
            self.flush(app, owner).await?;
        }
        self.pending_bytes += file.bytes.len();
        self.pending.push(file);
        Ok(())
    }

    /// Stores the small files queued, all or none.
    async fn flush(&mut self, app: &AppState, owner: &Owner) -> ApiResult<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let stored = app.service.store_small(owner, batch).await?;
        self.stored.extend(stored);
        Ok(())
    }
}

/// A file part, read as far as needed to know whether it is small.
enum Part {
    /// All its bytes: it ended within the small limit.
    Small(Bytes),
    /// Its first bytes, past the small limit; the rest is still to come.
    Large(Vec<Bytes>),
}

/// Reads a part until it ends or passes `small` bytes. A read failure or
/// `idle` without bytes is the body error an upload would report.
async fn read_part(
    field: &mut multer::Field<'static>,
    small: usize,
    idle: Duration,
) -> ApiResult<Part> {
    let mut frames = Vec::new();
    let mut len = 0;
    loop {
        let frame = match tokio::time::timeout(idle, field.chunk()).await {
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(body_failed(io::Error::other(e))),
            Err(_) => {
                return Err(body_failed(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no bytes arrived for {} s", idle.as_secs()),
                )));
            }
        };
        len += frame.len();
        frames.push(frame);
        if len > small {
            return Ok(Part::Large(frames));
        }
    }
    // One buffer of its own: the frames may be slices of larger ones.
    let mut bytes = BytesMut::with_capacity(len);
    for frame in frames {
        bytes.extend_from_slice(&frame);
    }
    Ok(Part::Small(bytes.freeze()))
}

fn body_failed(e: io::Error) -> ApiError {
    ApiError::Core(tusk_core::Error::from_body(e))
}
