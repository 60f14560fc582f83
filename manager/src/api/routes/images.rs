//! `/images/...` and `/auth`: pull (`create`, a JSON progress stream), list, inspect, tag,
//! push, remove, prune, load, save (`get`). Image names hold slashes, so the per-image
//! routes are one catch-all dispatched on the last segment.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::container_data::tokio_stream_of;
use super::{blocking, json, json_body, Params};
use crate::api::error::{ApiError, ApiResult};
use crate::api::state::AppState;
use crate::ops::images::{self, ArchiveFormat, PullOptions};
use crate::ops::models::{AuthConfig, AuthResponse, ImageDeleteResponseItem, JsonMessage};
use crate::ops::{blocking as ob, ChannelSink, Event, OpsError, Progress};
use crate::render::JsonMessages;

type S = Arc<AppState>;

pub fn routes() -> Router<S> {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/create", post(create))
        .route("/images/load", post(load))
        .route("/images/get", get(save_many))
        .route("/images/prune", post(prune))
        .route("/images/{*rest}", get(by_name_get).post(by_name_post))
        .route("/images/{*rest}", delete(remove))
        .route("/auth", post(auth))
}

async fn list(State(s): State<S>, q: Params) -> ApiResult<Response> {
    let filters: crate::ops::models::Filters = q.json("filters")?;
    let engine = s.engine.clone();
    let l = blocking("images", move || {
        images::list_filtered(&engine, None, &filters)
    })
    .await?;
    Ok(json(StatusCode::OK, &l))
}

