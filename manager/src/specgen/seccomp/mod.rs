//! Seccomp: docker's default profile (as a Rust table) and user profiles in docker's JSON
//! format, both turned into the spec's `linux.seccomp` for the container's capabilities.

mod default;
mod profile;

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;

pub use default::default_profile;
pub use profile::{ArchMap, Filter, Profile, SyscallRule};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("opening seccomp profile {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing seccomp profile {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("seccomp profile {path}: syscall entry {index} sets both name and names")]
    NameAndNames { path: PathBuf, index: usize },
    #[error("seccomp profile {path}: syscall entry {index} has no names")]
    NoNames { path: PathBuf, index: usize },
    #[error("seccomp profile {path}: invalid minKernel {version:?}")]
    MinKernel { path: PathBuf, version: String },
    #[error("seccomp profile {path}: building the filter")]
    Build {
        path: PathBuf,
        #[source]
        source: oci_spec::OciSpecError,
    },
}

/// Loads a docker-format profile from `path` and converts it for a container holding `caps`
/// (names without the CAP_ prefix).
pub fn load_profile(path: &Path, caps: &[String]) -> Result<LinuxSeccomp, SeccompError> {
    let text = std::fs::read(path).map_err(|source| SeccompError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let profile: Profile = serde_json::from_slice(&text).map_err(|source| SeccompError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    profile.to_oci(path, caps)
}
