//! `GET /containers/{id}/changes`, `GET /containers/{id}/export`,
//! `POST /containers/{id}/update`, `POST /commit` and the import form of
//! `POST /images/create` (`fromSrc=-`).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::StreamExt;

use super::container_data::tokio_stream_of;
use super::{blocking, json, json_body, Params};
use crate::api::error::{ApiError, ApiResult};
use crate::api::state::AppState;
use crate::ops::containers::{self, CommitOptions, UpdateConfig};
use crate::ops::images::{self, NewImage};
use crate::ops::OpsError;

type S = Arc<AppState>;

pub fn routes() -> Router<S> {
    Router::new()
        .route("/containers/{id}/changes", get(changes))
        .route("/containers/{id}/export", get(export))
        .route("/containers/{id}/update", post(update))
        .route("/commit", post(commit))
}

async fn changes(State(s): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    let engine = s.engine.clone();
    let list = blocking("changes", move || containers::changes(&engine, &id)).await?;
    Ok(json(StatusCode::OK, &list))
}

async fn export(State(s): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    let engine = s.engine.clone();
    // The container must exist before the answer starts.
    let what = id.clone();
    let e2 = engine.clone();
    blocking("export", move || containers::inspect(&e2, &what).map(drop)).await?;
    let (reader, writer) = std::io::pipe().map_err(|e| OpsError::io("making a pipe", e))?;
    tokio::task::spawn_blocking(move || {
        let _ = containers::export(&engine, &id, writer);
    });
    let chunks = crate::ops::blocking::stream(Chunks(reader), 8);
    let body = tokio_stream_of(chunks).map(Ok::<_, std::io::Error>);
    let mut r = (StatusCode::OK, Body::from_stream(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

/// A reader as chunks of bytes.
struct Chunks(std::io::PipeReader);

impl Iterator for Chunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        use std::io::Read;
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

async fn update(State(s): State<S>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let u: UpdateConfig = json_body(&body, None)?;
    let engine = s.engine.clone();
    let r = blocking("update", move || containers::update(&engine, &id, &u)).await?;
    Ok(json(StatusCode::OK, &r))
}

/// `repo` and `tag` as docker's commit and import take them.
fn reference(q: &Params) -> Option<String> {
    let repo = q.str("repo")?;
    Some(match q.str("tag") {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    })
}

async fn commit(State(s): State<S>, q: Params, body: Bytes) -> ApiResult<Response> {
    let Some(container) = q.str("container").map(str::to_string) else {
        return Err(ApiError::QueryValue {
            name: "container",
            value: String::new(),
            reason: "a container is required".into(),
        });
    };
    let config: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|source| ApiError::Json { source })?
    };
    let mut fields = serde_json::Map::new();
    if let Some(o) = config.as_object() {
        // Only what the client set replaces the container's.
        for (k, v) in o {
            let empty = v.is_null()
                || v.as_str().is_some_and(str::is_empty)
                || v.as_array().is_some_and(Vec::is_empty)
                || v.as_object().is_some_and(serde_json::Map::is_empty)
                || v.as_bool() == Some(false);
            let known = matches!(
                k.as_str(),
                "Cmd"
                    | "Entrypoint"
                    | "Env"
                    | "WorkingDir"
                    | "User"
                    | "Labels"
                    | "ExposedPorts"
                    | "Volumes"
                    | "StopSignal"
            );
            if known && !empty {
                fields.insert(k.clone(), v.clone());
            }
        }
    }
    let opts = CommitOptions {
        reference: reference(&q),
        comment: q.get("comment").unwrap_or("").to_string(),
        author: q.get("author").unwrap_or("").to_string(),
        changes: q
            .all("changes")
            .iter()
            .filter(|c| !c.is_empty())
            .cloned()
            .collect(),
        pause: q.get("pause").is_none() || q.bool("pause"),
        config: fields,
    };
    if let Some(r) = &opts.reference {
        images::check_reference(r)?;
    }
    let engine = s.engine.clone();
    let id = blocking("commit", move || {
        containers::commit(&engine, &container, &opts)
    })
    .await?;
    Ok(json(StatusCode::CREATED, &serde_json::json!({ "Id": id })))
}

/// `POST /images/create?fromSrc=-`: the body is the archive; a URL source is refused.
pub async fn import(s: S, q: Params, req: Request) -> ApiResult<Response> {
    let src = q.str("fromSrc").unwrap_or("-");
    if src != "-" {
        return Err(ApiError::NotImplemented {
            what: format!("importing from a URL ({src}); send the archive as the body (fromSrc=-)"),
        });
    }
    let name = reference(&q);
    if let Some(r) = &name {
        images::check_reference(r)?;
    }
    let new = NewImage {
        name,
        comment: q.get("message").unwrap_or("").to_string(),
        changes: q
            .all("changes")
            .iter()
            .filter(|c| !c.is_empty())
            .cloned()
            .collect(),
        ..NewImage::default()
    };
    let (reader, mut writer) = std::io::pipe().map_err(|e| OpsError::io("making a pipe", e))?;
    let engine = s.engine.clone();
    let task = tokio::task::spawn_blocking(move || images::import(&engine, reader, &new));
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
        .map_err(|_| ApiError::Panicked { what: "import" })?;
    feed.abort();
    let id = r?;
    let mut line = serde_json::to_vec(&serde_json::json!({ "status": id })).unwrap_or_default();
    line.push(b'\n');
    let mut resp = (StatusCode::OK, line).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
