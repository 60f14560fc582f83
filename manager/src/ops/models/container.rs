//! Containers in the Docker Engine API's shapes: the create request (`Config` +
//! `HostConfig` + `NetworkingConfig`, what `POST /containers/create` carries and what
//! `berth run`'s flags parse into), `ContainerJSON` (inspect) and the list summary.
//!
//! Field names are docker's; only the fields berth acts on are modelled (unknown fields of a
//! request are ignored, as dockerd ignores fields of newer API versions).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::serde_helpers::{is_false, is_zero, null_default, str_slice};

/// An empty JSON object (`"ExposedPorts": {"80/tcp": {}}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `POST /containers/create`: the container's `Config` fields at the top level, plus its
/// `HostConfig` and `NetworkingConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateRequest {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(default, deserialize_with = "null_default")]
    pub host_config: HostConfig,
    #[serde(default, deserialize_with = "null_default")]
    pub networking_config: NetworkingConfig,
}

/// The portable part of a container's configuration (docker's `container.Config`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    #[serde(deserialize_with = "null_default")]
    pub hostname: String,
    #[serde(deserialize_with = "null_default")]
    pub domainname: String,
    /// `name|uid[:group|gid]`; the image's user when empty.
    #[serde(deserialize_with = "null_default")]
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// `port/proto` keys, e.g. `80/tcp`.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub exposed_ports: BTreeMap<String, Empty>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    /// `KEY=VALUE` entries, added to the image's (null when none).
    #[serde(
        deserialize_with = "null_default",
        serialize_with = "super::serde_helpers::empty_as_null"
    )]
    pub env: Vec<String>,
    /// Replaces the image's Cmd when given.
    #[serde(deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    pub image: String,
    /// Paths that get an anonymous volume, as the image's VOLUMEs do (null when none).
    #[serde(
        deserialize_with = "null_default",
        serialize_with = "super::serde_helpers::empty_map_as_null"
    )]
    pub volumes: BTreeMap<String, Empty>,
    #[serde(deserialize_with = "null_default")]
    pub working_dir: String,
    /// Replaces the image's Entrypoint (and drops its Cmd) when given; `[]` or `[""]`
    /// resets it.
    #[serde(deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(
        deserialize_with = "null_default",
        serialize_with = "super::serde_helpers::empty_map_as_null"
    )]
    pub labels: BTreeMap<String, String>,
    /// A signal name or number; the image's, else SIGTERM, when empty.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
    /// Seconds `stop` waits before SIGKILL (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// An image's ONBUILD triggers (image inspect; ignored by create; null when none).
    #[serde(
        deserialize_with = "null_default",
        serialize_with = "super::serde_helpers::empty_as_null"
    )]
    pub on_build: Vec<String>,
    /// An image's SHELL (image inspect; ignored by create).
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub shell: Vec<String>,
}

/// A health check (docker's `HealthConfig`); durations in nanoseconds, 0 = inherit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` disable, `["CMD", args...]`, `["CMD-SHELL", script]`.
    #[serde(deserialize_with = "null_default")]
    pub test: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub interval: i64,
    #[serde(deserialize_with = "null_default")]
    pub timeout: i64,
    #[serde(deserialize_with = "null_default")]
    pub start_period: i64,
    #[serde(deserialize_with = "null_default")]
    pub retries: i64,
}

/// Host-specific configuration (docker's `container.HostConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `-v` values: `/host:/ctr[:opts]`, `name:/ctr[:opts]` or `/ctr`.
    #[serde(deserialize_with = "null_default")]
    pub binds: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub log_config: LogConfig,
    /// `bridge` (also when empty or `default`), `none`, `host`, `container:<id>` or a
    /// network's name.
    #[serde(deserialize_with = "null_default")]
    pub network_mode: String,
    /// `port/proto` → the host addresses it is published on.
    #[serde(deserialize_with = "null_default")]
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    #[serde(deserialize_with = "null_default")]
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    #[serde(deserialize_with = "null_default")]
    pub cap_add: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub cap_drop: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub dns: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub dns_options: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub dns_search: Vec<String>,
    /// `host:ip` (or `host:host-gateway`).
    #[serde(deserialize_with = "null_default")]
    pub extra_hosts: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub ipc_mode: String,
    #[serde(deserialize_with = "null_default")]
    pub pid_mode: String,
    #[serde(rename = "UTSMode", deserialize_with = "null_default")]
    pub uts_mode: String,
    pub privileged: bool,
    pub publish_all_ports: bool,
    pub readonly_rootfs: bool,
    #[serde(deserialize_with = "null_default")]
    pub security_opt: Vec<String>,
    /// Target → mount options (`size=64m,noexec`).
    #[serde(deserialize_with = "null_default")]
    pub tmpfs: BTreeMap<String, String>,
    /// Bytes of /dev/shm; 0 = 64 MiB.
    pub shm_size: i64,
    /// `berth-runtime` (when empty), `runc`, `crun` or a path.
    #[serde(deserialize_with = "null_default")]
    pub runtime: String,
    /// Bytes; 0 = unlimited.
    pub memory: i64,
    pub memory_reservation: i64,
    /// Memory plus swap in bytes; -1 unlimited swap, 0 the default (twice Memory).
    pub memory_swap: i64,
    /// Billionths of a CPU; 0 = unlimited.
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    #[serde(deserialize_with = "null_default")]
    pub cpuset_cpus: String,
    /// 0 or -1 (or absent) = unlimited.
    pub pids_limit: Option<i64>,
    #[serde(deserialize_with = "null_default")]
    pub ulimits: Vec<Ulimit>,
    /// Legacy links: `container:alias` (or inspect's `/container:/linker/alias`).
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub links: Vec<String>,
    /// `--sysctl`: namespaced kernel parameters.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub sysctls: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    pub devices: Vec<DeviceMapping>,
    #[serde(deserialize_with = "null_default")]
    pub mounts: Vec<Mount>,
    /// Run an init (tini) as PID 1.
    pub init: Option<bool>,
    /// Supplementary groups of the process: names (from the image's /etc/group) or ids.
    #[serde(
        deserialize_with = "super::serde_helpers::strings_or_numbers",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub group_add: Vec<String>,
    /// Fields berth does not model (`CgroupnsMode`, `VolumeDriver`, ...): kept so that
    /// inspect shows them as the client sent them, as docker echoes its HostConfig.
    #[serde(flatten)]
    pub unmodelled: serde_json::Map<String, serde_json::Value>,
}

