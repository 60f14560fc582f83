//! Persistent network namespaces: one per container, bind-mounted at `<run_dir>/netns/<id>` so it
//! outlives every process in it and the runtime can join it by path (`linux.namespaces[].path`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rustix::mount::{mount_bind, mount_change, unmount, MountPropagationFlags, UnmountFlags};
use rustix::thread::UnshareFlags;

use crate::lock::{FileLock, LockError};
use crate::snapshot::is_mount_point;

/// `statfs(2)` type of the nsfs filesystem that backs `/proc/<pid>/ns/*` (linux/magic.h).
const NSFS_MAGIC: i64 = 0x6e73_6673;

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("invalid container id {id:?} for a network namespace name")]
    InvalidId { id: String },
    #[error("creating directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("making {path} a shared mount point")]
    SharedMount {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("network namespace {path} already exists")]
    Exists { path: PathBuf },
    #[error("creating mount point {path}")]
    CreateFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unsharing the network namespace for {path}")]
    Unshare {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("bind-mounting the new network namespace on {path}")]
    Bind {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the thread creating network namespace {path} panicked")]
    ThreadPanicked { path: PathBuf },
    #[error("spawning the thread that creates network namespace {path}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unmounting network namespace {path}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("removing network namespace file {path}")]
    RemoveFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Serialises the shared-directory mount between `berth` processes: without it, a remove that
/// finds the directory empty can detach its mount between a create's [`ensure_shared_dir`] and
/// its bind, hiding the new namespace or failing the create's propagation change (EINVAL).
/// Held for a few mount calls only.
fn dir_lock(run_dir: &Path) -> Result<FileLock, NetnsError> {
    fs::create_dir_all(run_dir).map_err(|source| NetnsError::CreateDir {
        path: run_dir.to_path_buf(),
        source,
    })?;
    Ok(FileLock::exclusive(&run_dir.join("netns.lock"))?)
}

/// Per-container network namespaces under a run directory.
pub struct Netns;

impl Netns {
    /// Where the namespace of `container_id` is (or would be) mounted.
    pub fn path(run_dir: &Path, container_id: &str) -> PathBuf {
        run_dir.join("netns").join(container_id)
    }

    /// Creates a new, empty network namespace and pins it at [`Netns::path`]; returns that path.
    pub fn create(run_dir: &Path, container_id: &str) -> Result<PathBuf, NetnsError> {
        if container_id.is_empty() || container_id.contains('/') || container_id.starts_with('.') {
            return Err(NetnsError::InvalidId {
                id: container_id.to_string(),
            });
        }
        let dir = run_dir.join("netns");
        let _lock = dir_lock(run_dir)?;
        ensure_shared_dir(&dir)?;
        let path = dir.join(container_id);
        if is_netns(&path) {
            return Err(NetnsError::Exists { path });
        }
        // The mount point must exist as a file before the bind mount; an empty file left by an
        // interrupted create is reused.
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| NetnsError::CreateFile {
                path: path.clone(),
                source,
            })?;
        // unshare(CLONE_NEWNET) moves only the calling thread (namespaces are per task), so a
        // short-lived thread does it and pins its namespace by bind mount before exiting; the
        // other threads of berth (tokio's workers) never change namespace. The thread's exit
        // drops its reference, leaving the mount as the only one.
        let target = path.clone();
        let handle = std::thread::Builder::new()
            .name("berth-netns".into())
            .spawn(move || -> Result<(), NetnsError> {
                // SAFETY: CLONE_NEWNET does not unshare the fd table, the only flag the safety
                // contract of unshare_unsafe is about; this thread ends right after.
                unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }.map_err(|e| {
                    NetnsError::Unshare {
                        path: target.clone(),
                        source: e.into(),
                    }
                })?;
                mount_bind("/proc/thread-self/ns/net", &target).map_err(|e| NetnsError::Bind {
                    path: target.clone(),
                    source: e.into(),
                })
            })
            .map_err(|source| NetnsError::Spawn {
                path: path.clone(),
                source,
            })?;
        let made = handle
            .join()
            .map_err(|_| NetnsError::ThreadPanicked { path: path.clone() })?;
        if let Err(e) = made {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok(path)
    }

    /// Unmounts and deletes the namespace of `container_id`; nothing to do when it is gone.
    /// The kernel frees the namespace (and the container ends of its veths) once no process
    /// is left in it.
    pub fn remove(run_dir: &Path, container_id: &str) -> Result<(), NetnsError> {
        let path = Self::path(run_dir, container_id);
        let _lock = dir_lock(run_dir)?;
        remove_path(&path)?;
        release_shared_dir(&run_dir.join("netns"))
    }
}

pub(crate) fn remove_path(path: &Path) -> Result<(), NetnsError> {
    if is_netns(path) {
        // MNT_DETACH: a process that still has the file open (a plugin mid-run) must not make
        // the unmount fail; the namespace lives on only as long as that reference.
        unmount(path, UnmountFlags::DETACH).map_err(|e| NetnsError::Unmount {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetnsError::RemoveFile {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Whether `path` is a mounted namespace file (and not just the empty mount point left after
/// a reboot or a crash).
pub fn is_netns(path: &Path) -> bool {
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type == NSFS_MAGIC)
}

/// Undoes [`ensure_shared_dir`] once no namespace is pinned in `dir`, so nothing of berth
/// stays mounted when no container has a namespace. Callers hold [`dir_lock`].
fn release_shared_dir(dir: &Path) -> Result<(), NetnsError> {
    let empty = fs::read_dir(dir).is_ok_and(|mut rd| rd.next().is_none());
    if empty && is_mount_point(dir) {
        unmount(dir, UnmountFlags::DETACH).map_err(|e| NetnsError::Unmount {
            path: dir.to_path_buf(),
            source: e.into(),
        })?;
    }
    Ok(())
}

/// Makes `dir` a shared mount point of its own, as `ip netns` does for /run/netns: mount
/// namespaces copied from ours later (a runtime's, before pivot_root) then see our unmounts,
/// instead of keeping a copy of the bind mount that would hold the namespace alive.
fn ensure_shared_dir(dir: &Path) -> Result<(), NetnsError> {
    fs::create_dir_all(dir).map_err(|source| NetnsError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let shared = |flags| {
        mount_change(dir, flags).map_err(|e| NetnsError::SharedMount {
            path: dir.to_path_buf(),
            source: e.into(),
        })
    };
    if is_mount_point(dir) {
        return shared(MountPropagationFlags::SHARED | MountPropagationFlags::REC);
    }
    mount_bind(dir, dir).map_err(|e| NetnsError::SharedMount {
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    shared(MountPropagationFlags::SHARED | MountPropagationFlags::REC)
}
