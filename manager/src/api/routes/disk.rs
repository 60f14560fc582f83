//! `GET /system/df`: disk usage of images, containers, volumes and the build cache;
//! `POST /build/prune`: berth's builder keeps no cache apart from images, so nothing to prune
//! (`docker system prune` calls it).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::{blocking, json};
use crate::api::error::ApiResult;
use crate::api::state::AppState;
use crate::ops::df;

type S = Arc<AppState>;

pub fn routes() -> Router<S> {
    Router::new()
        .route("/system/df", get(disk_usage))
        .route("/build/prune", axum::routing::post(build_prune))
}

async fn disk_usage(State(s): State<S>) -> ApiResult<Response> {
    let engine = s.engine.clone();
    let du = blocking("system df", move || df::disk_usage(&engine)).await?;
    Ok(json(StatusCode::OK, &du))
}

async fn build_prune() -> Response {
    json(
        StatusCode::OK,
        &serde_json::json!({ "CachesDeleted": [], "SpaceReclaimed": 0 }),
    )
}
