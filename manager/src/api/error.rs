//! Errors of the API front end and how every error becomes an answer: docker's status code
//! (from the operation error's class) and a `{"message": ...}` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::ops::error::chain;
use crate::ops::OpsError;

use super::version::{ApiVersion, MAX_VERSION, MIN_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error("{what} is not implemented by berth")]
    NotImplemented { what: String },
    #[error("page not found")]
    NotFound,
    #[error("invalid API version {version:?}")]
    BadVersion { version: String },
    #[error("client version {version} is too new. Maximum supported API version is {MAX_VERSION}")]
    ClientTooNew { version: ApiVersion },
    #[error("client version {version} is too old. Minimum supported API version is {MIN_VERSION}, please upgrade your client to a newer version")]
    ClientTooOld { version: ApiVersion },
    #[error("invalid JSON in the request body: {source}")]
    Json {
        #[source]
        source: serde_json::Error,
    },
    #[error("{what} cannot be empty")]
    EmptyBody { what: &'static str },
    #[error("invalid value {value:?} for query parameter {name}: {reason}")]
    QueryValue {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("reading the request body: {source}")]
    Body {
        #[source]
        source: axum::Error,
    },
    #[error("No such exec instance: {id}")]
    NoSuchExec { id: String },
    #[error("Error: Exec command {id} is already running")]
    ExecRunning { id: String },
    #[error("Error: Exec command {id} has already run")]
    ExecDone { id: String },
    #[error("{what} needs a connection upgrade (Connection: Upgrade, Upgrade: tcp)")]
    NeedsUpgrade { what: &'static str },
    #[error("{what} panicked")]
    Panicked { what: &'static str },
    #[error("This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.")]
    NotSwarmManager,
    #[error("This node is not part of a swarm")]
    NotInSwarm,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        let code = match self {
            ApiError::Ops(e) => e.status_code(),
            ApiError::NotImplemented { .. } => 501,
            ApiError::NotFound | ApiError::NoSuchExec { .. } => 404,
            ApiError::ExecRunning { .. } | ApiError::ExecDone { .. } => 409,
            ApiError::BadVersion { .. }
            | ApiError::ClientTooNew { .. }
            | ApiError::ClientTooOld { .. }
            | ApiError::Json { .. }
            | ApiError::EmptyBody { .. }
            | ApiError::QueryValue { .. }
            | ApiError::NeedsUpgrade { .. } => 400,
            ApiError::Body { .. } | ApiError::Panicked { .. } => 500,
            ApiError::NotSwarmManager | ApiError::NotInSwarm => 503,
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The text of the `message` field: the error with its causes, and before it what the
    /// operation's cleanup reported (as the CLI prints those lines first).
    pub fn message(&self) -> String {
        match self {
            ApiError::Ops(e) => {
                let mut lines = e.also();
                lines.push(chain(e));
                lines.join("\n")
            }
            e => chain(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "message": self.message() });
        (self.status(), Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
