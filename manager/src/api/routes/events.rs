//! `GET /events`: the event journal as a stream of JSON objects, one a line, replayed from
//! `since` and followed until `until` (for ever without it).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::container_data::json_lines;
use super::{blocking, Params};
use crate::api::error::ApiResult;
use crate::api::state::AppState;
use crate::ops::blocking as ob;
use crate::ops::events::{self, EventsOptions};
use crate::ops::models::Filters;

type S = Arc<AppState>;

pub fn routes() -> Router<S> {
    Router::new().route("/events", get(stream))
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
    let guard = cancel.clone().drop_guard();
    let engine = s.engine.clone();
    let iter = blocking("events", move || events::events(&engine, &opts, &cancel)).await?;
    let rx = ob::stream(iter, 64);
    Ok(json_lines(rx, guard, "error"))
}
