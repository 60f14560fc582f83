//! Snapshots: the filesystem trees that image layers unpack into and containers run on,
//! after containerd's snapshotter model. A snapshot is *committed* (an immutable layer, named by
//! its ChainID so that images sharing base layers share snapshots), *active* (writable, made by
//! `prepare` on top of a committed parent) or a *view* (read-only, on top of a committed parent).
//! A snapshotter never mounts anything itself: it returns the [`Mount`]s to make, and
//! [`mount_all`] makes them for a target the caller chooses.
//!
//! Two backends share the bookkeeping in `store`: `overlay` (each layer is a directory holding
//! only its changes; a container's root is an overlayfs of the chain) and `copy` (each snapshot
//! is a full copy of its parent plus its changes: slow and large, but it works on any
//! filesystem, including where overlayfs cannot be mounted). Both run the shared suite in
//! `tests.rs`.
//!
//! Storage: `<root>/snapshots/<backend>/{metadata.json, metadata.lock, snapshots/<id>/}`.

mod copy;
mod mount;
mod overlay;
mod store;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use copy::{copy_tree_as_is, CopySnapshotter};
pub use mount::{is_mount_point, mount_all, unmount};
pub use overlay::OverlaySnapshotter;

use crate::lock::LockError;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("creating snapshot directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading snapshot metadata {path}")]
    ReadMeta {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("snapshot metadata {path} is corrupt")]
    ParseMeta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing snapshot metadata {path}")]
    WriteMeta {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("snapshot {key} does not exist")]
    NotFound { key: String },
    #[error("snapshot {key} already exists")]
    AlreadyExists { key: String },
    #[error("snapshot {key} is {actual}, not {expected}")]
    WrongKind {
        key: String,
        expected: Kind,
        actual: Kind,
    },
    #[error("snapshot {key} is in use by snapshot {child}")]
    InUse { key: String, child: String },
    #[error("copying snapshot {parent} into {path}")]
    Copy {
        parent: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("removing snapshot directory {path}")]
    RemoveDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("measuring snapshot {key} at {path}")]
    Usage {
        key: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("mounting {kind} {source_path} on {target}")]
    Mount {
        kind: String,
        source_path: PathBuf,
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unknown mount type {kind:?} for {target}")]
    MountType { kind: String, target: PathBuf },
    #[error("unmounting {target}")]
    Unmount {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unknown snapshotter {name:?} (use overlay or copy)")]
    UnknownBackend { name: String },
}

pub type Result<T, E = SnapshotError> = std::result::Result<T, E>;

/// The state of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Committed,
    Active,
    View,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Committed => "committed",
            Kind::Active => "active",
            Kind::View => "a view",
        })
    }
}

/// One snapshot as `stat` and `list` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub key: String,
    pub kind: Kind,
    pub parent: Option<String>,
}

/// Disk space used by a snapshot's own directory (not its parents').
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub inodes: u64,
}

/// One mount to make, as mount(8) would take it: `mount -t <kind> -o <options> <source>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `overlay` or `bind`.
    pub kind: String,
    pub source: PathBuf,
    pub options: Vec<String>,
}

/// Where `unpack` writes a layer for an active snapshot, and how it writes whiteouts there.
pub use crate::unpack::Target as ApplyTarget;

/// A snapshotter (containerd's model, see the module docs).
pub trait Snapshotter: Send + Sync {
    /// `overlay` or `copy`.
    fn name(&self) -> &'static str;
    /// Makes a writable snapshot `key` on top of committed `parent` (or empty).
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>>;
    /// Makes a read-only snapshot `key` of committed `parent`.
    fn view(&self, key: &str, parent: &str) -> Result<Vec<Mount>>;
    /// The mounts of an active snapshot or view.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>>;
    /// Turns active snapshot `active` into committed snapshot `name`. Fails with
    /// [`SnapshotError::AlreadyExists`] when `name` exists (another process won the race); the
    /// active snapshot is left for the caller to remove.
    fn commit(&self, name: &str, active: &str) -> Result<()>;
    /// Removes a snapshot that no other snapshot builds on.
    fn remove(&self, key: &str) -> Result<()>;
    fn stat(&self, key: &str) -> Result<Info>;
    fn list(&self) -> Result<Vec<Info>>;
    fn usage(&self, key: &str) -> Result<Usage>;
    /// Where a layer is unpacked into for active snapshot `key`.
    fn apply_target(&self, key: &str) -> Result<ApplyTarget>;
}

/// The available backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Overlay,
    Copy,
}

impl FromStr for Backend {
    type Err = SnapshotError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "overlay" | "overlayfs" | "overlay2" => Ok(Backend::Overlay),
            "copy" | "native" | "vfs" => Ok(Backend::Copy),
            _ => Err(SnapshotError::UnknownBackend {
                name: s.to_string(),
            }),
        }
    }
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Overlay, Backend::Copy];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Overlay => "overlay",
            Backend::Copy => "copy",
        }
    }

    /// Overlay when the kernel has it (/proc/filesystems, proc(5)), else copy; copy for a
    /// rootless berth, which cannot mount on the host.
    pub fn detect() -> Self {
        if crate::rootless::is_rootless() {
            return Backend::Copy;
        }
        let overlay = std::fs::read_to_string("/proc/filesystems")
            .map(|s| {
                s.lines()
                    .any(|l| l.split_whitespace().last() == Some("overlay"))
            })
            .unwrap_or(false);
        if overlay {
            Backend::Overlay
        } else {
            Backend::Copy
        }
    }

    /// Opens this backend's store under `<root>/snapshots/<name>`.
    pub fn open(self, root: &Path) -> Result<Box<dyn Snapshotter>> {
        let dir = root.join("snapshots").join(self.name());
        Ok(match self {
            Backend::Overlay => Box::new(OverlaySnapshotter::open(&dir)?),
            Backend::Copy => Box::new(CopySnapshotter::open(&dir)?),
        })
    }
}

/// ChainID of a layer stack (image-spec config.md, "Layer ChainID"):
/// ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => {
            let hex = hex::encode(Sha256::digest(format!("{p} {diff_id}").as_bytes()));
            crate::unpack::sha256_digest(&hex)
        }
    }
}

/// Removes committed snapshot `top` and then its parents, stopping at the first one that
/// another snapshot still builds on (a shared base layer, a container). Returns the keys
/// removed.
pub fn remove_chain(sn: &dyn Snapshotter, top: &str) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let mut next = Some(top.to_string());
    while let Some(key) = next {
        let info = sn.stat(&key)?;
        match sn.remove(&key) {
            Ok(()) => removed.push(key),
            Err(SnapshotError::InUse { .. }) => break,
            Err(e) => return Err(e),
        }
        next = info.parent;
    }
    Ok(removed)
}
