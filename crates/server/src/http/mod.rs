//! The HTTP layer: thin doors over the core.
//!
//! - [`api`]: the JSON chunk API under `/api/v1/uploads`
//! - [`files`]: listing and deleting files, and downloads at `/files/{id}`
//! - [`form`]: `multipart/form-data` posts
//! - [`multipart`]: reading such bodies part by part, with bounded memory
//! - [`health`]: `/healthz` and `/readyz` for load balancers
//! - [`tus`]: tus 1.0.0 with its extensions under `/tus/`
//! - [`pace`]: cutting off request bodies that arrive too slowly
//! - [`request`]: parsing request parts into typed values
//! - [`views`]: the JSON shapes of uploads and files
//! - [`web`]: the browser page at `/`, embedded into the binary
//! - [`exposure`]: which hosts and web pages may reach the server, and
//!   the CORS grants
//! - [`error`]: the one error type, its statuses and stable codes

pub mod api;
pub mod error;
pub mod exposure;
pub mod files;
pub mod form;
pub mod health;
pub mod multipart;
pub mod pace;
pub mod request;
pub mod tus;
pub mod views;
pub mod web;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post, put};
use tusk_core::model::Owner;
use tusk_core::service::Identity;
use tusk_core::{Error as CoreError, UploadService};

use error::ApiError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<UploadService>,
    /// Lock files held while the server runs (see [`crate::open`]).
    pub(crate) _held: Arc<Vec<std::fs::File>>,
    /// Which hosts and web pages may reach the server.
    pub exposure: exposure::Exposure,
    /// How request bodies must keep arriving.
    pub pace: pace::Pace,
}

/// The owner a request acts for: the account of its bearer token, or the
/// one local owner of a server without tokens (see `tusk_core::service`'s
/// `access`). A missing, unknown or revoked token is refused with 401.
pub struct Caller(pub Owner);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Caller(identify(&parts.headers, app).await?.owner))
    }
}

/// A caller with an admin token (anyone, on a server without tokens);
/// others are refused with 403.
pub struct Admin(pub Identity);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let identity = identify(&parts.headers, app).await?;
        if !identity.admin {
            return Err(CoreError::Forbidden.into());
        }
        Ok(Admin(identity))
    }
}

/// Who the request's `Authorization: Bearer …` names.
pub async fn identify(headers: &HeaderMap, app: &AppState) -> Result<Identity, ApiError> {
    let bearer = match headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => Some(bearer_token(value).ok_or(CoreError::Unauthorized(
            "send the token as Authorization: Bearer <token>",
        ))?),
    };
    Ok(app.service.authenticate(bearer).await?)
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in
/// any case, RFC 9110 §11.1).
fn bearer_token(value: &HeaderValue) -> Option<&str> {
    let (scheme, token) = value.to_str().ok()?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
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
            "/api/v1/uploads/{id}/proof",
            post(api::prove).fallback(method_not_allowed),
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
                .patch(files::update)
                .delete(files::delete)
                .fallback(method_not_allowed),
        )
        .route(
            "/api/v1/files/{id}/link",
            post(files::link).fallback(method_not_allowed),
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
        .layer(exposure::cors(&state))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            exposure::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            tus::discovery,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.pace,
            pace::pace_bodies,
        ))
        .layer(crate::access_log::layer())
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
