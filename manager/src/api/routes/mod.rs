//! The router: one module per resource, as moby's API server has them, and the helpers
//! every handler shares (query parameters with docker's loose types, JSON bodies, running
//! a blocking operation). A route berth does not serve answers 501 naming it.

mod build;
mod container_data;
mod containers;
mod exec;
mod images;
mod networks;
mod streams;
mod system;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ApiResult};
use super::state::AppState;
use super::version;

/// The service: version negotiation around the router.
pub type App = Router;

pub fn app(state: Arc<AppState>) -> App {
    let routes = Router::new()
        .merge(system::routes())
        .merge(build::routes())
        .merge(containers::routes())
        .merge(container_data::routes())
        .merge(exec::routes())
        .merge(images::routes())
        .merge(networks::routes())
        .fallback(not_implemented)
        .with_state(state.clone());
    // The outer router's only route is the fallback, so these layers run before the
    // inner router matches the (version-stripped) path.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn(version::negotiate))
        .layer(middleware::from_fn_with_state(state, track))
}

/// Counts every request as activity until its answer (streamed bodies included) is done.
async fn track(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let guard = state.activity.begin();
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    if state.debug || resp.status().is_server_error() {
        eprintln!(
            "berth: {method} {uri} -> {} ({} ms)",
            resp.status().as_u16(),
            started.elapsed().as_millis()
        );
    }
    let (parts, body) = resp.into_parts();
    let body = body.map_frame(move |f| {
        let _ = &guard;
        f
    });
    Response::from_parts(parts, Body::new(body))
}

async fn not_implemented(req: Request) -> ApiError {
    ApiError::NotImplemented {
        what: format!("{} {}", req.method(), req.uri().path()),
    }
}

/// Query parameters as docker reads them: repeated keys kept in order, booleans in any of
/// the spellings Go's clients send.
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, Vec<String>>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Params::parse(parts.uri.query().unwrap_or("")))
    }
}

impl Params {
    pub fn parse(query: &str) -> Self {
        let mut m: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            m.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        Self(m)
    }

    /// The first value of `name`, when given (empty values count as given).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.first()).map(String::as_str)
    }

    /// A non-empty value of `name`.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    pub fn all(&self, name: &str) -> &[String] {
        self.0.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    /// docker's `BoolValue`: absent, empty, `0`, `no`, `false` and `none` are false.
    pub fn bool(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| {
            !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            )
        })
    }

    /// An integer, when given and not empty.
    pub fn int<T: std::str::FromStr>(&self, name: &'static str) -> ApiResult<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        match self.str(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|e: T::Err| ApiError::QueryValue {
                    name,
                    value: v.into(),
                    reason: e.to_string(),
                }),
        }
    }

    /// A JSON-encoded value (`filters`), default when absent or empty.
    pub fn json<T: DeserializeOwned + Default>(&self, name: &'static str) -> ApiResult<T> {
        match self.str(name) {
            None => Ok(T::default()),
            Some(v) => serde_json::from_str(v).map_err(|e| ApiError::QueryValue {
                name,
                value: v.into(),
                reason: e.to_string(),
            }),
        }
    }
}

/// Decodes a JSON body; an empty one is the type's default unless `required` names what
/// it must hold.
pub fn json_body<T: DeserializeOwned + Default>(
    body: &Bytes,
    required: Option<&'static str>,
) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return match required {
            Some(what) => Err(ApiError::EmptyBody { what }),
            None => Ok(T::default()),
        };
    }
    serde_json::from_slice(body).map_err(|source| ApiError::Json { source })
}

/// Runs a synchronous operation on a blocking thread.
pub async fn blocking<T, F>(what: &'static str, f: F) -> ApiResult<T>
where
    F: FnOnce() -> crate::ops::Result<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(_) => Err(ApiError::Panicked { what }),
    }
}

/// 204 No Content.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A JSON answer with a status.
pub fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    (status, axum::Json(value)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_booleans_and_repeats_read_as_docker_does() {
        let p = Params::parse("force=1&v=False&t=a&t=b&x=&all=true&n=5&bad=x");
        assert!(p.bool("force"));
        assert!(!p.bool("v"));
        assert!(!p.bool("x"));
        assert!(!p.bool("missing"));
        assert_eq!(p.all("t"), ["a", "b"]);
        assert_eq!(p.int::<i64>("n").unwrap(), Some(5));
        assert_eq!(p.int::<i64>("x").unwrap(), None);
        let e = p.int::<i64>("bad").unwrap_err().to_string();
        assert!(e.contains("bad"), "{e}");
    }
}
