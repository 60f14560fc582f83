//! `GET /containers/{id}/stats`: samples of the container's cgroup, streamed (a JSON
//! object a line, every second) or one (`stream=false`, `one-shot=true`).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;

use super::container_data::tokio_stream_of;
use super::{blocking, json, Params};
use crate::api::error::ApiResult;
use crate::api::state::AppState;
use crate::ops::stats::{self, StatsMode};
use crate::ops::{blocking as ob, Cancel};

type S = Arc<AppState>;

pub fn routes() -> Router<S> {
    Router::new().route("/containers/{id}/stats", get(container_stats))
}

struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
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
    let guard = CancelOnDrop(cancel);
    let rx = ob::stream(iter, 4);
    let body = tokio_stream_of(rx).map(move |m| {
        let _ = &guard;
        let mut line = match m {
            Ok(m) => serde_json::to_vec(&m).unwrap_or_default(),
            Err(e) => serde_json::to_vec(&serde_json::json!({ "message": e.to_string() }))
                .unwrap_or_default(),
        };
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(line))
    });
    let mut r = (StatusCode::OK, Body::from_stream(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
