//! What the user asked for, already parsed and resolved: the input of [`super::generate`].
//!
//! Grouped by concern so a caller fills one sub-struct per flag family; every field's default
//! is docker's default behaviour.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::flags::{CapSpec, DeviceRequest, NanoCpus, Propagation, TmpfsOptions, Ulimit};

/// Everything [`super::generate`] needs besides the image config.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Options {
    /// Host path of the mounted root filesystem (the spec's `root.path`); users and groups are
    /// looked up in its /etc/passwd and /etc/group.
    pub rootfs: PathBuf,
    pub process: ProcessOptions,
    pub security: SecurityOptions,
    pub resources: ResourceOptions,
    pub ulimits: Vec<Ulimit>,
    /// `--sysctl`: namespaced kernel parameters (`linux.sysctl`), already checked.
    pub sysctls: BTreeMap<String, String>,
    /// Bind and tmpfs mounts, in the order given; named and anonymous volumes are already
    /// resolved by the caller to a host directory (a bind).
    pub mounts: Vec<ResolvedMount>,
    pub devices: Vec<DeviceRequest>,
    pub namespaces: NamespaceOptions,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    /// `(container path, host path)` of generated files such as /etc/hosts, /etc/resolv.conf
    /// and /etc/hostname, bind-mounted over the image's.
    pub etc_files: Vec<(PathBuf, PathBuf)>,
    /// `linux.cgroupsPath`; left to the runtime's default when `None`.
    pub cgroups_path: Option<PathBuf>,
    pub annotations: BTreeMap<String, String>,
}

/// The container's main process.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ProcessOptions {
    /// Arguments after the image name (`berth run IMAGE ARGS...`): replace the image's Cmd.
    pub cmd: Option<Vec<String>>,
    /// `--entrypoint`: replaces the image's Entrypoint and drops its Cmd; `Some(vec![])`
    /// (`--entrypoint ""`) resets the entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` entries from -e and --env-file, already resolved; later entries win.
    pub env: Vec<String>,
    /// `-u`: `uid`, `uid:gid`, `name`, `name:group`, `uid:group`; the image's User when `None`.
    pub user: Option<String>,
    /// `--group-add`: extra groups (names from the image's /etc/group, or numeric ids).
    pub group_add: Vec<String>,
    /// `-w`: the image's WorkingDir when `None`, then "/".
    pub workdir: Option<String>,
    pub tty: bool,
    /// `-i`: not part of the spec (the caller wires stdin); kept so one struct holds the
    /// process flags.
    pub stdin_open: bool,
    /// `--init`: host path of an init binary (e.g. /usr/bin/tini-static) mounted read-only at
    /// /sbin/docker-init, which then runs the command as `/sbin/docker-init -- args...`.
    pub init: Option<PathBuf>,
}

/// Capabilities, seccomp and the other confinement switches.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SecurityOptions {
    pub cap_add: Vec<CapSpec>,
    pub cap_drop: Vec<CapSpec>,
    pub privileged: bool,
    pub no_new_privileges: bool,
    pub seccomp: SeccompMode,
    /// `--read-only`: the root filesystem is mounted read-only.
    pub read_only: bool,
    /// `--security-opt systempaths=unconfined`: no masked or read-only paths.
    pub unmask_system_paths: bool,
    /// `--security-opt writable-cgroups=true`: /sys/fs/cgroup is mounted read-write.
    pub writable_cgroups: bool,
}

/// Which seccomp filter the container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SeccompMode {
    /// Docker's default profile.
    #[default]
    Default,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=<file>`: a profile in docker's JSON format.
    Profile(PathBuf),
}

/// cgroup limits (`linux.resources`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ResourceOptions {
    /// `--memory`, bytes.
    pub memory: Option<u64>,
    /// `--memory-swap`, bytes of memory plus swap; -1 means unlimited swap. Without it, swap
    /// is limited to the memory limit (twice --memory in all). Dropped when the kernel does
    /// not account swap, where docker only warns.
    pub memory_swap: Option<i64>,
    /// `--memory-reservation`, bytes.
    pub memory_reservation: Option<u64>,
    pub cpus: Option<NanoCpus>,
    pub cpu_shares: Option<u64>,
    /// `--cpuset-cpus`, a validated list such as `0-2,4`.
    pub cpuset_cpus: Option<String>,
    /// `--pids-limit`; zero or negative means unlimited (as docker).
    pub pids_limit: Option<i64>,
    /// `--shm-size`, bytes; 64 MiB when `None`.
    pub shm_size: Option<u64>,
}

/// A mount with its source on the host already known.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResolvedMount {
    /// Absolute path inside the container.
    pub target: PathBuf,
    pub readonly: bool,
    pub source: ResolvedSource,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ResolvedSource {
    /// A host file or directory (bind mounts and resolved volumes).
    Bind {
        path: PathBuf,
        propagation: Option<Propagation>,
    },
    Tmpfs(TmpfsOptions),
}

/// The namespaces a container may share with the host or another container.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct NamespaceOptions {
    pub network: NamespaceMode,
    pub pid: NamespaceMode,
    pub ipc: NamespaceMode,
    pub uts: NamespaceMode,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NamespaceMode {
    /// A new namespace of its own.
    #[default]
    Private,
    /// The host's (the runtime's) namespace: no entry in `linux.namespaces`.
    Host,
    /// Join an existing namespace, e.g. /proc/<pid>/ns/net or a bind-mounted netns file.
    Path(PathBuf),
}
