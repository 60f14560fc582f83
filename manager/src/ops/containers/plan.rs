//! A create request checked and translated into what the lower modules take: the spec
//! generator's options, the mounts to resolve, the network plan and the record's settings.
//! Every value is checked here, before anything is made, so a bad request leaves nothing
//! behind; [`check`] lets a front end validate before it pulls the image.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::container::record::{HealthConfig as RecordHealth, RestartPolicy as RecordRestart};
use crate::network::{PortMapping, Protocol};
use crate::ops::error::{OpsError, Result};
use crate::ops::models::{
    ContainerCreateRequest, HealthConfig, Mount, RestartPolicy, TmpfsOptions as ModelTmpfs,
};
use crate::specgen::flags::{self as f, FlagError, MountKind, MountRequest};
use crate::specgen::{self, ImageConfig, NamespaceMode, Options};

/// The checked request.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub mounts: Vec<MountRequest>,
    pub restart: RecordRestart,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u64>,
    /// docker's StdinOnce: the container's stdin closes when an attached client's input ends.
    pub stdin_once: bool,
    /// docker's AttachStdin/AttachStdout/AttachStderr, kept for inspect.
    pub attach: [bool; 3],
    pub options: Options,
    pub health: HealthFlags,
    /// `bridge`, `none`, `host`, `container:<name|id>` or a network's name.
    pub network: String,
    pub aliases: Vec<String>,
    pub ip: Option<Ipv4Addr>,
    /// Further networks joined at start, with their aliases and addresses.
    pub extra_networks: Vec<ExtraNetwork>,
    pub publish: Vec<PortMapping>,
    pub publish_all: bool,
    pub exposed_ports: Vec<String>,
    pub extra_hosts: Vec<f::ExtraHost>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_option: Vec<String>,
    /// Legacy links: `(container, alias)`; the alias resolves to the container on a shared
    /// network, for this container only.
    pub links: Vec<(String, String)>,
    pub log_max_size: u64,
    pub log_max_file: u32,
    /// `--log-opt` as given (checked).
    pub log_opts: BTreeMap<String, String>,
    /// The request's HostConfig as given, echoed by inspect as docker does.
    pub host_request: serde_json::Value,
    pub runtime: String,
    pub auto_remove: bool,
    pub warnings: Vec<String>,
}

/// A network joined besides the main one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExtraNetwork {
    pub name: String,
    pub aliases: Vec<String>,
    pub ip: Option<Ipv4Addr>,
}

/// The health check asked for; `None` fields inherit the image's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HealthFlags {
    pub test: Option<Vec<String>>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub retries: Option<u32>,
    pub disabled: bool,
}

/// Checks a create request without making anything; returns the warnings a create would.
pub fn check(req: &ContainerCreateRequest) -> Result<Vec<String>> {
    Ok(Plan::from_request(req)?.warnings)
}

fn ns_mode(flag: &'static str, value: &str) -> Result<NamespaceMode> {
    match value {
        "" | "private" => Ok(NamespaceMode::Private),
        "host" => Ok(NamespaceMode::Host),
        v => Err(OpsError::NamespaceMode {
            flag,
            value: v.to_string(),
        }),
    }
}

fn nanos(n: i64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_nanos(n as u64))
}

