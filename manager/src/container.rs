//! Containers: records under the storage root, the lifecycle driven through the runtime's
//! CLI, and the per-container monitor.

pub mod attach;
pub mod health;
pub mod lifecycle;
pub mod monitor;
pub mod names;
pub mod record;
pub mod runtime;
pub mod store;

use std::io;
use std::path::PathBuf;

pub use record::{Record, Status};
pub use store::{volume_users, ContainerStore};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error("encoding a container record")]
    Encode(#[source] serde_json::Error),
    #[error("reading container record {path}")]
    Decode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("No such container: {what}")]
    NotFound { what: String },
    #[error("container name or id prefix {what:?} matches several containers")]
    Ambiguous { what: String },
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("invalid container name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName { name: String },
    #[error("runtime {name:?} not found (give --runtime a path or a name on $PATH)")]
    RuntimeNotFound { name: String },
    #[error("starting runtime {path}")]
    RuntimeSpawn {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("runtime {verb} failed: {message}")]
    Runtime {
        verb: String,
        message: String,
        code: i32,
    },
    #[error("parsing the runtime's {verb} output")]
    RuntimeOutput {
        verb: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("monitor: {what}")]
    Monitor {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("Bind for {addr} failed: port is already allocated")]
    PortAllocated { addr: String },
    #[error("pid file {path} does not hold a pid")]
    PidFile { path: PathBuf },
    #[error("container {id} is {status}: {hint}")]
    State {
        id: String,
        status: String,
        hint: String,
    },
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    #[error(transparent)]
    Log(#[from] crate::logs::LogError),
    #[error(transparent)]
    Attach(#[from] crate::network::AttachError),
    #[error(transparent)]
    Netns(#[from] crate::network::NetnsError),
    #[error(transparent)]
    NetworkStore(#[from] crate::network::StoreError),
    #[error(transparent)]
    Etc(#[from] crate::network::etc::EtcError),
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
    #[error("the monitor of container {id} exited without a report (see {log})")]
    MonitorGone { id: String, log: PathBuf },
}
