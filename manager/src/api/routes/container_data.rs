//! `/containers/...` that read: list, inspect, logs, archive (GET, HEAD, PUT), prune.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use futures_util::StreamExt;

use super::{blocking, json, Params};
use crate::api::error::{ApiError, ApiResult};
use crate::api::frames::{frame, StreamType};
use crate::api::state::AppState;
use crate::ops::blocking as ob;
use crate::ops::containers::{self, ListOptions, LogsOptions, Stream};
use crate::ops::models::Filters;

type S = Arc<AppState>;

pub fn routes() -> Router<S> {
    Router::new()
        .route("/containers/json", get(list))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/logs", get(logs))
        .route(
            "/containers/{id}/archive",
            get(archive_get).head(archive_head).put(archive_put),
        )
        .route("/containers/prune", axum::routing::post(prune))
}

async fn list(State(s): State<S>, q: Params) -> ApiResult<Response> {
    let filters: Filters = q.json("filters")?;
    let opts = ListOptions {
        all: q.bool("all"),
        limit: q
            .int::<i64>("limit")?
            .filter(|n| *n > 0)
            .map(|n| n as usize),
        filters,
        size: q.bool("size"),
    };
    let engine = s.engine.clone();
    let l = blocking("list", move || containers::list(&engine, &opts)).await?;
    Ok(json(StatusCode::OK, &l))
}

async fn inspect(State(s): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    let engine = s.engine.clone();
    let i = blocking("inspect", move || containers::inspect(&engine, &id)).await?;
    Ok(json(StatusCode::OK, &i))
}

/// docker's `since`/`until`: Unix seconds with an optional fraction; 0 = unset.
fn unix_time(q: &Params, name: &'static str) -> ApiResult<Option<SystemTime>> {
    let Some(v) = q.str(name) else {
        return Ok(None);
    };
    let bad = |reason: &str| ApiError::QueryValue {
        name,
        value: v.into(),
        reason: reason.into(),
    };
    let (secs, frac) = v.split_once('.').unwrap_or((v, "0"));
    let secs: u64 = secs.parse().map_err(|_| bad("want Unix seconds"))?;
    let nanos: u32 = format!("{frac:0<9}")
        .get(..9)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| bad("want Unix seconds"))?;
    if secs == 0 && nanos == 0 {
        return Ok(None);
    }
    Ok(Some(UNIX_EPOCH + Duration::new(secs, nanos)))
}

async fn logs(State(s): State<S>, Path(id): Path<String>, q: Params) -> ApiResult<Response> {
    let stdout = q.bool("stdout");
    let stderr = q.bool("stderr");
    if !stdout && !stderr {
        return Err(ApiError::QueryValue {
            name: "stdout",
            value: String::new(),
            reason: "Bad parameters: you must choose at least one stream".into(),
        });
    }
    let tail = match q.str("tail") {
        None => None,
        Some(t) => crate::ops::parse::tail(t).ok_or_else(|| ApiError::QueryValue {
            name: "tail",
            value: t.into(),
            reason: "want a number or all".into(),
        })?,
    };
    let opts = LogsOptions {
        follow: q.bool("follow"),
        tail,
        since: unix_time(&q, "since")?,
        until: unix_time(&q, "until")?,
        stdout,
        stderr,
    };
    let timestamps = q.bool("timestamps");
    let details = q.bool("details");
    let cancel = s.shutdown.child_token();
    let guard = cancel.clone().drop_guard();
    let engine = s.engine.clone();
    let what = id.clone();
    let (tty, entries) = blocking("logs", move || {
        let tty = containers::inspect(&engine, &what)?.config.tty;
        Ok((tty, containers::logs(&engine, &what, &opts, &cancel)?))
    })
    .await?;
    let rx = ob::stream(entries, 64);
    let body = tokio_stream_of(rx).map(move |entry| {
        let _ = &guard;
        let bytes = match entry {
            Ok(e) => {
                let (mut out, mut err) = (Vec::new(), Vec::new());
                let _ = e.print_with(timestamps, details, &mut out, &mut err);
                match (tty, e.stream) {
                    (true, Stream::Stdout) => out,
                    (true, Stream::Stderr) => err,
                    (false, Stream::Stdout) => frame(StreamType::Stdout, &out),
                    (false, Stream::Stderr) => frame(StreamType::Stderr, &err),
                }
            }
            Err(e) if tty => format!("Error: {e}\n").into_bytes(),
            Err(e) => frame(StreamType::System, e.to_string().as_bytes()),
        };
        Ok::<_, std::convert::Infallible>(Bytes::from(bytes))
    });
    let media = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let mut r = (StatusCode::OK, Body::from_stream(body)).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    Ok(r)
}