impl Plan {
    pub(crate) fn from_request(req: &ContainerCreateRequest) -> Result<Plan> {
        let c = &req.config;
        let h = &req.host_config;
        let mut mounts = Vec::new();
        for b in &h.binds {
            mounts.push(f::parse_volume(b)?);
        }
        for m in &h.mounts {
            mounts.push(mount_from_model(m)?);
        }
        for (target, opts) in &h.tmpfs {
            let spec = if opts.is_empty() {
                target.clone()
            } else {
                format!("{target}:{opts}")
            };
            mounts.push(f::parse_tmpfs(&spec)?);
        }
        for v in c.volumes.keys() {
            let target = PathBuf::from(v);
            if !mounts.iter().any(|m| m.target == target) {
                mounts.push(f::parse_volume(v)?);
            }
        }
        let restart = restart_policy(&h.restart_policy)?;
        let stop_signal = match c.stop_signal.as_str() {
            "" => None,
            s => Some(f::parse_stop_signal(s)?.name()),
        };
        let mut options = Options::default();
        let mut security = specgen::SecurityOptions {
            privileged: h.privileged,
            read_only: h.readonly_rootfs,
            ..Default::default()
        };
        for cap in &h.cap_add {
            security
                .cap_add
                .push(f::parse_capability("--cap-add", cap)?);
        }
        for cap in &h.cap_drop {
            security
                .cap_drop
                .push(f::parse_capability("--cap-drop", cap)?);
        }
        let mut warnings = Vec::new();
        for s in &h.security_opt {
            if let Some(warning) = f::parse_security_opt(s)?.apply(&mut security) {
                warnings.push(warning);
            }
        }
        options.security = security;
        let r = &mut options.resources;
        let positive = |n: i64| (n > 0).then_some(n as u64);
        r.memory = positive(h.memory);
        r.memory_swap = (h.memory_swap != 0).then_some(h.memory_swap);
        r.memory_reservation = positive(h.memory_reservation);
        r.cpus = positive(h.nano_cpus).map(f::NanoCpus);
        r.cpu_shares = positive(h.cpu_shares);
        if !h.cpuset_cpus.is_empty() {
            r.cpuset_cpus = Some(f::parse_cpuset(&h.cpuset_cpus)?);
        }
        r.pids_limit = h.pids_limit;
        r.shm_size = positive(h.shm_size);
        let limited = r.memory.is_some()
            || r.memory_swap.is_some()
            || r.memory_reservation.is_some()
            || r.cpus.is_some()
            || r.cpu_shares.is_some()
            || r.cpuset_cpus.is_some()
            || r.pids_limit.is_some_and(|p| p > 0);
        if limited && crate::rootless::is_rootless() && !crate::rootless::limits_available() {
            warnings.push(
                "Resource limits are discarded: rootless berth has no writable (delegated) cgroup"
                    .into(),
            );
        }
        for u in &h.ulimits {
            options.ulimits.push(ulimit_from_model(u)?);
        }
        for d in &h.devices {
            let perms = if d.cgroup_permissions.is_empty() {
                "rwm"
            } else {
                &d.cgroup_permissions
            };
            let spec = if d.path_in_container.is_empty() {
                format!("{}:{perms}", d.path_on_host)
            } else {
                format!("{}:{}:{perms}", d.path_on_host, d.path_in_container)
            };
            options.devices.push(f::parse_device(&spec)?);
        }
        options.namespaces.pid = ns_mode("pid", &h.pid_mode)?;
        options.namespaces.ipc = ns_mode("ipc", &h.ipc_mode)?;
        options.namespaces.uts = ns_mode("uts", &h.uts_mode)?;
        let network = match h.network_mode.as_str() {
            "" | "default" => crate::network::DEFAULT_NETWORK.to_string(),
            n => n.to_string(),
        };
        if network.trim().is_empty() {
            return Err(OpsError::EmptyNetworkName);
        }
        for (key, value) in &h.sysctls {
            let shared = match f::check_sysctl(key, value)? {
                f::SysctlNamespace::Network if network == "host" => Some("network"),
                f::SysctlNamespace::Ipc if options.namespaces.ipc == NamespaceMode::Host => {
                    Some("ipc")
                }
                _ => None,
            };
            if let Some(ns) = shared {
                return Err(OpsError::Flag(FlagError::Invalid {
                    flag: "--sysctl",
                    value: format!("{key}={value}"),
                    reason: format!("sysctl {key:?} is not allowed in the host {ns} namespace"),
                }));
            }
            options.sysctls.insert(key.clone(), value.clone());
        }
        let mut publish = publish_from_bindings(&h.port_bindings)?;
        let mut publish_all = h.publish_all_ports;
        if network == "host" {
            if !c.hostname.is_empty() {
                return Err(OpsError::HostnameWithHostNetwork);
            }
            if !publish.is_empty() || publish_all {
                warnings.push("Published ports are discarded when using host network mode".into());
                publish.clear();
                publish_all = false;
            }
        } else if (network == "none" || network.starts_with("container:"))
            && (!publish.is_empty() || publish_all)
        {
            return Err(OpsError::PublishWithoutNetns);
        }
        options.hostname = (!c.hostname.is_empty()).then(|| c.hostname.clone());
        options.domainname = (!c.domainname.is_empty()).then(|| c.domainname.clone());
        options.process.user = match c.user.as_str() {
            "" => None,
            u => Some(f::parse_user(u)?),
        };
        options.process.workdir = (!c.working_dir.is_empty()).then(|| c.working_dir.clone());
        options.process.tty = c.tty;
        options.process.stdin_open = c.open_stdin;
        options.process.group_add = h.group_add.clone();
        if h.init == Some(true) {
            options.process.init = Some(init_binary()?);
        }
        options.process.entrypoint = c.entrypoint.as_ref().map(|e| {
            if e.iter().all(String::is_empty) {
                Vec::new()
            } else {
                e.clone()
            }
        });
        let health = health_flags(c.healthcheck.as_ref());
        match h.log_config.r#type.as_str() {
            "" | "json-file" => {}
            d if DOCKER_LOG_DRIVERS.contains(&d) => {
                return Err(OpsError::InvalidField {
                    field: "logging driver (--log-driver, LogConfig.Type)",
                    value: d.to_string(),
                    reason: "not supported: berth has the json-file driver only".into(),
                })
            }
            d => {
                return Err(OpsError::UnknownLogDriver {
                    name: d.to_string(),
                })
            }
        }
        let log = log_options(&h.log_config.config)?;
        let mut extra_hosts = Vec::new();
        for e in &h.extra_hosts {
            extra_hosts.push(f::parse_add_host(e)?);
        }
        for d in &h.dns {
            d.parse::<IpAddr>()
                .map_err(|_| OpsError::DnsNotIp { value: d.clone() })?;
        }
        let links = links(&h.links, &network)?;
        let mut aliases = Vec::new();
        let mut ip = None;
        let mut extra_networks = Vec::new();
        for (name, ep) in &req.networking_config.endpoints_config {
            let addr = match ep.ipam_config.as_ref().map(|i| i.ipv4_address.as_str()) {
                None | Some("") => None,
                Some(a) => Some(a.parse::<Ipv4Addr>().map_err(|_| OpsError::InvalidField {
                    field: "IPAMConfig.IPv4Address",
                    value: a.to_string(),
                    reason: "not an IPv4 address".into(),
                })?),
            };
            if *name == network || (name == "default" && network == crate::network::DEFAULT_NETWORK)
            {
                aliases = ep.aliases.clone();
                ip = addr;
            } else {
                extra_networks.push(ExtraNetwork {
                    name: name.clone(),
                    aliases: ep.aliases.clone(),
                    ip: addr,
                });
            }
        }
        if !extra_networks.is_empty() && !crate::container::lifecycle::is_own_netns_mode(&network) {
            return Err(OpsError::InvalidField {
                field: "NetworkingConfig.EndpointsConfig",
                value: extra_networks
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                reason: format!("network mode {network} cannot join other networks"),
            });
        }
        Ok(Plan {
            env: c.env.clone(),
            cmd: c.cmd.clone().filter(|c| !c.is_empty()),
            mounts,
            restart,
            labels: c.labels.clone(),
            stop_signal,
            stop_timeout: c.stop_timeout.map(|t| t.max(0) as u64),
            stdin_once: c.stdin_once,
            attach: [c.attach_stdin, c.attach_stdout, c.attach_stderr],
            options,
            health,
            network,
            aliases,
            ip,
            extra_networks,
            publish,
            publish_all,
            exposed_ports: c.exposed_ports.keys().cloned().collect(),
            extra_hosts,
            dns: h.dns.clone(),
            dns_search: h.dns_search.clone(),
            dns_option: h.dns_options.clone(),
            links,
            log_max_size: log.max_size.unwrap_or(0),
            log_max_file: log.max_file,
            log_opts: h.log_config.config.clone(),
            host_request: serde_json::to_value(h).unwrap_or_default(),
            runtime: if h.runtime.is_empty() {
                "berth-runtime".into()
            } else {
                h.runtime.clone()
            },
            auto_remove: h.auto_remove,
            warnings,
        })
    }

    /// `stop`'s default timeout for this container.
    pub(crate) fn stop_timeout_or_default(&self) -> u64 {
        self.stop_timeout.unwrap_or(10)
    }
}

