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
    /// The error, and lines about what undoing its work reported (shown before it).
    #[error(transparent)]
    Undo(Box<Undo>),
}

/// An error with what its cleanup reported beside it (see [`ContainerError::Undo`]).
#[derive(Debug)]
pub struct Undo {
    pub error: ContainerError,
    pub also: Vec<String>,
}

impl std::fmt::Display for Undo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Undo {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

impl ContainerError {
    /// Adds lines about a cleanup that followed the error; nothing when there are none.
    pub fn with_also(self, also: Vec<String>) -> Self {
        if also.is_empty() {
            return self;
        }
        match self {
            ContainerError::Undo(mut u) => {
                u.also.extend(also);
                ContainerError::Undo(u)
            }
            error => ContainerError::Undo(Box::new(Undo { error, also })),
        }
    }

    /// What cleanup reported beside this error.
    pub fn also(&self) -> Vec<String> {
        match self {
            ContainerError::Undo(u) => u.also.clone(),
            _ => Vec::new(),
        }
    }
}