/// `LogConfig`: only the json-file driver exists; its options are `max-size` and `max-file`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(deserialize_with = "null_default")]
    pub r#type: String,
    #[serde(deserialize_with = "null_default")]
    pub config: BTreeMap<String, String>,
}

/// One host address a container port is published on; empty = any address / any port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    #[serde(deserialize_with = "null_default")]
    pub host_ip: String,
    #[serde(deserialize_with = "null_default")]
    pub host_port: String,
}

/// `RestartPolicy`: `""`/`no`, `always`, `unless-stopped` or `on-failure` (at most
/// `MaximumRetryCount` times, 0 = no limit).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    pub maximum_retry_count: i64,
}

/// `ulimit` entry: -1 for unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// `--device`: a host device node, its path in the container and cgroup permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    /// Some of `r`, `w`, `m`; `rwm` when empty.
    pub cgroup_permissions: String,
}

/// `--mount` (docker's `mount.Mount`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mount {
    /// `bind`, `volume` or `tmpfs`.
    pub r#type: String,
    /// Host path (bind) or volume name (empty: anonymous volume).
    #[serde(deserialize_with = "null_default")]
    pub source: String,
    pub target: String,
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    /// `shared`, `rshared`, `slave`, `rslave`, `private`, `rprivate`; none when empty.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub propagation: String,
    /// Create a missing source directory (what `-v` does).
    #[serde(skip_serializing_if = "is_false")]
    pub create_mountpoint: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    #[serde(skip_serializing_if = "is_false")]
    pub no_copy: bool,
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    /// Bytes; 0 = the kernel's default.
    #[serde(skip_serializing_if = "is_zero")]
    pub size_bytes: i64,
    /// File mode of the tmpfs root; 0 = 1777.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub mode: u32,
    /// Extra mount flags, each `[flag]` (`[["noexec"]]`), as API 1.46 has them.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<Vec<String>>,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// `NetworkingConfig`: the endpoint settings of each network the container joins at create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    #[serde(deserialize_with = "null_default")]
    pub endpoints_config: BTreeMap<String, EndpointSettings>,
}

/// One network endpoint: what is asked for at create (`Aliases`, `IPAMConfig`) and what
/// inspect reports (`IPAddress`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    /// null when no address was asked for, as docker shows it.
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    /// Legacy links over this network (docker: null when none).
    #[serde(
        deserialize_with = "null_default",
        serialize_with = "super::serde_helpers::empty_as_null"
    )]
    pub links: Vec<String>,
    #[serde(
        deserialize_with = "null_default",
        serialize_with = "super::serde_helpers::empty_as_null"
    )]
    pub aliases: Vec<String>,
    #[serde(rename = "NetworkID", deserialize_with = "null_default")]
    pub network_id: String,
    #[serde(rename = "EndpointID", deserialize_with = "null_default")]
    pub endpoint_id: String,
    #[serde(deserialize_with = "null_default")]
    pub gateway: String,
    #[serde(rename = "IPAddress", deserialize_with = "null_default")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway", deserialize_with = "null_default")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address", deserialize_with = "null_default")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    #[serde(deserialize_with = "null_default")]
    pub mac_address: String,
    pub driver_opts: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointIpamConfig {
    #[serde(
        rename = "IPv4Address",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_address: String,
}

/// The answer to a create: the new container's id and warnings for the user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateResponse {
    pub id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub warnings: Vec<String>,
}

/// `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerWaitResponse {
    pub status_code: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<WaitError>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitError {
    pub message: String,
}

/// Docker's wait conditions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitCondition {
    /// Returns at once when the container is not running.
    #[default]
    NotRunning,
    /// Waits for the next exit even when the container is not running now.
    NextExit,
    /// Waits until the container is removed.
    Removed,
}

/// `POST /containers/{id}/exec`: a process to run in a running container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach: bool,
    pub tty: bool,
    /// `KEY=VALUE` entries added to the container's.
    #[serde(deserialize_with = "null_default")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub cmd: Vec<String>,
    /// `name|uid[:group|gid]`, resolved in the container; the container's user when empty.
    #[serde(deserialize_with = "null_default")]
    pub user: String,
    #[serde(deserialize_with = "null_default")]
    pub working_dir: String,
    pub privileged: bool,
}