pub(crate) fn restart_policy(p: &RestartPolicy) -> Result<RecordRestart> {
    let spec = match (p.name.as_str(), p.maximum_retry_count) {
        (name, 0) => name.to_string(),
        (name, n) => format!("{name}:{n}"),
    };
    Ok(match f::parse_restart(&spec)? {
        f::RestartPolicy::No => RecordRestart::No,
        f::RestartPolicy::Always => RecordRestart::Always,
        f::RestartPolicy::UnlessStopped => RecordRestart::UnlessStopped,
        f::RestartPolicy::OnFailure { max_retries } => RecordRestart::OnFailure {
            max_retries: max_retries.unwrap_or(0),
        },
    })
}

/// `HostConfig.Links`: `name:alias`, `name` (the alias is the name) or inspect's
/// `/name:/linker/alias`.
fn links(list: &[String], network: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for l in list {
        let bad = |reason: &str| OpsError::InvalidField {
            field: "HostConfig.Links",
            value: l.clone(),
            reason: reason.into(),
        };
        if network == "host" {
            return Err(bad("host type networking can't be used with links"));
        }
        let (name, alias) = l.split_once(':').unwrap_or((l, l));
        let name = name.trim_start_matches('/');
        let alias = alias.rsplit('/').next().unwrap_or(alias);
        if name.is_empty() || alias.is_empty() {
            return Err(bad("expected container:alias"));
        }
        out.push((name.to_string(), alias.to_string()));
    }
    Ok(out)
}

