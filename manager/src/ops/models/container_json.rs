//! What the container operations report: docker's `ContainerJSON` (inspect) and the
//! `ContainerSummary` of a list, with the fields berth fills.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::container::{
    Empty, EndpointSettings, HealthConfig, LogConfig, PortBinding, RestartPolicy,
};
use super::serde_helpers::is_false;

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: ContainerState,
    /// The image's id (config digest).
    pub image: String,
    /// The generated /etc files the container sees (empty when it has none).
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: PathBuf,
    /// `/name`.
    pub name: String,
    pub restart_count: u32,
    /// The snapshotter of the container's root filesystem.
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    /// Exec sessions of the container (berth keeps none once they end: null, as docker
    /// shows a container without any).
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: InspectHostConfig,
    pub graph_driver: GraphDriver,
    pub mounts: Vec<MountPoint>,
    pub config: InspectConfig,
    pub network_settings: NetworkSettings,
}

/// `GraphDriver`: the snapshotter and the directories of the container's root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub data: BTreeMap<String, String>,
    pub name: String,
}

/// `State` of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    /// `created`, `running`, `paused`, `restarting`, `exited` or `dead`.
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// Only for a container with a health check (docker's omitempty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthLog>,
}

/// One probe's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthLog {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// The `HostConfig` fields inspect reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectHostConfig {
    /// Always the json-file driver, with its options.
    pub log_config: LogConfig,
    pub runtime: String,
    pub network_mode: String,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    pub memory: i64,
    pub nano_cpus: i64,
    /// null when unlimited, as docker.
    pub pids_limit: Option<i64>,
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    /// Absent when none were set, as docker's omitempty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// `/target:/container/alias`; null when there are none.
    #[serde(default, serialize_with = "super::serde_helpers::empty_as_null")]
    pub links: Vec<String>,
    /// The rest of docker's HostConfig: the create request's values over docker's
    /// defaults (never a key of the fields above).
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// The `Config` fields inspect reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// Absent when there are none (docker's omitempty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, Empty>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// The image as the user named it.
    pub image: String,
    /// The image's volumes and anonymous `-v` ones; null when none.
    pub volumes: Option<BTreeMap<String, Empty>>,
    pub working_dir: String,
    pub entrypoint: Vec<String>,
    pub on_build: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    /// Only when the image or the request set one (docker's omitempty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
}

/// `NetworkSettings`: the networks joined and the published ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    pub networks: BTreeMap<String, EndpointSettings>,
    pub ports: BTreeMap<String, Vec<PortBinding>>,
    /// docker's legacy top-level fields (`IPAddress`, `Gateway`, `SandboxKey`, ...): the
    /// default bridge network's endpoint, empty otherwise.
    #[serde(flatten)]
    pub legacy: serde_json::Map<String, serde_json::Value>,
}

/// A mount of the container (`Mounts` of inspect and of a list entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    pub r#type: String,
    /// The volume's name, for volumes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    /// `local` for volumes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// The options of a `-v` bind (`ro`, `z`, ...).
    #[serde(default)]
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    /// `rprivate` (or what the request chose) for binds, empty for the others.
    #[serde(default)]
    pub propagation: String,
    /// An anonymous volume, removed with the container by `rm -v` and `--rm`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub anonymous: bool,
}

/// One entry of `GET /containers/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    /// `/name`.
    pub names: Vec<String>,
    /// The image as the user named it.
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    /// The process's arguments joined by spaces.
    pub command: String,
    /// Unix seconds.
    pub created: i64,
    pub ports: Vec<Port>,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    /// docker's human status: `Up 5 seconds (healthy)`, `Exited (0) 2 minutes ago`, ...
    pub status: String,
    pub host_config: SummaryHostConfig,
    pub network_settings: SummaryNetworkSettings,
    pub mounts: Vec<MountPoint>,
    /// With `size`: the container's own layer, and that plus its image.
    #[serde(rename = "SizeRw", default, skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(
        rename = "SizeRootFs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub size_root_fs: Option<i64>,
    /// The creation time as recorded (RFC 3339 with nanoseconds), for renderers that show
    /// it; not part of docker's JSON.
    #[serde(skip)]
    pub created_at: String,
}

/// A published port of a list entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Port {
    /// The host address; empty for all addresses.
    #[serde(rename = "IP", default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    pub private_port: u16,
    #[serde(default)]
    pub public_port: u16,
    /// `tcp` or `udp`.
    pub r#type: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryHostConfig {
    pub network_mode: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryNetworkSettings {
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// `GET /containers/{id}/top`: the process table; `raw` is the runtime's `ps` output as
/// printed (what `berth top` shows).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerTopResponse {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
    #[serde(skip)]
    pub raw: Vec<u8>,
}

impl ContainerTopResponse {
    /// Splits `ps` output into titles and rows: the last column (the command) keeps its
    /// spaces, as docker parses it.
    pub fn parse(raw: Vec<u8>) -> Self {
        let text = String::from_utf8_lossy(&raw).into_owned();
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let titles: Vec<String> = lines
            .next()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let n = titles.len().max(1);
        let processes = lines
            .map(|l| {
                let mut row: Vec<String> = Vec::with_capacity(n);
                let mut rest = l.trim_start();
                while row.len() + 1 < n {
                    match rest.split_once(char::is_whitespace) {
                        Some((field, tail)) => {
                            row.push(field.to_string());
                            rest = tail.trim_start();
                        }
                        None => break,
                    }
                }
                row.push(rest.to_string());
                row
            })
            .collect();
        Self {
            titles,
            processes,
            raw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_output_splits_into_titles_and_rows_with_the_command_whole() {
        let raw =
            b"UID  PID  PPID  CMD\nroot 10   1     sleep 60\nroot 11 10 sh -c echo a b\n".to_vec();
        let t = ContainerTopResponse::parse(raw);
        assert_eq!(t.titles, ["UID", "PID", "PPID", "CMD"]);
        assert_eq!(t.processes[0], ["root", "10", "1", "sleep 60"]);
        assert_eq!(t.processes[1], ["root", "11", "10", "sh -c echo a b"]);
    }
}
