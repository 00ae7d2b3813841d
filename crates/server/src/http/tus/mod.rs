//! The tus 1.0.0 door: `POST /tus/` creates an upload, `/tus/{id}` is the
//! upload (HEAD, PATCH, DELETE; GET redirects to the finished file).
//!
//! Extensions: creation, creation-with-upload, creation-defer-length,
//! termination, checksum, checksum-trailer, expiration, concatenation and
//! concatenation-unfinished. A tus upload is an append upload of the core,
//! so it becomes a file like any other once its last byte arrives.
//!
//! - [`headers`]: parsing the tus request headers
//! - [`body`]: PATCH bodies and their trailers
//! - [`error`]: tus statuses for every failure

pub mod body;
pub mod error;
pub mod headers;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, LOCATION};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use tusk_core::Error as CoreError;
use tusk_core::checksum::Algorithm;
use tusk_core::model::{Concat, EndReason, Owner, Upload, UploadId, UploadMode};
use tusk_core::service::{AppendOutcome, Checks, NewAppendUpload, NewFinalUpload};

use super::error::ApiError;
use super::request::{Path, content_length};
use super::views::download_path;
use super::{AppState, Caller};
use crate::metrics::{ChunkTimer, UPLOADS_CREATED};
use error::TusError;
use headers::{Metadata, VERSION};

type TusResult<T> = Result<T, TusError>;

/// How long HEAD waits for a PATCH in flight to finish.
const HEAD_PATIENCE: Duration = Duration::from_secs(10);

/// The name a file gets when its metadata names none.
const UNNAMED: &str = "untitled";

/// The tus routes, with the protocol's header rules around them.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tus", any(collection))
        .route("/tus/", any(collection))
        .route("/tus/{id}", any(resource))
        .layer(middleware::from_fn(protocol))
}

/// Applies `X-HTTP-Method-Override`, requires `Tus-Resumable` on every
/// request but OPTIONS (and GET, which is not tus) and adds it to every
/// response but OPTIONS (answered by [`discovery`]).
async fn protocol(mut req: Request, next: Next) -> Response {
    let overridden = req
        .headers()
        .get("x-http-method-override")
        .and_then(|v| v.to_str().ok())
        .and_then(|m| Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes()).ok());
    if let Some(method) = overridden {
        *req.method_mut() = method;
    }
    let method = req.method().clone();
    if method == Method::OPTIONS {
        return next.run(req).await;
    }
    let speaks_tus = req
        .headers()
        .get("tus-resumable")
        .is_some_and(|v| v.as_bytes() == VERSION.as_bytes());
    let mut response = if speaks_tus || method == Method::GET {
        next.run(req).await
    } else {
        TusError::Version.into_response()
    };
    response
        .headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(VERSION));
    response
}

/// `/tus/`: creation and discovery.
async fn collection(
    State(app): State<AppState>,
    Caller(owner): Caller,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match method {
        Method::POST => create(&app, &owner, &headers, body).await.into_response(),
        _ => not_allowed("POST, OPTIONS"),
    }
}

/// `/tus/{id}`: one upload.
async fn resource(
    State(app): State<AppState>,
    Caller(owner): Caller,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(id) = UploadId::parse(&id) else {
        return TusError::Core(CoreError::UploadNotFound).into_response();
    };
    let done = match method {
        Method::HEAD => head(&app, &owner, &id).await,
        Method::PATCH => patch(&app, &owner, &id, &headers, body).await,
        Method::DELETE => terminate(&app, &owner, &id).await,
        Method::GET => redirect_to_file(&app, &owner, &id).await,
        _ => return not_allowed("HEAD, PATCH, DELETE, GET, OPTIONS"),
    };
    done.into_response()
}

/// OPTIONS on a tus path: what this server supports.
///
/// The CORS layer answers every OPTIONS request itself (as a preflight), so
/// this runs outside it: it lets the CORS layer answer, then adds the tus
/// headers to that answer.
pub async fn discovery(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let is_tus = req.uri().path() == "/tus" || req.uri().path().starts_with("/tus/");
    if req.method() != Method::OPTIONS || !is_tus {
        return next.run(req).await;
    }
    let mut response = next.run(req).await;
    if response.status().is_success() {
        *response.status_mut() = StatusCode::NO_CONTENT;
        let max = app.service.limits().max_file_size;
        let h = response.headers_mut();
        h.insert("tus-version", HeaderValue::from_static(VERSION));
        h.insert(
            "tus-extension",
            HeaderValue::from_static(headers::EXTENSIONS),
        );
        h.insert("tus-max-size", HeaderValue::from(max));
        h.insert(
            "tus-checksum-algorithm",
            HeaderValue::from_str(&headers::checksum_algorithms()).expect("ASCII names"),
        );
    }
    response
}