fn ulimit_from_model(u: &crate::ops::models::Ulimit) -> Result<f::Ulimit> {
    let spec = format!("{}={}:{}", u.name, u.soft, u.hard);
    Ok(f::parse_ulimit(&spec)?)
}

fn health_flags(h: Option<&HealthConfig>) -> HealthFlags {
    let Some(h) = h else {
        return HealthFlags::default();
    };
    if h.test.first().is_some_and(|t| t == "NONE") {
        return HealthFlags {
            disabled: true,
            ..HealthFlags::default()
        };
    }
    HealthFlags {
        test: (!h.test.is_empty()).then(|| h.test.clone()),
        interval: nanos(h.interval),
        timeout: nanos(h.timeout),
        start_period: nanos(h.start_period),
        retries: (h.retries > 0).then(|| u32::try_from(h.retries).unwrap_or(u32::MAX)),
        disabled: false,
    }
}

/// The health check: the request's over the image's HEALTHCHECK, docker's defaults for
/// the rest.
pub(crate) fn health_config(h: &HealthFlags, image: &ImageConfig) -> Option<RecordHealth> {
    if h.disabled {
        return None;
    }
    let from_image = image.healthcheck.clone().unwrap_or_default();
    let test = match &h.test {
        Some(t) => t.clone(),
        None => from_image.test.clone(),
    };
    if test.is_empty() || test[0] == "NONE" {
        return None;
    }
    let ms = |d: Option<Duration>, default: u64| {
        d.filter(|d| !d.is_zero())
            .map(|d| d.as_millis() as u64)
            .unwrap_or(default)
    };
    Some(RecordHealth {
        test,
        interval_ms: ms(h.interval.or(from_image.interval), 30_000),
        timeout_ms: ms(h.timeout.or(from_image.timeout), 30_000),
        start_period_ms: ms(h.start_period.or(from_image.start_period), 0),
        retries: h
            .retries
            .or(from_image.retries)
            .filter(|r| *r > 0)
            .unwrap_or(3),
    })
}

/// The host's init binary for `--init` (Debian's tini).
fn init_binary() -> Result<PathBuf> {
    [
        "/usr/bin/tini-static",
        "/usr/bin/docker-init",
        "/usr/libexec/docker/docker-init",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .ok_or(OpsError::NoInitBinary)
}

/// `PortBindings` as the network code takes them.
fn publish_from_bindings(
    bindings: &BTreeMap<String, Vec<crate::ops::models::PortBinding>>,
) -> Result<Vec<PortMapping>> {
    let bad = |key: &str, reason: &str| OpsError::InvalidField {
        field: "PortBindings",
        value: key.to_string(),
        reason: reason.to_string(),
    };
    let mut out = Vec::new();
    for (key, list) in bindings {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let container_port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(key, "bad container port"))?;
        let protocol: Protocol = proto
            .parse()
            .map_err(|()| bad(key, "protocol must be tcp or udp"))?;
        for b in list {
            let host_ip = match b.host_ip.trim_matches(['[', ']']) {
                "" => None,
                ip => Some(
                    ip.parse::<IpAddr>()
                        .map_err(|_| bad(key, "bad host address"))?,
                ),
            };
            let host_port = match b.host_port.as_str() {
                "" => 0,
                p => p.parse().map_err(|_| bad(key, "bad host port"))?,
            };
            out.push(PortMapping {
                host_ip,
                host_port,
                container_port,
                protocol,
            });
        }
    }
    Ok(out)
}

