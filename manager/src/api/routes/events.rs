//! `GET /events`: the event journal as a stream of JSON objects, one a line, replayed from
//! `since` and followed until `until` (for ever without it).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;

use super::container_data::tokio_stream_of;
use super::{blocking, Params};
use crate::api::error::ApiResult;
use crate::api::state::AppState;
use crate::ops::events::{self, EventsOptions};
use crate::ops::models::Filters;
use crate::ops::{blocking as ob, Cancel};

type S = Arc<AppState>;

pub fn routes() -> Router<S> {
    Router::new().route("/events", get(stream))
}

/// Cancels the follower when the client goes away.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

async fn stream(State(s): State<S>, q: Params) -> ApiResult<Response> {
    let filters: Filters = q.json("filters")?;
    // docker sends Unix seconds ("1700000000.000000000"); 0 or empty means unset.
    let time = |name: &str| {
        q.str(name)
            .filter(|v| !v.trim_start_matches(['0', '.']).is_empty())
            .map(str::to_string)
    };
    let opts = EventsOptions {
        since: time("since"),
        until: time("until"),
        filters,
    };
    let cancel = s.shutdown.child_token();
    let guard = CancelOnDrop(cancel.clone());
    let engine = s.engine.clone();
    let iter = blocking("events", move || events::events(&engine, &opts, &cancel)).await?;
    let rx = ob::stream(iter, 64);
    let body = tokio_stream_of(rx).map(move |m| {
        let _ = &guard;
        let mut line = match m {
            Ok(m) => serde_json::to_vec(&m).unwrap_or_default(),
            Err(e) => serde_json::to_vec(&serde_json::json!({ "error": e.to_string() }))
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