/// POST: a new upload, a partial one, or a final one made of partials;
/// with a body, its first bytes too.
async fn create(app: &AppState, owner: &Owner, h: &HeaderMap, body: Body) -> TusResult<Response> {
    let length = headers::number(h, "upload-length")?;
    let deferred = headers::defer_length(h)?;
    let meta = Metadata::parse(h)?;
    let concat = headers::concat(h)?;
    let with_body = headers::is_offset_octet_stream(h);
    if !with_body && announces_body(h)? {
        return Err(TusError::ContentType);
    }
    let name = meta.name().unwrap_or_else(|| UNNAMED.to_owned());
    let mime = meta.mime();
    if let Concat::Final(parts) = concat {
        if length.is_some() || deferred {
            return Err(TusError::Invalid(
                "a final upload has no Upload-Length: its length is the sum of its parts'".into(),
            ));
        }
        if with_body {
            return Err(TusError::FinalUpload);
        }
        let req = NewFinalUpload {
            name,
            mime,
            meta: meta.raw,
            parts,
        };
        let (upload, _file) = app.service.create_final(owner, req).await?;
        metrics::counter!(UPLOADS_CREATED).increment(1);
        return Ok(created(&upload));
    }
    let size = match (length, deferred) {
        (Some(n), false) => Some(n),
        (None, true) => None,
        (Some(_), true) => {
            return Err(TusError::Invalid(
                "send Upload-Length or Upload-Defer-Length, not both".into(),
            ));
        }
        (None, false) => {
            return Err(TusError::Invalid(
                "Upload-Length (or Upload-Defer-Length: 1) is required".into(),
            ));
        }
    };
    let req = NewAppendUpload {
        name,
        mime,
        size,
        meta: meta.raw,
        concat,
    };
    let upload = app.service.create_append(owner, req).await?;
    metrics::counter!(UPLOADS_CREATED).increment(1);
    let written = if with_body {
        write(app, owner, &upload, h, body).await
    } else if upload.size == Some(0) {
        app.service
            .finish(owner, &upload)
            .await
            .map(|_| upload.clone())
            .map_err(TusError::from)
    } else {
        Ok(upload.clone())
    };
    match written {
        Ok(upload) => Ok(created(&upload)),
        // The upload exists: say where, so that the client can resume.
        Err(e) => {
            let mut response = e.into_response();
            response
                .headers_mut()
                .insert(LOCATION, location(&upload.id));
            Ok(response)
        }
    }
}

fn created(upload: &Upload) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    let h = response.headers_mut();
    h.insert(LOCATION, location(&upload.id));
    h.insert("upload-offset", HeaderValue::from(upload.offset));
    expires(h, upload);
    response
}

