//! The HTTP layer: thin doors over the core.
//!
//! - [`api`]: the JSON chunk API under `/api/v1/uploads`
//! - [`files`]: listing and deleting files, and downloads at `/files/{id}`
//! - [`form`]: `multipart/form-data` posts
//! - [`request`]: parsing request parts into typed values
//! - [`views`]: the JSON shapes of uploads and files
//! - [`error`]: the one error type, its statuses and stable codes

pub mod api;
pub mod error;
pub mod files;
pub mod form;
pub mod request;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use tower_http::trace::TraceLayer;
use tusk_core::UploadService;
use tusk_core::model::Owner;

use error::ApiError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<UploadService>,
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
        .fallback(not_found)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
