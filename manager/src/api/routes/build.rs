//! `POST /build` (docker's classic builder protocol: a tar context in, a JSON message stream
//! out) and `GET /images/{name}/history`. BuildKit sessions (`version=2`) and remote
//! contexts are answered 501.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::container_data::tokio_stream_of;
use super::{blocking, json, Params};
use crate::api::error::{ApiError, ApiResult};
use crate::api::state::AppState;
use crate::ops::images::{self, BuildRequest};
use crate::ops::models::JsonMessage;
use crate::ops::{ChannelSink, Event, OpsError, Progress};

type S = Arc<AppState>;

pub fn routes() -> Router<S> {
    Router::new().route("/build", post(build))
}

fn line(v: &impl serde::Serialize) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.extend_from_slice(b"\r\n");
    Bytes::from(b)
}

async fn build(State(s): State<S>, q: Params, req: Request) -> ApiResult<Response> {
    if q.str("version") == Some("2") {
        return Err(ApiError::NotImplemented {
            what: "BuildKit builds (version=2): berth serves the classic builder protocol, use DOCKER_BUILDKIT=0".into(),
        });
    }
    if q.str("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::NotImplemented {
            what: "POST /build with a remote context".into(),
        });
    }
    let args: BTreeMap<String, Option<String>> = q.json("buildargs")?;
    let labels: BTreeMap<String, String> = q.json("labels")?;
    let mut breq = BuildRequest {
        tags: q.all("t").to_vec(),
        dockerfile: q
            .str("dockerfile")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from),
        build_args: args
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect(),
        target: q
            .str("target")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        no_cache: q.bool("nocache"),
        pull: q.bool("pull"),
        labels,
        network: q
            .str("networkmode")
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        platform: q
            .str("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        ..BuildRequest::default()
    };
    for t in &breq.tags {
        images::check_reference(t)?;
    }
    let quiet = q.bool("q");
    // The context: the body through a pipe into the unpacker.
    let (reader, mut writer) = std::io::pipe().map_err(|e| OpsError::io("making a pipe", e))?;
    let engine = s.engine.clone();
    let unpack = tokio::task::spawn_blocking(move || images::context_from_tar(&engine, reader));
    let mut body = req.into_body().into_data_stream();
    let handle = tokio::runtime::Handle::current();
    let feed = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        while let Some(Ok(chunk)) = handle.block_on(body.next()) {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let ctx = unpack
        .await
        .map_err(|_| ApiError::Panicked { what: "build" })??;
    feed.abort();
    breq.context = ctx.dir.clone();
    breq.dockerfile_text = ctx.dockerfile_text.clone();
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let progress = Progress::new(Arc::new(ChannelSink(tx)));
    let cancel = s.shutdown.child_token();
    let engine = s.engine.clone();
    let op_cancel = cancel.clone();
    let task = tokio::task::spawn_blocking(move || {
        let r = images::build(&engine, &breq, &progress, &op_cancel);
        drop(ctx);
        r
    });
    let (line_tx, line_rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        // dockerd sends the image's ID (`aux`) before `Successfully built` and the tags,
        // and clients read the last message for the tag line: those wait for the result.
        let mut closing: Vec<Bytes> = Vec::new();
        while let Some(ev) = rx.recv().await {
            if let Event::Stream(text) = ev {
                if quiet {
                    continue;
                }
                let done = !closing.is_empty() || text.starts_with("Successfully built ");
                let m = line(&JsonMessage {
                    stream: Some(text),
                    ..JsonMessage::default()
                });
                if done {
                    closing.push(m);
                } else if line_tx.send(m).await.is_err() {
                    // The client went away: stop the build (it cleans up after itself).
                    cancel.cancel();
                }
            }
        }
        let last = match task.await {
            Ok(Ok(r)) => {
                let _ = line_tx
                    .send(line(&serde_json::json!({"aux": {"ID": r.id}})))
                    .await;
                for m in closing {
                    let _ = line_tx.send(m).await;
                }
                if quiet {
                    let m = JsonMessage {
                        stream: Some(format!("{}\n", r.id)),
                        ..JsonMessage::default()
                    };
                    let _ = line_tx.send(line(&m)).await;
                }
                return;
            }
            Ok(Err(e)) => {
                for m in closing {
                    let _ = line_tx.send(m).await;
                }
                let code = images::build_exit_code(&e).unwrap_or(1);
                let msg = crate::ops::error::chain(&e);
                serde_json::json!({"errorDetail": {"code": code, "message": msg}, "error": msg})
            }
            Err(_) => {
                serde_json::json!({"errorDetail": {"message": "build panicked"}, "error": "build panicked"})
            }
        };
        let _ = line_tx.send(line(&last)).await;
    });
    let body = tokio_stream_of(line_rx).map(Ok::<_, std::convert::Infallible>);
    let mut r = (StatusCode::OK, Body::from_stream(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// `GET /images/{name}/history`.
pub async fn history(s: S, name: String) -> ApiResult<Response> {
    let engine = s.engine.clone();
    let h = blocking("image history", move || images::history(&engine, &name)).await?;
    Ok(json(StatusCode::OK, &h))
}
