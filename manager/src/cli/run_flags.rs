//! The flags `create` and `run` share, and their translation into the create request
//! `POST /containers/create` carries (docker's `Config` + `HostConfig` +
//! `NetworkingConfig`), as docker's CLI translates them: values docker's CLI parses (sizes,
//! durations, ports, `--mount`, env files) are parsed here; the rest travels as text and is
//! checked by the operation.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};
use berth::ops::containers::CreateOptions;
use berth::ops::models::{
    ContainerConfig, ContainerCreateRequest, EndpointSettings, HealthConfig, HostConfig, LogConfig,
    NetworkingConfig,
};
use berth::ops::parse;

/// A stream `-a/--attach` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdin,
    Stdout,
    Stderr,
}

/// `-a` takes a stream name in any case, as docker does.
fn parse_stream(s: &str) -> Result<Stream, String> {
    match s.to_ascii_lowercase().as_str() {
        "stdin" => Ok(Stream::Stdin),
        "stdout" => Ok(Stream::Stdout),
        "stderr" => Ok(Stream::Stderr),
        _ => Err("valid streams are STDIN, STDOUT and STDERR".to_string()),
    }
}

/// The flags `create` and `run` share (docker's names).
#[derive(Debug, Clone, clap::Args)]
pub struct Flags {
    /// Assign a name to the container
    #[arg(long)]
    pub(super) name: Option<String>,
    /// Set environment variables
    #[arg(short, long)]
    pub(super) env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long)]
    pub(super) env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub(super) workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub(super) user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub(super) entrypoint: Option<String>,
    /// Bind mount a volume
    #[arg(short, long)]
    pub(super) volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long)]
    pub(super) mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long)]
    pub(super) tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub(super) read_only: bool,
    /// Publish a container's port(s) to the host
    #[arg(short, long)]
    pub(super) publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    pub(super) publish_all: bool,
    /// Connect a container to a network (bridge, none, host, container:<name|id>, or a
    /// network's name; default bridge)
    #[arg(long, visible_alias = "net")]
    pub(super) network: Option<String>,
    /// Add a network-scoped alias for the container
    #[arg(long)]
    pub(super) network_alias: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub(super) hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub(super) domainname: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long)]
    pub(super) add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub(super) dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long)]
    pub(super) dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long)]
    pub(super) dns_option: Vec<String>,
    /// Memory limit
    #[arg(short, long)]
    pub(super) memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long)]
    pub(super) memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long)]
    pub(super) memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub(super) cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    pub(super) cpu_shares: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub(super) cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub(super) pids_limit: Option<String>,
    /// Size of /dev/shm
    #[arg(long)]
    pub(super) shm_size: Option<String>,
    /// Add Linux capabilities
    #[arg(long)]
    pub(super) cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long)]
    pub(super) cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub(super) privileged: bool,
    /// Security Options
    #[arg(long)]
    pub(super) security_opt: Vec<String>,
    /// Add a host device to the container
    #[arg(long)]
    pub(super) device: Vec<String>,
    /// Restart policy to apply when a container exits
    #[arg(long, default_value = "no")]
    pub(super) restart: String,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub(super) init: bool,
    /// Set meta data on a container
    #[arg(short, long)]
    pub(super) label: Vec<String>,
    /// Ulimit options
    #[arg(long)]
    pub(super) ulimit: Vec<String>,
    /// Sysctl options
    #[arg(long)]
    pub(super) sysctl: Vec<String>,
    /// Add link to another container
    #[arg(long)]
    pub(super) link: Vec<String>,
    /// Signal to stop the container
    #[arg(long)]
    pub(super) stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long)]
    pub(super) stop_timeout: Option<u64>,
    /// Command to run to check health
    #[arg(long)]
    pub(super) health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long)]
    pub(super) health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long)]
    pub(super) health_timeout: Option<String>,
    /// Start period for the container to initialize before starting health-retries countdown
    #[arg(long)]
    pub(super) health_start_period: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long)]
    pub(super) health_retries: Option<u32>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long)]
    pub(super) no_healthcheck: bool,
    /// PID namespace to use (host)
    #[arg(long)]
    pub(super) pid: Option<String>,
    /// IPC mode to use (host, private)
    #[arg(long)]
    pub(super) ipc: Option<String>,
    /// UTS namespace to use (host)
    #[arg(long)]
    pub(super) uts: Option<String>,
    /// Log driver options (max-size, max-file)
    #[arg(long)]
    pub(super) log_opt: Vec<String>,
    /// Runtime to use for this container (berth-runtime, runc, crun or a path)
    #[arg(long, default_value = "berth-runtime", env = "BERTH_RUNTIME")]
    pub(super) runtime: String,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pub(super) pull: String,
    /// Set platform if server is multi-platform capable (os/arch[/variant])
    #[arg(long, env = "DOCKER_DEFAULT_PLATFORM")]
    pub(super) platform: Option<String>,
    /// Write the container ID to the file
    #[arg(long)]
    pub(super) cidfile: Option<std::path::PathBuf>,
    /// Logging driver for the container (json-file)
    #[arg(long)]
    pub(super) log_driver: Option<String>,
    /// User namespace to use ("host" or empty: berth's default)
    #[arg(long)]
    pub(super) userns: Option<String>,
    /// Snapshotter for the container's root filesystem: overlay or copy
    #[arg(long, env = "BERTH_SNAPSHOTTER")]
    pub(super) snapshotter: Option<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_parser = parse_stream)]
    pub(super) attach: Vec<Stream>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub(super) interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub(super) tty: bool,
}

