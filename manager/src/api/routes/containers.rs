//! `/containers/...`: create, start, stop, restart, kill, wait, remove, pause, unpause,
//! rename, top, resize, attach.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use tokio::sync::{mpsc, oneshot};

use super::streams::{hijack, pump, Chunk, Io, Sink};
use super::{blocking, json, json_body, no_content, Params};
use crate::api::error::{ApiError, ApiResult};
use crate::api::frames::DetachKeys;
use crate::api::state::{lock, AppState, Waiting};
use crate::api::version::ApiVersion;
use crate::ops::containers::{
    self, AttachOptions, Attached, CreateOptions, Output, RemoveOptions, StopOptions,
};
use crate::ops::models::{ContainerCreateRequest, ContainerWaitResponse, WaitCondition, WaitError};
use crate::ops::{Cancel, OpsError};

type S = Arc<AppState>;

pub fn routes() -> Router<S> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}", delete(remove))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/attach", post(attach))
}

async fn create(State(s): State<S>, q: Params, body: Bytes) -> ApiResult<Response> {
    let req: ContainerCreateRequest = json_body(&body, Some("config"))?;
    let opts = CreateOptions {
        name: q.str("name").map(str::to_string),
        ..CreateOptions::default()
    };
    let engine = s.engine.clone();
    let created = blocking("create", move || containers::create(&engine, &req, &opts)).await?;
    Ok(json(StatusCode::CREATED, &created))
}

/// Starts the container; when clients attached to it before (docker's CLI attaches, then
/// starts), the first of them is attached from the start so no output is missed, and the
/// others right after.
async fn start(State(s): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    let waiting = lock(&s.pending).remove(&id).unwrap_or_default();
    let engine = s.engine.clone();
    if waiting.is_empty() {
        blocking("start", move || containers::start(&engine, &id)).await?;
        return Ok(no_content());
    }
    let mut waiting = waiting.into_iter().filter(|w| !w.tx.is_closed());
    let Some(first) = waiting.next() else {
        blocking("start", move || containers::start(&engine, &id)).await?;
        return Ok(no_content());
    };
    let stdin = first.stdin;
    let what = id.clone();
    let attached = blocking("start", move || {
        containers::start_attached(&engine, &what, stdin)
    })
    .await?;
    let _ = first.tx.send(attached);
    for w in waiting {
        let engine = s.engine.clone();
        let what = id.clone();
        let opts = w.opts;
        if let Ok(a) = blocking("attach", move || containers::attach(&engine, &what, opts)).await {
            let _ = w.tx.send(a);
        }
    }
    Ok(no_content())
}

fn stop_options(q: &Params) -> ApiResult<StopOptions> {
    Ok(StopOptions {
        signal: q.str("signal").map(str::to_string),
        timeout: q.int("t")?,
    })
}

async fn stop(State(s): State<S>, Path(id): Path<String>, q: Params) -> ApiResult<Response> {
    let opts = stop_options(&q)?;
    let engine = s.engine.clone();
    blocking("stop", move || containers::stop(&engine, &id, &opts)).await?;
    Ok(no_content())
}

async fn restart(State(s): State<S>, Path(id): Path<String>, q: Params) -> ApiResult<Response> {
    let opts = stop_options(&q)?;
    let engine = s.engine.clone();
    blocking("restart", move || containers::restart(&engine, &id, &opts)).await?;
    Ok(no_content())
}

async fn kill(State(s): State<S>, Path(id): Path<String>, q: Params) -> ApiResult<Response> {
    let signal = q.str("signal").unwrap_or("KILL").to_string();
    let engine = s.engine.clone();
    blocking("kill", move || containers::kill(&engine, &id, &signal)).await?;
    Ok(no_content())
}

async fn wait(State(s): State<S>, Path(id): Path<String>, q: Params) -> ApiResult<Response> {
    let condition = match q.str("condition").unwrap_or("not-running") {
        "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => {
            return Err(ApiError::QueryValue {
                name: "condition",
                value: other.into(),
                reason: "want not-running, next-exit or removed".into(),
            })
        }
    };
    let cancel = s.shutdown.child_token();
    let guard = cancel.clone().drop_guard();
    let engine = s.engine.clone();
    let mut task =
        tokio::task::spawn_blocking(move || containers::wait(&engine, &id, condition, &cancel));
    // An error found at once (no such container) is the answer's status; otherwise the
    // headers go out now and the body when the wait ends: docker's CLI reads the headers
    // of this request before it starts the container.
    let early = tokio::time::timeout(std::time::Duration::from_millis(100), &mut task).await;
    if let Ok(done) = early {
        let r = done.map_err(|_| ApiError::Panicked { what: "wait" })??;
        return Ok(json(StatusCode::OK, &r));
    }
    let body = futures_util::stream::once(async move {
        let _guard = guard;
        let r = match task.await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => ContainerWaitResponse {
                status_code: -1,
                error: Some(WaitError {
                    message: e.to_string(),
                }),
            },
            Err(_) => ContainerWaitResponse {
                status_code: -1,
                error: Some(WaitError {
                    message: "wait panicked".into(),
                }),
            },
        };
        let mut v = serde_json::to_vec(&r).unwrap_or_default();
        v.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(v))
    });
    let mut resp = (StatusCode::OK, axum::body::Body::from_stream(body)).into_response();
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

