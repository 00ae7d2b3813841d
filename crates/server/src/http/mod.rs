//! The HTTP layer: thin doors over the core.
//!
//! - [`api`]: the JSON chunk API under `/api/v1/uploads`
//! - [`files`]: listing and deleting files, and downloads at `/files/{id}`
//! - [`form`]: `multipart/form-data` posts
//! - [`health`]: `/healthz` and `/readyz` for load balancers
//! - [`tus`]: tus 1.0.0 with its extensions under `/tus/`
//! - [`request`]: parsing request parts into typed values
//! - [`views`]: the JSON shapes of uploads and files
//! - [`web`]: the browser page at `/`, embedded into the binary
//! - [`error`]: the one error type, its statuses and stable codes

pub mod api;
pub mod error;
pub mod files;
pub mod form;
pub mod health;
pub mod request;
pub mod tus;
pub mod views;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::routing::{get, post, put};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tusk_core::UploadService;
use tusk_core::model::Owner;

use error::ApiError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<UploadService>,
    /// Lock files held while the server runs (see [`crate::open`]).
    pub(crate) _held: Arc<Vec<std::fs::File>>,
    /// Origins whose pages may call the server (CORS); empty: any origin.
    pub cors_origins: Vec<String>,
}

/// The owner a request acts for. Without accounts, every request acts for
/// the one local owner.
pub struct Caller(pub Owner);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Caller(Owner::local()))
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/v1/uploads",
            post(api::create).fallback(method_not_allowed),
        )
        .route(
            "/api/v1/uploads/{id}",
            get(api::show)
                .delete(api::delete)
                .fallback(method_not_allowed),
        )
        .route(
            "/api/v1/uploads/{id}/chunks/{index}",
            put(api::put_chunk).fallback(method_not_allowed),
        )
        .route(
            "/api/v1/uploads/{id}/complete",
            post(api::complete).fallback(method_not_allowed),
        )
        .route(
            "/api/v1/files",
            get(files::list)
                .post(form::upload_files)
                .fallback(method_not_allowed),
        )
        .route(
            "/api/v1/files/{id}",
            get(files::show)
                .delete(files::delete)
                .fallback(method_not_allowed),
        )
        .route(
            "/files/{id}",
            get(files::download).fallback(method_not_allowed),
        )
        .route(
            "/files/{id}/{name}",
            get(files::download).fallback(method_not_allowed),
        )
        .route(
            "/healthz",
            get(health::healthz).fallback(method_not_allowed),
        )
        .route("/readyz", get(health::readyz).fallback(method_not_allowed))
        .route(
            "/metrics",
            get(crate::metrics::scrape).fallback(method_not_allowed),
        )
        .route("/", get(web::index).fallback(method_not_allowed))
        .route("/web/{*path}", get(web::asset).fallback(method_not_allowed))
        .merge(tus::router())
        .fallback(not_found)
        .layer(cors(&state.cors_origins))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            tus::discovery,
        ))
        .layer(crate::access_log::layer())
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .with_state(state)
}

/// Response headers a page on another origin may read: the tus ones and
/// those of downloads.
const EXPOSED: [&str; 16] = [
    "location",
    "upload-offset",
    "upload-length",
    "upload-metadata",
    "upload-expires",
    "upload-concat",
    "upload-defer-length",
    "tus-resumable",
    "tus-version",
    "tus-extension",
    "tus-max-size",
    "tus-checksum-algorithm",
    "content-range",
    "content-disposition",
    "accept-ranges",
    "etag",
];

/// CORS for pages hosted elsewhere (tus clients usually are): preflights
/// are answered, any request header may be sent, and every tus header can
/// be read. No credentials (cookies) are involved: a bearer token travels
/// in `Authorization`, which CORS allows without them.
fn cors(origins: &[String]) -> CorsLayer {
    let allow_origin = if origins.is_empty() {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(EXPOSED.map(HeaderName::from_static))
        .max_age(Duration::from_secs(24 * 3600))
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