/// HEAD: the upload's offset, length, metadata and concatenation.
///
/// A HEAD usually comes from a client about to resume after its PATCH
/// broke off; that PATCH may still be storing what arrived. HEAD waits for
/// it (a while at most), so the offset it reports counts those bytes.
async fn head(app: &AppState, owner: &Owner, id: &UploadId) -> TusResult<Response> {
    let mut upload = app.service.settled_upload(owner, id, HEAD_PATIENCE).await?;
    if upload.mode != UploadMode::Append {
        // A chunked upload of the JSON API has no offset to report.
        return Err(CoreError::WrongMode.into());
    }
    if upload.is_full() && upload.file.is_none() && upload.concat == Concat::None {
        // All bytes arrived but completing failed (or was cut short):
        // complete now, as the client will not send anything more. (A
        // partial upload needs no such help: concatenation commits its
        // parts itself.)
        app.service.finish(owner, &upload).await?;
        upload = app.service.get_upload(owner, id).await?;
    }
    let mut response = StatusCode::OK.into_response();
    let h = response.headers_mut();
    h.insert("upload-offset", HeaderValue::from(upload.offset));
    match upload.size {
        Some(size) => h.insert("upload-length", HeaderValue::from(size)),
        None => h.insert("upload-defer-length", HeaderValue::from_static("1")),
    };
    if let Some(meta) = upload
        .meta
        .as_deref()
        .and_then(|m| HeaderValue::from_str(m).ok())
    {
        h.insert("upload-metadata", meta);
    }
    if let Some(c) = headers::render_concat(&upload.concat) {
        h.insert(
            "upload-concat",
            HeaderValue::from_str(&c).expect("ids and paths are ASCII"),
        );
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if upload.can_expire() {
        expires(h, &upload);
    }
    Ok(response)
}

/// PATCH: bytes at the current offset (and the length, if deferred).
async fn patch(
    app: &AppState,
    owner: &Owner,
    id: &UploadId,
    h: &HeaderMap,
    body: Body,
) -> TusResult<Response> {
    let _timer = ChunkTimer::start("tus");
    if !headers::is_offset_octet_stream(h) {
        return Err(TusError::ContentType);
    }
    let offset = headers::number(h, "upload-offset")?
        .ok_or_else(|| TusError::header("Upload-Offset", "is required"))?;
    let length = headers::number(h, "upload-length")?;
    let mut upload = app.service.get_upload(owner, id).await?;
    if matches!(upload.concat, Concat::Final(_)) {
        return Err(TusError::FinalUpload);
    }
    if offset != upload.offset {
        return Err(CoreError::OffsetMismatch {
            current: upload.offset,
            given: offset,
        }
        .into());
    }
    if let Some(length) = length {
        match upload.size {
            Some(size) if size == length => {}
            Some(size) => return Err(CoreError::LengthAlreadySet(size).into()),
            None => upload = app.service.declare_length(owner, id, length).await?.upload,
        }
    }
    let upload = write(app, owner, &upload, h, body).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert("upload-offset", HeaderValue::from(upload.offset));
    expires(h, &upload);
    Ok(response)
}

/// Appends a request body at the upload's offset, checked against its
/// `Upload-Checksum` (header or trailer); finishes the upload if that was
/// its last byte. Returns the upload after it.
async fn write(
    app: &AppState,
    owner: &Owner,
    upload: &Upload,
    h: &HeaderMap,
    body: Body,
) -> TusResult<Upload> {
    let given = headers::checksum(h)?;
    if let (Some(size), Some(len)) = (upload.size, content_length(h)?)
        && upload.offset.saturating_add(len) > size
    {
        return Err(CoreError::PastEnd { size }.into());
    }
    let (data, trailers) = body::split(body);
    let checks = match given {
        Some(checksum) => Checks::Given(vec![checksum]),
        None if headers::checksum_trailer_announced(h) => Checks::Trailing {
            computing: Algorithm::ALL.to_vec(),
            expected: Box::new(move || {
                let trailers = trailers.take().unwrap_or_default();
                match headers::checksum(&trailers) {
                    Ok(Some(checksum)) => Ok(vec![checksum]),
                    Ok(None) => Err(CoreError::InvalidTrailer(
                        "Upload-Checksum was announced but did not arrive".into(),
                    )),
                    Err(e) => Err(CoreError::InvalidTrailer(e.to_string())),
                }
            }),
        },
        None => Checks::None,
    };
    let outcome = app
        .service
        .append(owner, &upload.id, upload.offset, checks, data)
        .await?;
    match outcome {
        AppendOutcome::Done(done) => {
            if done.full {
                app.service.finish(owner, &done.upload).await?;
            }
            Ok(done.upload)
        }
        // The client is most likely gone; what arrived is kept (without a
        // checksum) and the offset says how much.
        AppendOutcome::Interrupted { error, .. } => Err(error.into()),
    }
}

/// DELETE: terminates the upload; a completed upload takes its file along.
async fn terminate(app: &AppState, owner: &Owner, id: &UploadId) -> TusResult<Response> {
    match app.service.get_upload(owner, id).await {
        Ok(upload) => {
            if let Some(file) = &upload.file {
                match app.service.delete_file(owner, file).await {
                    Ok(()) | Err(CoreError::FileNotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        // An expired upload can still be terminated (freeing its bytes).
        Err(CoreError::UploadGone(EndReason::Expired)) => {}
        Err(e) => return Err(e.into()),
    }
    app.service.delete_upload(owner, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// GET: a completed upload redirects to its file's download.
async fn redirect_to_file(app: &AppState, owner: &Owner, id: &UploadId) -> TusResult<Response> {
    let upload = app.service.get_upload(owner, id).await?;
    let Some(file) = upload.file else {
        return Err(TusError::Incomplete);
    };
    let file = app.service.get_file(owner, &file).await?;
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(
        LOCATION,
        HeaderValue::from_str(&download_path(&file)).expect("an encoded path"),
    );
    Ok(response)
}

/// 405, with the methods that work on the path.
fn not_allowed(allow: &'static str) -> Response {
    let mut response = TusError::Api(ApiError::MethodNotAllowed).into_response();
    response
        .headers_mut()
        .insert(axum::http::header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// Whether the request carries a non-empty body.
fn announces_body(h: &HeaderMap) -> TusResult<bool> {
    Ok(content_length(h)?.is_some_and(|n| n > 0)
        || h.contains_key(axum::http::header::TRANSFER_ENCODING))
}

fn location(id: &UploadId) -> HeaderValue {
    HeaderValue::from_str(&format!("/tus/{id}")).expect("ids are ASCII")
}

/// `Upload-Expires`, as an HTTP date.
fn expires(h: &mut HeaderMap, upload: &Upload) {
    static UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
    let date = httpdate::fmt_http_date(upload.expires_at.to_system_time());
    h.insert(
        UPLOAD_EXPIRES.clone(),
        HeaderValue::from_str(&date).expect("an HTTP date"),
    );
}