async fn remove(State(s): State<S>, Path(id): Path<String>, q: Params) -> ApiResult<Response> {
    if q.bool("link") {
        return Err(ApiError::NotImplemented {
            what: "removing links (link=1)".into(),
        });
    }
    let opts = RemoveOptions {
        force: q.bool("force"),
        volumes: q.bool("v"),
    };
    let engine = s.engine.clone();
    blocking("remove", move || containers::remove(&engine, &id, opts)).await?;
    Ok(no_content())
}

async fn pause(State(s): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    let engine = s.engine.clone();
    blocking("pause", move || containers::pause(&engine, &id)).await?;
    Ok(no_content())
}

async fn unpause(State(s): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    let engine = s.engine.clone();
    blocking("unpause", move || containers::unpause(&engine, &id)).await?;
    Ok(no_content())
}

async fn rename(State(s): State<S>, Path(id): Path<String>, q: Params) -> ApiResult<Response> {
    let name = q.get("name").unwrap_or_default().to_string();
    let engine = s.engine.clone();
    blocking("rename", move || containers::rename(&engine, &id, &name)).await?;
    Ok(no_content())
}

async fn top(State(s): State<S>, Path(id): Path<String>, q: Params) -> ApiResult<Response> {
    let args: Vec<String> = q
        .str("ps_args")
        .map(|a| a.split_whitespace().map(str::to_string).collect())
        .unwrap_or_else(|| vec!["-ef".into()]);
    let engine = s.engine.clone();
    let t = blocking("top", move || containers::top(&engine, &id, &args)).await?;
    Ok(json(StatusCode::OK, &t))
}

/// The terminal size of a container with a tty.
async fn resize(State(s): State<S>, Path(id): Path<String>, q: Params) -> ApiResult<Response> {
    let rows: u16 = q.int("h")?.unwrap_or(0);
    let cols: u16 = q.int("w")?.unwrap_or(0);
    let engine = s.engine.clone();
    blocking("resize", move || {
        let opts = AttachOptions {
            stdin: false,
            stdout: false,
            stderr: false,
        };
        let a = containers::attach(&engine, &id, opts)?;
        a.input().resize(rows, cols)
    })
    .await?;
    Ok(json(StatusCode::OK, &serde_json::json!({})))
}

async fn attach(
    State(s): State<S>,
    Path(id): Path<String>,
    q: Params,
    req: Request,
) -> ApiResult<Response> {
    let version = req.extensions().get::<ApiVersion>().copied();
    let opts = AttachOptions {
        stdin: q.bool("stdin"),
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
    };
    if !q.bool("stream") {
        // Only `logs=1`: the log so far, which is the logs endpoint's job.
        return Err(ApiError::NotImplemented {
            what: "attach without stream=1 (use /containers/{id}/logs)".into(),
        });
    }
    // An empty value is docker's default sequence, as no value.
    let keys = match q.str("detachKeys") {
        Some(k) => DetachKeys::parse(k).map_err(|e| ApiError::QueryValue {
            name: "detachKeys",
            value: k.into(),
            reason: e.reason.into(),
        })?,
        None => DetachKeys::default(),
    };
    let engine = s.engine.clone();
    let what = id.clone();
    let now = blocking("attach", move || containers::attach(&engine, &what, opts)).await;
    let multiplexed = version.is_some_and(|v| v.at_least(1, 42));
    let shutdown = s.shutdown.clone();
    let activity = s.activity.clone();
    match now {
        Ok(attached) => {
            let multiplexed = multiplexed && !attached.tty();
            Ok(hijack(req, multiplexed, move |io| async move {
                let _busy = activity.begin();
                session(io, attached, keys, shutdown).await;
            }))
        }
        Err(ApiError::Ops(OpsError::NotRunning { .. })) => {
            let (tx, rx) = oneshot::channel();
            lock(&s.pending).entry(id).or_default().push(Waiting {
                tx,
                stdin: opts.stdin,
                opts,
            });
            Ok(hijack(req, false, move |io| async move {
                let _busy = activity.begin();
                let attached = tokio::select! {
                    a = rx => a,
                    _ = shutdown.cancelled() => return,
                };
                if let Ok(attached) = attached {
                    session(io, attached, keys, shutdown).await;
                }
            }))
        }
        Err(e) => Err(e),
    }
}

/// Streams an attached container over the hijacked connection until it exits, the client
/// detaches or goes away.
async fn session(io: Box<dyn Io>, attached: Attached, keys: DetachKeys, shutdown: Cancel) {
    let tty = attached.tty();
    let sink = attached.stdin().then(|| Sink::Attach(attached.input()));
    let cancel = shutdown.child_token();
    let (tx, rx) = mpsc::channel(16);
    let reader_cancel = cancel.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let mut attached = attached;
        loop {
            let chunk = match attached.next_output_or_cancel(&reader_cancel) {
                Ok(Output::Stdout(d)) => Chunk::Stdout(d),
                Ok(Output::Stderr(d)) => Chunk::Stderr(d),
                Ok(Output::Exit(_)) | Err(OpsError::Cancelled) => break,
                Err(e) => Chunk::System(e.to_string()),
            };
            let last = matches!(chunk, Chunk::System(_));
            if tx.blocking_send(chunk).is_err() || last {
                break;
            }
        }
    });
    pump(io, tty, rx, sink, keys, cancel.clone()).await;
    cancel.cancel();
    let _ = reader.await;
}
