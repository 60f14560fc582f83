//! Everything that talks to the kernel to build a container lives under this module, in small
//! functions named after what they do, so the lifecycle code above reads like the OCI spec.

pub mod clone;
pub mod exec;
pub mod init;
pub mod inroot;
pub mod mount;
pub mod namespaces;
pub mod proc;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod security;
pub mod tty;
pub mod user;

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

/// A failure while setting up the container. Inside the container's init these are formatted
/// and sent to the parent, which reports them.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{call}({detail})")]
    Syscall {
        call: &'static str,
        detail: String,
        #[source]
        source: Errno,
    },
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("resolving {path} inside the container root")]
    InRoot {
        path: PathBuf,
        #[source]
        source: pathrs::error::Error,
    },
    #[error("resolving {path} inside the container root")]
    InRootSys {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("mounts[{index}] ({destination}): {reason}")]
    MountConfig {
        index: usize,
        destination: PathBuf,
        reason: String,
    },
    #[error("{path} is not on procfs: refusing to write to it")]
    NotProcfs { path: PathBuf },
    #[error("capability {name}: {reason}")]
    Capability { name: String, reason: String },
    #[error("exec: {arg0:?}: {reason}")]
    Exec { arg0: String, reason: String },
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error(transparent)]
    Security(#[from] security::SecurityError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
}

/// Shorthand for a failed syscall with a description of its arguments.
pub(crate) fn sys(
    call: &'static str,
    detail: impl std::fmt::Display,
) -> impl FnOnce(Errno) -> SetupError {
    let detail = detail.to_string();
    move |source| SetupError::Syscall {
        call,
        detail,
        source,
    }
}