/// The parsed flags: the request and the create's options.
pub(super) struct Translated {
    pub(super) request: ContainerCreateRequest,
    pub(super) options: CreateOptions,
}

impl Flags {
    /// The create request for `image` running `command` (empty: the image's).
    pub(super) fn translate(
        &self,
        image: &str,
        command: &[String],
        auto_remove: bool,
    ) -> Result<Translated> {
        let lookup = |k: &str| std::env::var(k).ok();
        let mut env = Vec::new();
        for file in &self.env_file {
            env.extend(parse::parse_env_file(file, lookup)?);
        }
        for e in &self.env {
            if let Some(kv) = parse::parse_env(e, lookup)? {
                env.push(kv);
            }
        }
        let mut labels = BTreeMap::new();
        for l in &self.label {
            let (k, v) = parse::parse_label(l)?;
            labels.insert(k, v);
        }
        let mut config = ContainerConfig {
            hostname: self.hostname.clone().unwrap_or_default(),
            domainname: self.domainname.clone().unwrap_or_default(),
            user: self.user.clone().unwrap_or_default(),
            attach_stdin: self.interactive || self.attach.contains(&Stream::Stdin),
            attach_stdout: self.attach.is_empty() || self.attach.contains(&Stream::Stdout),
            attach_stderr: self.attach.is_empty() || self.attach.contains(&Stream::Stderr),
            tty: self.tty,
            open_stdin: self.interactive,
            stdin_once: self.interactive,
            env,
            cmd: (!command.is_empty()).then(|| command.to_vec()),
            healthcheck: self.healthcheck()?,
            image: image.to_string(),
            working_dir: self.workdir.clone().unwrap_or_default(),
            entrypoint: self.entrypoint.as_ref().map(|e| vec![e.clone()]),
            labels,
            stop_signal: self.stop_signal.clone().unwrap_or_default(),
            stop_timeout: self
                .stop_timeout
                .map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
            ..ContainerConfig::default()
        };
        let host = self.host_config(auto_remove, &mut config)?;
        let network = match &self.network {
            Some(n) if n.is_empty() => bail!("flag --network: empty network name"),
            Some(n) => n.clone(),
            None => "bridge".to_string(),
        };
        let mut networking = NetworkingConfig::default();
        if !self.network_alias.is_empty() {
            networking.endpoints_config.insert(
                network,
                EndpointSettings {
                    aliases: self.network_alias.clone(),
                    ..EndpointSettings::default()
                },
            );
        }
        Ok(Translated {
            request: ContainerCreateRequest {
                config,
                host_config: host,
                networking_config: networking,
            },
            options: CreateOptions {
                name: self.name.clone(),
                snapshotter: self.snapshotter.clone(),
                ..CreateOptions::default()
            },
        })
    }

