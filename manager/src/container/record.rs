//! What berth remembers about a container: one JSON record per container, rewritten whole
//! (write to a temporary file, rename) under the container's lock.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// A container's lifecycle status, spelled as docker prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Whether a process of the container may be alive (a monitor owns it).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Status::Running | Status::Paused | Status::Restarting | Status::Created
        )
    }
}

/// `--restart`: docker's policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "Name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    OnFailure {
        #[serde(rename = "MaximumRetryCount")]
        max_retries: u32,
    },
}

impl RestartPolicy {
    /// Whether the monitor starts the container again after it exited with `code`, given how
    /// often it restarted already and whether a user stopped it.
    pub fn should_restart(&self, code: i32, restarts: u32, manually_stopped: bool) -> bool {
        if manually_stopped {
            return false;
        }
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max_retries } => {
                code != 0 && (*max_retries == 0 || restarts < *max_retries)
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure { .. } => "on-failure",
        }
    }
}

/// A health check (`--health-*` flags over the image's HEALTHCHECK).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    /// The command run inside the container: `["CMD", args...]` or `["CMD-SHELL", script]`.
    pub test: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub start_period_ms: u64,
    pub retries: u32,
}

/// The result of one health probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthLog {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// `State.Health` as docker reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthLog>,
}

/// A mount of the container as `inspect` lists it, and what `rm -v` needs to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The volume's name for volumes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    /// An anonymous volume (removed with the container by `rm -v` and `--rm`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anonymous: bool,
}

/// A published port (`-p`): host address and port to the container's port and protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

impl From<&crate::network::PortMapping> for PortBinding {
    /// What a published mapping is recorded as (an empty host address: all of them).
    fn from(p: &crate::network::PortMapping) -> Self {
        Self {
            host_ip: p.host_ip.map(|i| i.to_string()).unwrap_or_default(),
            host_port: p.host_port,
            container_port: p.container_port,
            protocol: p.protocol.to_string(),
        }
    }
}

/// What a container asks of one network besides joining it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EndpointConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::Ipv4Addr>,
}

/// How the container was asked to be: fixed at create, shown by `inspect` as Config and
/// HostConfig.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Config {
    /// The process arguments the spec runs (entrypoint + command, resolved).
    pub args: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub hostname: String,
    pub tty: bool,
    pub open_stdin: bool,
    /// docker's StdinOnce (records made before it was kept read as false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdin_once: bool,
    /// The streams a client attached at create (docker's AttachStdin/Stdout/Stderr); older
    /// records read as docker's default, stdout and stderr.
    #[serde(default)]
    pub attach_stdin: bool,
    #[serde(default = "attached_by_default")]
    pub attach_stdout: bool,
    #[serde(default = "attached_by_default")]
    pub attach_stderr: bool,
    pub labels: BTreeMap<String, String>,
    /// Signal name or number sent by `stop` (docker's default SIGTERM).
    pub stop_signal: String,
    /// Seconds `stop` waits before SIGKILL (docker's default 10).
    pub stop_timeout: u64,
    /// Whether the image or the request chose the stop signal / timeout (inspect shows
    /// them then only, as docker).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stop_signal_set: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stop_timeout_set: bool,
    pub healthcheck: Option<HealthConfig>,
    pub exposed_ports: Vec<String>,
    pub restart: RestartPolicy,
    pub auto_remove: bool,
    /// The runtime binary, as resolved at create (`berth-runtime`, `runc`, `crun`, a path).
    pub runtime: String,
    pub runtime_path: PathBuf,
    /// `none`, `host`, `bridge`, `container:<id>` or a network name.
    pub network_mode: String,
    /// Ports as asked for (`-p`, `-P`; host port 0 = any); `ports` holds what was published.
    #[serde(default)]
    pub publish: Vec<crate::network::PortMapping>,
    /// Networks joined later with `network connect`, attached again at every start.
    #[serde(default)]
    pub extra_networks: Vec<String>,
    /// Extra names on user networks (`--network-alias`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Aliases and fixed addresses asked for per network (create's endpoint settings,
    /// `network connect --alias/--ip`), applied at every start.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<String, EndpointConfig>,
    /// What the generated /etc files are made from.
    #[serde(default)]
    pub etc: Option<crate::network::EtcConfig>,
    pub ports: Vec<PortBinding>,
    pub mounts: Vec<MountPoint>,
    pub read_only: bool,
    pub privileged: bool,
    pub memory: i64,
    pub nano_cpus: i64,
    pub pids_limit: i64,
    /// `--sysctl` values, as set in the spec.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// json-file rotation: `max-size` in bytes (0 = unlimited) and `max-file`.
    pub log_max_size: u64,
    pub log_max_file: u32,
    /// `--log-opt` as given, for inspect.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub log_opts: BTreeMap<String, String>,
    /// The attributes written into every log entry (`labels`/`env` log options).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub log_attrs: BTreeMap<String, String>,
    /// `--domainname`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domainname: String,
    /// The create request's HostConfig, for inspect (docker echoes it).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub host_request: serde_json::Value,
}

/// What happens to the container over time, written by the monitor and by the verbs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct State {
    pub status: Status,
    /// The container's init process on the host, while it runs.
    pub pid: i32,
    /// The monitor process that owns the container's stdio, while one lives.
    pub monitor_pid: i32,
    /// Start time of the monitor (field 22 of /proc/<pid>/stat), so a recycled pid is not
    /// taken for it.
    pub monitor_start: u64,
    pub exit_code: i32,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
    pub restart_count: u32,
    /// Set by `stop`/`kill` so restart policies leave the container down.
    pub manually_stopped: bool,
    pub error: String,
    pub health: Option<Health>,
}

/// One container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// The image's config digest (`sha256:...`).
    pub image_id: String,
    /// Snapshotter backend holding the container's writable layer (key = container id).
    pub snapshotter: String,
    /// Network attachments the network code set up (name → address), for inspect.
    #[serde(default)]
    pub networks: BTreeMap<String, serde_json::Value>,
    pub config: Config,
    pub state: State,
}

impl Record {
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }

    /// The container's cgroup, relative to each hierarchy's root (the spec's cgroupsPath).
    pub fn cgroup(&self) -> PathBuf {
        PathBuf::from("/berth").join(&self.id)
    }
}

/// Now as RFC 3339 with nanoseconds in UTC, the form docker records times in.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

fn attached_by_default() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_failure_restarts_only_failures_up_to_the_limit() {
        let p = RestartPolicy::OnFailure { max_retries: 2 };
        assert!(!p.should_restart(0, 0, false));
        assert!(p.should_restart(1, 0, false));
        assert!(p.should_restart(1, 1, false));
        assert!(!p.should_restart(1, 2, false));
        let unlimited = RestartPolicy::OnFailure { max_retries: 0 };
        assert!(unlimited.should_restart(3, 100, false));
    }

    #[test]
    fn a_manual_stop_beats_every_policy() {
        for p in [
            RestartPolicy::Always,
            RestartPolicy::UnlessStopped,
            RestartPolicy::OnFailure { max_retries: 0 },
        ] {
            assert!(!p.should_restart(1, 0, true), "{p:?}");
        }
        assert!(!RestartPolicy::No.should_restart(1, 0, false));
    }

    #[test]
    fn restart_policy_serializes_like_docker_host_config() {
        let v = serde_json::to_value(RestartPolicy::OnFailure { max_retries: 3 }).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        let v = serde_json::to_value(RestartPolicy::UnlessStopped).unwrap();
        assert_eq!(v, serde_json::json!({"Name": "unless-stopped"}));
    }
}
