//! `/_ping`, `/version`, `/info`, and the swarm routes of a node outside any swarm.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::{blocking, json};
use crate::api::error::{ApiError, ApiResult};
use crate::api::state::AppState;
use crate::ops;

type S = Arc<AppState>;

pub fn routes() -> Router<S> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/swarm", get(not_a_manager))
        .route("/swarm/leave", post(not_in_swarm))
        .route("/swarm/update", post(not_a_manager))
        .route("/swarm/unlockkey", get(not_a_manager))
        .route("/nodes", get(not_a_manager))
        .route("/services", get(not_a_manager))
        .route("/tasks", get(not_a_manager))
        .route("/secrets", get(not_a_manager))
        .route("/configs", get(not_a_manager))
}

/// Berth is never part of a swarm: the swarm's read and leave routes answer as a dockerd
/// outside one does (503), which clients such as docker-py's `leave_swarm(force=True)`
/// and compose take as "no swarm". Joining or making one stays 501.
async fn not_a_manager() -> ApiError {
    ApiError::NotSwarmManager
}

async fn not_in_swarm() -> ApiError {
    ApiError::NotInSwarm
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