/// A 200 answer streaming `rx`'s results as JSON lines (docker's `/events` and streamed
/// `/stats`); an error becomes one `{error_key: message}` line. `guard` cancels the
/// producing operation when the client goes away.
pub fn json_lines<T: serde::Serialize + Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<crate::ops::Result<T>>,
    guard: tokio_util::sync::DropGuard,
    error_key: &'static str,
) -> Response {
    let body = tokio_stream_of(rx).map(move |m| {
        let _ = &guard;
        let mut line = match m {
            Ok(m) => serde_json::to_vec(&m).unwrap_or_default(),
            Err(e) => serde_json::to_vec(&serde_json::json!({ (error_key): e.to_string() }))
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
    r
}

/// A tokio receiver as a stream.
pub fn tokio_stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn path_param(q: &Params) -> ApiResult<String> {
    q.str("path")
        .map(str::to_string)
        .ok_or_else(|| ApiError::QueryValue {
            name: "path",
            value: String::new(),
            reason: "path cannot be empty".into(),
        })
}

async fn stat_header(s: &S, id: &str, path: &str) -> ApiResult<HeaderValue> {
    let engine = s.engine.clone();
    let (id, path) = (id.to_string(), path.to_string());
    let st = blocking("stat", move || containers::stat_path(&engine, &id, &path)).await?;
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(&st).unwrap_or_default());
    HeaderValue::from_str(&encoded).map_err(|_| ApiError::Panicked {
        what: "stat header",
    })
}

async fn archive_head(
    State(s): State<S>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    let path = path_param(&q)?;
    let h = stat_header(&s, &id, &path).await?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert("X-Docker-Container-Path-Stat", h);
    Ok(r)
}

async fn archive_get(
    State(s): State<S>,
    Path(id): Path<String>,
    q: Params,
    method: Method,
) -> ApiResult<Response> {
    if method == Method::HEAD {
        return archive_head(State(s), Path(id), q).await;
    }
    let path = path_param(&q)?;
    let h = stat_header(&s, &id, &path).await?;
    let engine = s.engine.clone();
    let reader = blocking("archive", move || {
        containers::archive_get(&engine, &id, &path)
    })
    .await?;
    // The tar stream is read on its own thread; the reader unmounts what it mounted when
    // it is done or dropped.
    let chunks = ob::stream(ArchiveChunks(Some(reader)), 8);
    let body = tokio_stream_of(chunks).map(Ok::<_, std::io::Error>);
    let mut r = (StatusCode::OK, Body::from_stream(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    r.headers_mut().insert("X-Docker-Container-Path-Stat", h);
    Ok(r)
}

/// An archive as chunks of bytes.
struct ArchiveChunks(Option<containers::ArchiveReader>);

impl Iterator for ArchiveChunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        use std::io::Read;
        let r = self.0.as_mut()?;
        let mut buf = vec![0u8; 64 * 1024];
        match r.read(&mut buf) {
            Ok(n) if n > 0 => {
                buf.truncate(n);
                Some(Bytes::from(buf))
            }
            _ => {
                if let Some(r) = self.0.take() {
                    let _ = r.finish();
                }
                None
            }
        }
    }
}

async fn archive_put(
    State(s): State<S>,
    Path(id): Path<String>,
    q: Params,
    req: Request,
) -> ApiResult<Response> {
    let path = path_param(&q)?;
    // The request body becomes a blocking reader through a pipe fed from here.
    let (reader, mut writer) =
        std::io::pipe().map_err(|e| crate::ops::OpsError::io("making a pipe", e))?;
    let engine = s.engine.clone();
    let task =
        tokio::task::spawn_blocking(move || containers::archive_put(&engine, &id, &path, reader));
    let mut body = req.into_body().into_data_stream();
    let feed = tokio::task::spawn_blocking({
        let handle = tokio::runtime::Handle::current();
        move || {
            use std::io::Write;
            while let Some(Ok(chunk)) = handle.block_on(body.next()) {
                if writer.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
    });
    let r = task
        .await
        .map_err(|_| ApiError::Panicked { what: "archive" })?;
    feed.abort();
    r?;
    Ok(StatusCode::OK.into_response())
}

async fn prune(State(s): State<S>, q: Params) -> ApiResult<Response> {
    let filters: Filters = q.json("filters")?;
    let engine = s.engine.clone();
    let r = blocking("prune", move || containers::prune(&engine, &filters)).await?;
    Ok(json(StatusCode::OK, &r))
}
