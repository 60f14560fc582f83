//! berth-runtime: a runc-compatible OCI runtime.
//!
//! `container` holds the lifecycle operations (create, start, kill, delete); `linux` holds
//! every kernel interaction; `state`, `config`, `cgroups` and `hooks` are the pieces they share.

pub mod cgroups;
pub mod config;
pub mod container;
pub mod hooks;
pub mod jsonpath;
pub mod linux;
pub mod logging;
pub mod rootless;
pub mod signal;
pub mod state;
pub mod sync;
