//! `/_ping`, `/version`, `/info`.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::{blocking, json};
use crate::api::error::ApiResult;
use crate::api::state::AppState;
use crate::ops;

type S = Arc<AppState>;

pub fn routes() -> Router<S> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
}

/// `OK` with what a client negotiates from: the API version (added to every answer by
/// the version layer), the builder (the classic one), no swarm.
async fn ping() -> Response {
    let mut r = (StatusCode::OK, "OK").into_response();
    let h = r.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn version() -> Json<ops::models::SystemVersion> {
    Json(ops::system::version())
}

async fn info(axum::extract::State(s): axum::extract::State<S>) -> ApiResult<Response> {
    let engine = s.engine.clone();
    let info = blocking("info", move || ops::system::info(&engine)).await?;
    Ok(json(StatusCode::OK, &info))
}
