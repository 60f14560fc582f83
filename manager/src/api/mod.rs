//! The Docker Engine API service (`berth system service`): docker's REST API over a unix
//! socket (or TCP with TLS), so the docker CLI, docker-compose and the SDKs drive berth's
//! store. A front end like the CLI: requests are decoded into the operations layer's
//! models ([`crate::ops::models`]), the operation runs, its typed result is encoded; an
//! [`crate::ops::OpsError`] becomes docker's status code by its class.
//!
//! ```text
//!   listen (unix 0660 / tcp+TLS) → hyper HTTP/1 (upgrades) → version prefix + negotiation
//!     → axum router, one module per resource (routes/) → ops (on blocking threads)
//!   streams: JSON lines (pull, events, stats), stdcopy frames (logs, attach, exec without
//!   a tty), raw bytes with a tty; attach/exec hijack the connection (101 Upgrade: tcp)
//! ```
//!
//! The service holds no container state of its own: every container lives in the store
//! with its monitor, so the CLI and several services share it, and containers outlive the
//! service. What only the API has (exec instances, attaches waiting for a start) is kept in
//! [`state::AppState`].

mod error;
pub mod frames;
mod listen;
mod routes;
mod server;
mod state;
mod version;

pub use error::ApiError;
pub use listen::{Endpoint, ListenError, TlsFiles};
pub use server::{serve, ServeError, ServeOptions};
pub use version::{ApiVersion, MAX_VERSION, MIN_VERSION};
