//! Pure parsers for `berth run`/`create` flags, following docker's syntax and error wording.
//!
//! Each parser takes the flag's raw value and returns a typed value or a [`FlagError`] naming the
//! flag and the value at fault. Nothing here touches the filesystem except `--env-file`, which
//! reads the file it names.

mod env;
mod mounts;
mod process;
mod resources;
mod security;
mod sysctl;

use std::path::PathBuf;

pub use env::{parse_env, parse_env_file, parse_env_file_contents};
pub(crate) use mounts::clean;
pub use mounts::{
    parse_device, parse_mount, parse_tmpfs, parse_volume, DeviceRequest, MountKind, MountRequest,
    Propagation, TmpfsOptions,
};
pub(crate) use process::parse_signal;
pub use process::{
    parse_add_host, parse_duration, parse_label, parse_restart, parse_stop_signal, parse_user,
    ExtraHost, HostAddr, RestartPolicy, Signal,
};
pub use resources::{
    parse_bytes, parse_cpu_shares, parse_cpus, parse_cpuset, parse_memory_swap, parse_pids_limit,
    parse_ulimit, NanoCpus, Ulimit,
};
pub use security::{parse_capability, parse_security_opt, CapSpec, SecurityOpt};
pub use sysctl::{check_sysctl, parse_sysctl, sysctl_namespace, SysctlNamespace};

#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// The value does not follow the flag's syntax or is out of range.
    #[error("invalid {flag} {value:?}: {reason}")]
    Invalid {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid {flag} {value:?}: not a number")]
    Number {
        flag: &'static str,
        value: String,
        #[source]
        source: std::num::ParseIntError,
    },
    #[error("creating bind source directory {path}")]
    CreateHostDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading --env-file {path}")]
    ReadEnvFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--env-file {path} line {line}: {reason}")]
    EnvFileLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

fn invalid(flag: &'static str, value: &str, reason: impl Into<String>) -> FlagError {
    FlagError::Invalid {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Parses a decimal integer, reporting the flag on failure.
fn int<T: std::str::FromStr<Err = std::num::ParseIntError>>(
    flag: &'static str,
    value: &str,
) -> Result<T, FlagError> {
    value.parse().map_err(|source| FlagError::Number {
        flag,
        value: value.to_string(),
        source,
    })
}

/// Go's strconv.ParseBool, which docker uses for boolean option values.
fn parse_bool(flag: &'static str, value: &str) -> Result<bool, FlagError> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(invalid(flag, value, "expected true or false")),
    }
}
