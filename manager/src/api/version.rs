//! API versions: the `/v1.xx` path prefix, checked against what berth speaks, and the
//! headers every answer carries. Clients negotiate by reading `API-Version` from `/_ping`
//! and using the lower of theirs and ours; a request without a prefix gets the newest.

use std::fmt;

use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// An API version `major.minor`, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion(pub u16, pub u16);

/// The newest version served: what docker 28's CLI asks for.
pub const MAX_VERSION: ApiVersion = ApiVersion(1, 51);
/// The oldest version accepted, as dockerd 25+ (docker-compose 1.29 asks for 1.30 and
/// older SDKs for fixed versions in between).
pub const MIN_VERSION: ApiVersion = ApiVersion(1, 24);

impl ApiVersion {
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('.')?;
        Some(Self(a.parse().ok()?, b.parse().ok()?))
    }

    pub fn at_least(self, major: u16, minor: u16) -> bool {
        self >= ApiVersion(major, minor)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Splits `/v1.41/containers/json` into the version and the rest; `None` when the path
/// has no version prefix.
fn split_version(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let (v, tail) = rest.split_at(end);
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    Some((v, tail))
}

/// Middleware: strips the version prefix (routes are written without it), refuses
/// versions out of range as dockerd does (400), records the version in the request's
/// extensions, and stamps the answer with docker's headers.
pub async fn negotiate(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let mut version = MAX_VERSION;
    if let Some((v, tail)) = split_version(&path) {
        let Some(parsed) = ApiVersion::parse(v) else {
            return with_headers(
                ApiError::BadVersion {
                    version: v.to_string(),
                }
                .into_response(),
            );
        };
        if parsed > MAX_VERSION {
            return with_headers(ApiError::ClientTooNew { version: parsed }.into_response());
        }
        if parsed < MIN_VERSION {
            return with_headers(ApiError::ClientTooOld { version: parsed }.into_response());
        }
        version = parsed;
        let tail = if tail.is_empty() { "/" } else { tail };
        let pq = match req.uri().query() {
            Some(q) => format!("{tail}?{q}"),
            None => tail.to_string(),
        };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = pq.parse().ok();
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req.extensions_mut().insert(version);
    with_headers(next.run(req).await)
}

fn with_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(const_format_max()));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    resp
}

/// `MAX_VERSION` as a static string (header values are built once per answer).
const fn const_format_max() -> &'static str {
    "1.51"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefixes_split_off_and_compare_numerically() {
        assert_eq!(
            split_version("/v1.41/containers/json"),
            Some(("1.41", "/containers/json"))
        );
        assert_eq!(split_version("/v1.9/_ping"), Some(("1.9", "/_ping")));
        assert_eq!(split_version("/volumes"), None);
        assert_eq!(split_version("/containers/json"), None);
        assert!(ApiVersion::parse("1.9").unwrap() < ApiVersion::parse("1.41").unwrap());
        assert!(ApiVersion::parse("1.51").unwrap() == MAX_VERSION);
        assert_eq!(MAX_VERSION.to_string(), const_format_max());
        assert_eq!(ApiVersion::parse("one.two"), None);
    }
}
