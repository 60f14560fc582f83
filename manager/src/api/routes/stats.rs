//! `GET /containers/{id}/stats`: samples of the container's cgroup, streamed (a JSON
//! object a line, every second) or one (`stream=false`, `one-shot=true`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::container_data::json_lines;
use super::{blocking, json, Params};
use crate::api::error::ApiResult;
use crate::api::state::AppState;
use crate::ops::blocking as ob;
use crate::ops::stats::{self, StatsMode};

type S = Arc<AppState>;

pub fn routes() -> Router<S> {
    Router::new().route("/containers/{id}/stats", get(container_stats))
}

async fn container_stats(
    State(s): State<S>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    // `stream` defaults to true.
    let stream = q.get("stream").is_none() || q.bool("stream");
    let mode = if stream {
        StatsMode::Stream
    } else if q.bool("one-shot") {
        StatsMode::OneShot
    } else {
        StatsMode::Once
    };
    let cancel = s.shutdown.child_token();
    let engine = s.engine.clone();
    let c = cancel.clone();
    let mut iter = blocking("stats", move || stats::stats(&engine, &id, mode, &c)).await?;
    if !stream {
        let one = blocking("stats", move || iter.next().transpose()).await?;
        return Ok(json(StatusCode::OK, &one.unwrap_or_default()));
    }
    let guard = cancel.drop_guard();
    let rx = ob::stream(iter, 4);
    Ok(json_lines(rx, guard, "message"))
}
