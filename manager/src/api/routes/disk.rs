//! `GET /system/df`: disk usage of images, containers, volumes and the build cache.

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
    Router::new().route("/system/df", get(disk_usage))
}

async fn disk_usage(State(s): State<S>) -> ApiResult<Response> {
    let engine = s.engine.clone();
    let du = blocking("system df", move || df::disk_usage(&engine)).await?;
    Ok(json(StatusCode::OK, &du))
}