/// A `--mount` request as docker's `Mount` model.
pub(crate) fn mount_to_model(m: MountRequest) -> Mount {
    let target = m.target.to_string_lossy().into_owned();
    match m.kind {
        MountKind::Bind {
            source,
            propagation,
            create_missing,
        } => Mount {
            r#type: "bind".into(),
            source: source.to_string_lossy().into_owned(),
            target,
            read_only: m.readonly,
            bind_options: Some(crate::ops::models::BindOptions {
                propagation: propagation
                    .map(|p| p.as_option().to_string())
                    .unwrap_or_default(),
                create_mountpoint: create_missing,
            }),
            ..Mount::default()
        },
        MountKind::Volume { name, nocopy } => Mount {
            r#type: "volume".into(),
            source: name.unwrap_or_default(),
            target,
            read_only: m.readonly,
            volume_options: nocopy.then(|| crate::ops::models::VolumeOptions {
                no_copy: true,
                ..Default::default()
            }),
            ..Mount::default()
        },
        MountKind::Tmpfs(t) => Mount {
            r#type: "tmpfs".into(),
            target,
            read_only: m.readonly,
            tmpfs_options: Some(ModelTmpfs {
                size_bytes: t
                    .size
                    .map(|s| i64::try_from(s).unwrap_or(i64::MAX))
                    .unwrap_or(0),
                mode: t.mode.unwrap_or(0),
                options: t.flags.into_iter().map(|f| vec![f]).collect(),
            }),
            ..Mount::default()
        },
    }
}

/// Docker's `Mount` as a mount request, checked as `--mount` checks it.
pub(crate) fn mount_from_model(m: &Mount) -> Result<MountRequest> {
    let invalid = |reason: String| {
        OpsError::Flag(FlagError::Invalid {
            flag: "--mount",
            value: format!("type={},target={}", m.r#type, m.target),
            reason,
        })
    };
    let target = Path::new(&m.target);
    if !target.is_absolute() {
        return Err(invalid("target must be an absolute path".into()));
    }
    let target = f::clean(target);
    let kind = match m.r#type.as_str() {
        "bind" => {
            if !m.source.starts_with('/') {
                return Err(invalid("bind source must be an absolute path".into()));
            }
            let opts = m.bind_options.clone().unwrap_or_default();
            let propagation = match opts.propagation.as_str() {
                "" => None,
                p => Some(
                    f::Propagation::parse(p)
                        .ok_or_else(|| invalid(format!("invalid bind-propagation: {p}")))?,
                ),
            };
            MountKind::Bind {
                source: f::clean(Path::new(&m.source)),
                propagation,
                create_missing: opts.create_mountpoint,
            }
        }
        "volume" => {
            let name = match m.source.as_str() {
                "" => None,
                n => {
                    crate::volume::validate_name(n).map_err(|e| invalid(e.to_string()))?;
                    Some(n.to_string())
                }
            };
            MountKind::Volume {
                name,
                nocopy: m.volume_options.as_ref().is_some_and(|v| v.no_copy),
            }
        }
        "tmpfs" => {
            let t = m.tmpfs_options.clone().unwrap_or_default();
            MountKind::Tmpfs(f::TmpfsOptions {
                size: (t.size_bytes > 0).then_some(t.size_bytes as u64),
                mode: (t.mode != 0).then_some(t.mode),
                flags: t.options.into_iter().flatten().collect(),
            })
        }
        other => {
            return Err(invalid(format!(
                "invalid mount type '{other}': expected bind, volume or tmpfs"
            )))
        }
    };
    Ok(MountRequest {
        target,
        readonly: m.read_only,
        kind,
    })
}

#[cfg(test)]
mod tests;

/// The logging drivers dockerd has built in besides json-file.
const DOCKER_LOG_DRIVERS: [&str; 12] = [
    "none",
    "local",
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "etwlogs",
    "gcplogs",
    "logentries",
    "loki",
];

/// json-file's options. Without `max-size` dockerd ignores `max-file` (it still has to be
/// a count of at least one), where berth's log writer refuses the pair: it is left out.
fn log_options(opts: &BTreeMap<String, String>) -> Result<crate::logs::LogOptions> {
    let unlimited = opts.get("max-size").is_none_or(|s| s.trim() == "-1");
    if !unlimited {
        return Ok(crate::logs::LogOptions::from_opts(opts)?);
    }
    let mut kept = opts.clone();
    if let Some(n) = kept.remove("max-file") {
        if !n.parse::<u32>().is_ok_and(|n| n >= 1) {
            return Err(OpsError::InvalidField {
                field: "log option max-file",
                value: n,
                reason: "max-file cannot be less than 1".into(),
            });
        }
    }
    Ok(crate::logs::LogOptions::from_opts(&kept)?)
}