    fn host_config(&self, auto_remove: bool, config: &mut ContainerConfig) -> Result<HostConfig> {
        let mut h = HostConfig {
            binds: self.volume.clone(),
            network_mode: self.network.clone().unwrap_or_default(),
            restart_policy: parse::restart(&self.restart)?,
            auto_remove,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            dns: self.dns.clone(),
            dns_options: self.dns_option.clone(),
            dns_search: self.dns_search.clone(),
            extra_hosts: self.add_host.clone(),
            ipc_mode: self.ipc.clone().unwrap_or_default(),
            pid_mode: self.pid.clone().unwrap_or_default(),
            uts_mode: self.uts.clone().unwrap_or_default(),
            privileged: self.privileged,
            publish_all_ports: self.publish_all,
            readonly_rootfs: self.read_only,
            security_opt: self.security_opt.clone(),
            runtime: self.runtime.clone(),
            cpuset_cpus: self.cpuset_cpus.clone().unwrap_or_default(),
            init: self.init.then_some(true),
            links: self.link.clone(),
            ..HostConfig::default()
        };
        for m in &self.mount {
            h.mounts.push(parse::mount(m)?);
        }
        for t in &self.tmpfs {
            let (target, opts) = parse::tmpfs(t);
            h.tmpfs.insert(target, opts);
        }
        if let Some(m) = &self.memory {
            h.memory = parse::bytes("--memory", m)?;
        }
        if let Some(m) = &self.memory_swap {
            h.memory_swap = parse::memory_swap(m)?;
        }
        if let Some(m) = &self.memory_reservation {
            h.memory_reservation = parse::bytes("--memory-reservation", m)?;
        }
        if let Some(c) = &self.cpus {
            h.nano_cpus = parse::nano_cpus(c)?;
        }
        if let Some(c) = &self.cpu_shares {
            h.cpu_shares = parse::cpu_shares(c)?;
        }
        if let Some(p) = &self.pids_limit {
            h.pids_limit = Some(parse::pids_limit(p)?);
        }
        if let Some(s) = &self.shm_size {
            h.shm_size = parse::bytes("--shm-size", s)?;
        }
        for u in &self.ulimit {
            h.ulimits.push(parse::ulimit(u)?);
        }
        for s in &self.sysctl {
            let (key, value) = parse::sysctl(s)?;
            h.sysctls.insert(key, value);
        }
        for d in &self.device {
            h.devices.push(parse::device(d)?);
        }
        for p in &self.publish {
            parse::publish(p, &mut config.exposed_ports, &mut h.port_bindings)?;
        }
        let mut log = LogConfig {
            r#type: self.log_driver.clone().unwrap_or_default(),
            ..LogConfig::default()
        };
        if let Some(u) = self
            .userns
            .as_deref()
            .filter(|u| !u.is_empty() && *u != "host")
        {
            bail!("flag --userns: unsupported mode {u:?} (only \"host\")");
        }
        for o in &self.log_opt {
            let Some((k, v)) = o.split_once('=') else {
                bail!("flag --log-opt: invalid log opt {o:?} (key=value)");
            };
            log.config.insert(k.to_string(), v.to_string());
        }
        h.log_config = log;
        Ok(h)
    }

    /// `--health-*` and `--no-healthcheck` as docker's HealthConfig (`None`: the image's).
    fn healthcheck(&self) -> Result<Option<HealthConfig>> {
        if self.no_healthcheck {
            return Ok(Some(HealthConfig {
                test: vec!["NONE".into()],
                ..HealthConfig::default()
            }));
        }
        let dur = |flag: &'static str, v: &Option<String>| -> Result<i64> {
            match v {
                Some(v) => Ok(parse::duration_nanos(flag, v)?),
                None => Ok(0),
            }
        };
        let h = HealthConfig {
            test: match &self.health_cmd {
                Some(c) => vec!["CMD-SHELL".into(), c.clone()],
                None => Vec::new(),
            },
            interval: dur("--health-interval", &self.health_interval)?,
            timeout: dur("--health-timeout", &self.health_timeout)?,
            start_period: dur("--health-start-period", &self.health_start_period)?,
            retries: self.health_retries.map(i64::from).unwrap_or(0),
        };
        Ok((h != HealthConfig::default()).then_some(h))
    }
}

#[cfg(test)]
mod tests;