/// Runs an operation that reports progress, answering with docker's JSON messages as they
/// come and, when it fails, a last message with the error (the status is 200 by then).
fn progress_stream<F, Fut>(op: F) -> Response
where
    F: FnOnce(Progress) -> Fut,
    Fut: std::future::Future<Output = Result<(), OpsError>> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel::<Event>();
    let fut = op(Progress::new(Arc::new(ChannelSink(tx))));
    let (line_tx, line_rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let renderer = JsonMessages::new(std::io::sink());
        let mut rx = rx;
        let forward = {
            let line_tx = line_tx.clone();
            async move {
                while let Some(ev) = rx.recv().await {
                    if let Some(m) = renderer.message(&ev) {
                        if line_tx.send(line(&m)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        };
        let (result, ()) = tokio::join!(fut, forward);
        if let Err(e) = result {
            let _ = line_tx
                .send(line(&JsonMessage::error(&crate::ops::error::chain(&e))))
                .await;
        }
    });
    let body = tokio_stream_of(line_rx).map(Ok::<_, std::convert::Infallible>);
    let mut r = (StatusCode::OK, Body::from_stream(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn line(m: &JsonMessage) -> Bytes {
    let mut v = serde_json::to_vec(m).unwrap_or_default();
    v.extend_from_slice(b"\r\n");
    Bytes::from(v)
}

async fn create(State(s): State<S>, q: Params, req: Request) -> ApiResult<Response> {
    if q.str("fromSrc").is_some() {
        return super::changes::import(s, q, req).await;
    }
    let Some(from) = q.str("fromImage") else {
        return Err(ApiError::NotImplemented {
            what: "POST /images/create without fromImage (import)".into(),
        });
    };
    let reference = match q.str("tag") {
        Some(t) if t.starts_with("sha256:") => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    };
    let opts = PullOptions {
        reference,
        all_tags: false,
        platform: q.str("platform").map(str::to_string),
        snapshotter: None,
    };
    // A reference that cannot be parsed is the request's fault, before any stream.
    images::check_reference(&opts.reference)?;
    let engine = s.engine.clone();
    let cancel = s.shutdown.child_token();
    let auth = super::registry_auth::from_headers(req.headers());
    Ok(progress_stream(move |p| async move {
        images::pull_with_auth(&engine, &opts, auth.as_ref(), &p, &cancel)
            .await
            .map(|_| ())
    }))
}

async fn by_name_get(State(s): State<S>, Path(rest): Path<String>) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/json") {
        let engine = s.engine.clone();
        let name = name.to_string();
        let i = blocking("image inspect", move || images::inspect(&engine, &name)).await?;
        return Ok(json(StatusCode::OK, &i));
    }
    if let Some(name) = rest.strip_suffix("/history") {
        return super::build::history(s, name.to_string()).await;
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return save(s, vec![name.to_string()]).await;
    }
    Err(ApiError::NotImplemented {
        what: format!("GET /images/{rest}"),
    })
}

async fn by_name_post(
    State(s): State<S>,
    Path(rest): Path<String>,
    q: Params,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/tag") {
        let repo = q.str("repo").ok_or_else(|| ApiError::QueryValue {
            name: "repo",
            value: String::new(),
            reason: "repository name must have at least one component".into(),
        })?;
        let target = match q.str("tag") {
            Some(t) => format!("{repo}:{t}"),
            None => repo.to_string(),
        };
        let engine = s.engine.clone();
        let name = name.to_string();
        blocking("tag", move || images::tag(&engine, &name, &target)).await?;
        return Ok(StatusCode::CREATED.into_response());
    }
    if let Some(name) = rest.strip_suffix("/push") {
        let name = match q.str("tag") {
            Some(t) => format!("{name}:{t}"),
            None => name.to_string(),
        };
        let engine = s.engine.clone();
        let cancel = s.shutdown.child_token();
        let all_tags = q.str("tag").is_none() && !name.contains(':');
        let exists = {
            let engine = engine.clone();
            let name = name.clone();
            blocking("push", move || images::exists(&engine, &name)).await?
        };
        if !exists && !all_tags {
            return Err(OpsError::NoSuchImage { what: name }.into());
        }
        let auth = super::registry_auth::from_headers(&headers);
        return Ok(progress_stream(move |p| async move {
            images::push_with_auth(&engine, &name, all_tags, auth.as_ref(), &p, &cancel)
                .await
                .map(|_| ())
        }));
    }
    Err(ApiError::NotImplemented {
        what: format!("POST /images/{rest}"),
    })
}

async fn remove(State(s): State<S>, Path(name): Path<String>, q: Params) -> ApiResult<Response> {
    let force = q.bool("force");
    let engine = s.engine.clone();
    let mut report = blocking("rmi", move || images::remove(&engine, &[name], force)).await?;
    if let Some(e) = report.errors.pop() {
        return Err(e.into());
    }
    let items: Vec<ImageDeleteResponseItem> = report.items;
    Ok(json(StatusCode::OK, &items))
}

async fn prune(State(s): State<S>, q: Params) -> ApiResult<Response> {
    let filters: crate::ops::models::Filters = q.json("filters")?;
    let all = filters
        .get("dangling")
        .first()
        .is_some_and(|d| matches!(d.as_str(), "false" | "0"));
    let engine = s.engine.clone();
    let r = blocking("image prune", move || images::prune(&engine, all)).await?;
    Ok(json(StatusCode::OK, &r))
}

/// `POST /images/load`: the answer is always a chunked JSON stream, as dockerd's: the
/// `Loaded image` lines (also with `quiet`, which only silences progress, and which docker's
/// CLI sends whenever its output is not a terminal), or an archive's error as the stream's
/// last message (status 200; docker-py raises `ImageLoadError` from it).
async fn load(State(s): State<S>, req: Request) -> ApiResult<Response> {
    let (reader, mut writer) = std::io::pipe().map_err(|e| OpsError::io("making a pipe", e))?;
    let engine = s.engine.clone();
    let task = tokio::task::spawn_blocking(move || images::load(&engine, reader));
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
    let loaded = task
        .await
        .map_err(|_| ApiError::Panicked { what: "load" })?;
    feed.abort();
    let lines: Vec<Bytes> = match loaded {
        Ok(loaded) => loaded
            .iter()
            .map(|l| {
                let text = match &l.name {
                    Some(n) => format!("Loaded image: {n}\n"),
                    None => format!("Loaded image ID: {}\n", l.id),
                };
                line(&JsonMessage {
                    stream: Some(text),
                    ..JsonMessage::default()
                })
            })
            .collect(),
        Err(e) => vec![line(&JsonMessage::error(&crate::ops::error::chain(&e)))],
    };
    let body = futures_util::stream::iter(lines.into_iter().map(Ok::<_, std::convert::Infallible>));
    let mut r = (StatusCode::OK, Body::from_stream(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

async fn save_many(State(s): State<S>, q: Params) -> ApiResult<Response> {
    save(s, q.all("names").to_vec()).await
}

/// The images as a docker-archive, streamed from a blocking writer through a pipe.
async fn save(s: S, names: Vec<String>) -> ApiResult<Response> {
    let engine = s.engine.clone();
    {
        // Unknown names fail the request before any byte is sent.
        let engine = engine.clone();
        let names = names.clone();
        blocking("save", move || {
            for n in &names {
                images::inspect(&engine, n)?;
            }
            Ok(())
        })
        .await?;
    }
    let (reader, writer) = std::io::pipe().map_err(|e| OpsError::io("making a pipe", e))?;
    std::thread::spawn(move || {
        let _ = images::save(&engine, &names, ArchiveFormat::Docker, writer);
    });
    let chunks = ob::stream(ReadChunks(reader), 8);
    let body = tokio_stream_of(chunks).map(Ok::<_, std::io::Error>);
    let mut r = (StatusCode::OK, Body::from_stream(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

struct ReadChunks<R>(R);

impl<R: std::io::Read> Iterator for ReadChunks<R> {
    type Item = Bytes;
    fn next(&mut self) -> Option<Bytes> {
        let mut buf = vec![0u8; 64 * 1024];
        match self.0.read(&mut buf) {
            Ok(n) if n > 0 => {
                buf.truncate(n);
                Some(Bytes::from(buf))
            }
            _ => None,
        }
    }
}

async fn auth(State(s): State<S>, body: Bytes) -> ApiResult<Response> {
    let a: AuthConfig = json_body(&body, Some("auth config"))?;
    let server = (!a.serveraddress.is_empty()).then(|| a.serveraddress.clone());
    images::login(
        &s.engine,
        server.as_deref(),
        Some(a.username),
        Some(a.password),
    )
    .await?;
    Ok(json(
        StatusCode::OK,
        &AuthResponse {
            status: "Login Succeeded".into(),
            identity_token: String::new(),
        },
    ))
}
