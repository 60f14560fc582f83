//! `/networks/...` and `/volumes/...`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use super::{blocking, json, json_body, no_content, Params};
use crate::api::error::ApiResult;
use crate::api::state::AppState;
use crate::ops::models::{
    Filters, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
    VolumeCreateRequest,
};
use crate::ops::{networks, volumes};

type S = Arc<AppState>;

pub fn routes() -> Router<S> {
    Router::new()
        .route("/networks", get(net_list))
        .route("/networks/create", post(net_create))
        .route("/networks/prune", post(net_prune))
        .route("/networks/{id}", get(net_inspect).delete(net_remove))
        .route("/networks/{id}/connect", post(net_connect))
        .route("/networks/{id}/disconnect", post(net_disconnect))
        .route("/volumes", get(vol_list))
        .route("/volumes/create", post(vol_create))
        .route("/volumes/prune", post(vol_prune))
        .route("/volumes/{name}", get(vol_inspect).delete(vol_remove))
}

async fn net_list(State(s): State<S>, q: Params) -> ApiResult<Response> {
    let filters: Filters = q.json("filters")?;
    let engine = s.engine.clone();
    let l = blocking("networks", move || {
        networks::list_filtered(&engine, &filters)
    })
    .await?;
    Ok(json(StatusCode::OK, &l))
}

async fn net_create(State(s): State<S>, body: Bytes) -> ApiResult<Response> {
    let req: NetworkCreateRequest = json_body(&body, Some("network config"))?;
    let engine = s.engine.clone();
    let r = blocking("network create", move || networks::create(&engine, &req)).await?;
    Ok(json(StatusCode::CREATED, &r))
}

async fn net_prune(State(s): State<S>) -> ApiResult<Response> {
    let engine = s.engine.clone();
    let r = blocking("network prune", move || networks::prune(&engine)).await?;
    Ok(json(StatusCode::OK, &r))
}

async fn net_inspect(State(s): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    let engine = s.engine.clone();
    let r = blocking("network inspect", move || networks::inspect(&engine, &id)).await?;
    Ok(json(StatusCode::OK, &r))
}

async fn net_remove(State(s): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    let engine = s.engine.clone();
    blocking("network rm", move || networks::remove(&engine, &id)).await?;
    Ok(no_content())
}

async fn net_connect(
    State(s): State<S>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: NetworkConnectRequest = json_body(&body, Some("connect config"))?;
    let engine = s.engine.clone();
    blocking("network connect", move || {
        networks::connect(&engine, &id, &req)
    })
    .await?;
    Ok(json(StatusCode::OK, &serde_json::json!({})))
}

async fn net_disconnect(
    State(s): State<S>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: NetworkDisconnectRequest = json_body(&body, Some("disconnect config"))?;
    let engine = s.engine.clone();
    blocking("network disconnect", move || {
        networks::disconnect(&engine, &id, &req.container)
    })
    .await?;
    Ok(json(StatusCode::OK, &serde_json::json!({})))
}

async fn vol_list(State(s): State<S>, q: Params) -> ApiResult<Response> {
    let filters: Filters = q.json("filters")?;
    let engine = s.engine.clone();
    let r = blocking("volumes", move || volumes::list(&engine, &filters)).await?;
    Ok(json(StatusCode::OK, &r))
}

async fn vol_create(State(s): State<S>, body: Bytes) -> ApiResult<Response> {
    let req: VolumeCreateRequest = json_body(&body, None)?;
    let engine = s.engine.clone();
    let r = blocking("volume create", move || volumes::create(&engine, &req)).await?;
    Ok(json(StatusCode::CREATED, &r))
}

async fn vol_prune(State(s): State<S>, q: Params) -> ApiResult<Response> {
    let filters: Filters = q.json("filters")?;
    // API 1.42+: only anonymous volumes unless `all=true`.
    let all = filters
        .get("all")
        .first()
        .is_some_and(|v| matches!(v.as_str(), "true" | "1"));
    let engine = s.engine.clone();
    let r = blocking("volume prune", move || {
        volumes::prune(&engine, all, &filters)
    })
    .await?;
    Ok(json(StatusCode::OK, &r))
}

async fn vol_inspect(State(s): State<S>, Path(name): Path<String>) -> ApiResult<Response> {
    let engine = s.engine.clone();
    let r = blocking("volume inspect", move || volumes::inspect(&engine, &name)).await?;
    Ok(json(StatusCode::OK, &r))
}

async fn vol_remove(
    State(s): State<S>,
    Path(name): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    let _force = q.bool("force");
    let engine = s.engine.clone();
    blocking("volume rm", move || volumes::remove(&engine, &name)).await?;
    Ok(no_content())
}
