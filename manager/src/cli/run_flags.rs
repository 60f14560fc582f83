//! The flags `create` and `run` share, and their parsing into a [`Plan`]: every value is
//! checked here, before anything is made, so bad input leaves nothing behind.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use berth::container::record::{HealthConfig, RestartPolicy};
use berth::specgen::flags::{self as f, MountRequest};
use berth::specgen::{self, ImageConfig, NamespaceMode, Options};

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
    /// Snapshotter for the container's root filesystem: overlay or copy
    #[arg(long, env = "BERTH_SNAPSHOTTER")]
    pub(super) snapshotter: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub(super) interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub(super) tty: bool,
}

/// The parsed flags.
pub(super) struct Plan {
    pub(super) env: Vec<String>,
    pub(super) mounts: Vec<MountRequest>,
    pub(super) restart: RestartPolicy,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) stop_signal: Option<String>,
    pub(super) options: Options,
    pub(super) health: HealthFlags,
    pub(super) network: String,
    pub(super) publish: Vec<berth::network::PortMapping>,
    pub(super) publish_all: bool,
    pub(super) aliases: Vec<String>,
    pub(super) stop_timeout: Option<u64>,
    pub(super) extra_hosts: Vec<f::ExtraHost>,
    pub(super) dns: Vec<String>,
    pub(super) dns_search: Vec<String>,
    pub(super) dns_option: Vec<String>,
    pub(super) log_max_size: u64,
    pub(super) log_max_file: u32,
}

pub(super) struct HealthFlags {
    pub(super) cmd: Option<String>,
    pub(super) interval: Option<std::time::Duration>,
    pub(super) timeout: Option<std::time::Duration>,
    pub(super) start_period: Option<std::time::Duration>,
    pub(super) retries: Option<u32>,
    pub(super) disabled: bool,
}

pub(super) fn ns_mode(flag: &str, value: Option<&str>) -> Result<NamespaceMode> {
    match value {
        None | Some("") | Some("private") => Ok(NamespaceMode::Private),
        Some("host") => Ok(NamespaceMode::Host),
        Some(v) => bail!("flag --{flag}: unsupported mode {v:?} (host or private)"),
    }
}

impl Plan {
    pub(super) fn parse(flags: &Flags) -> Result<Plan> {
        let lookup = |k: &str| std::env::var(k).ok();
        let mut env = Vec::new();
        for file in &flags.env_file {
            env.extend(f::parse_env_file(file, lookup)?);
        }
        for e in &flags.env {
            if let Some(kv) = f::parse_env(e, lookup)? {
                env.push(kv);
            }
        }
        let mut mounts = Vec::new();
        for v in &flags.volume {
            mounts.push(f::parse_volume(v)?);
        }
        for m in &flags.mount {
            mounts.push(f::parse_mount(m)?);
        }
        for t in &flags.tmpfs {
            mounts.push(f::parse_tmpfs(t)?);
        }
        let restart = match f::parse_restart(&flags.restart)? {
            f::RestartPolicy::No => RestartPolicy::No,
            f::RestartPolicy::Always => RestartPolicy::Always,
            f::RestartPolicy::UnlessStopped => RestartPolicy::UnlessStopped,
            f::RestartPolicy::OnFailure { max_retries } => RestartPolicy::OnFailure {
                max_retries: max_retries.unwrap_or(0),
            },
        };
        let mut labels = BTreeMap::new();
        for l in &flags.label {
            let (k, v) = f::parse_label(l)?;
            labels.insert(k, v);
        }
        let stop_signal = match &flags.stop_signal {
            Some(s) => Some(f::parse_stop_signal(s)?.name()),
            None => None,
        };
        let mut options = Options::default();
        let mut security = specgen::SecurityOptions {
            privileged: flags.privileged,
            read_only: flags.read_only,
            ..Default::default()
        };
        for c in &flags.cap_add {
            security.cap_add.push(f::parse_capability("--cap-add", c)?);
        }
        for c in &flags.cap_drop {
            security
                .cap_drop
                .push(f::parse_capability("--cap-drop", c)?);
        }
        for s in &flags.security_opt {
            if let Some(warning) = f::parse_security_opt(s)?.apply(&mut security) {
                eprintln!("WARNING: {warning}");
            }
        }
        options.security = security;
        let r = &mut options.resources;
        if let Some(m) = &flags.memory {
            r.memory = Some(f::parse_bytes("--memory", m)?);
        }
        if let Some(m) = &flags.memory_swap {
            r.memory_swap = Some(f::parse_memory_swap(m)?);
        }
        if let Some(m) = &flags.memory_reservation {
            r.memory_reservation = Some(f::parse_bytes("--memory-reservation", m)?);
        }
        if let Some(c) = &flags.cpus {
            r.cpus = Some(f::parse_cpus(c)?);
        }
        if let Some(c) = &flags.cpu_shares {
            r.cpu_shares = Some(f::parse_cpu_shares(c)?);
        }
        if let Some(c) = &flags.cpuset_cpus {
            r.cpuset_cpus = Some(f::parse_cpuset(c)?);
        }
        if let Some(p) = &flags.pids_limit {
            r.pids_limit = Some(f::parse_pids_limit(p)?);
        }
        if let Some(s) = &flags.shm_size {
            r.shm_size = Some(f::parse_bytes("--shm-size", s)?);
        }
        for u in &flags.ulimit {
            options.ulimits.push(f::parse_ulimit(u)?);
        }
        for d in &flags.device {
            options.devices.push(f::parse_device(d)?);
        }
        options.namespaces.pid = ns_mode("pid", flags.pid.as_deref())?;
        options.namespaces.ipc = ns_mode("ipc", flags.ipc.as_deref())?;
        options.namespaces.uts = ns_mode("uts", flags.uts.as_deref())?;
        let network = flags
            .network
            .clone()
            .unwrap_or_else(|| berth::network::DEFAULT_NETWORK.to_string());
        if network.is_empty() {
            bail!("flag --network: empty network name");
        }
        let mut publish = Vec::new();
        for p in &flags.publish {
            publish.extend(berth::network::parse_publish(p)?);
        }
        if network == "host" {
            if flags.hostname.is_some() {
                bail!("flag --hostname: conflicting options: hostname and the network mode host");
            }
            if !publish.is_empty() || flags.publish_all {
                eprintln!("WARNING: Published ports are discarded when using host network mode");
                publish.clear();
            }
        } else if (network == "none" || network.starts_with("container:"))
            && (!publish.is_empty() || flags.publish_all)
        {
            bail!("flag --publish: conflicting options: port publishing and the container type network mode");
        }
        options.hostname = flags.hostname.clone();
        options.domainname = flags.domainname.clone();
        options.process.user = match &flags.user {
            Some(u) => Some(f::parse_user(u)?),
            None => None,
        };
        options.process.workdir = flags.workdir.clone();
        options.process.tty = flags.tty;
        options.process.stdin_open = flags.interactive;
        if flags.init {
            options.process.init = Some(init_binary()?);
        }
        let dur = |flag: &'static str, v: &Option<String>| -> Result<Option<std::time::Duration>> {
            Ok(match v {
                Some(v) => Some(f::parse_duration(flag, v)?),
                None => None,
            })
        };
        let health = HealthFlags {
            cmd: flags.health_cmd.clone(),
            interval: dur("--health-interval", &flags.health_interval)?,
            timeout: dur("--health-timeout", &flags.health_timeout)?,
            start_period: dur("--health-start-period", &flags.health_start_period)?,
            retries: flags.health_retries,
            disabled: flags.no_healthcheck,
        };
        let mut log_opts = BTreeMap::new();
        for o in &flags.log_opt {
            let Some((k, v)) = o.split_once('=') else {
                bail!("flag --log-opt: invalid log opt {o:?} (key=value)");
            };
            log_opts.insert(k.to_string(), v.to_string());
        }
        let log = berth::logs::LogOptions::from_opts(&log_opts)?;
        let mut extra_hosts = Vec::new();
        for h in &flags.add_host {
            extra_hosts.push(f::parse_add_host(h)?);
        }
        for d in &flags.dns {
            d.parse::<std::net::IpAddr>()
                .map_err(|_| anyhow!("flag --dns: {d:?} is not an IP address"))?;
        }
        options.process.entrypoint = flags.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            }
        });
        Ok(Plan {
            env,
            mounts,
            restart,
            labels,
            stop_signal,
            options,
            health,
            network,
            publish,
            publish_all: flags.publish_all,
            aliases: flags.network_alias.clone(),
            stop_timeout: flags.stop_timeout,
            extra_hosts,
            dns: flags.dns.clone(),
            dns_search: flags.dns_search.clone(),
            dns_option: flags.dns_option.clone(),
            log_max_size: log.max_size.unwrap_or(0),
            log_max_file: log.max_file,
        })
    }
}

/// The host's init binary for `--init` (Debian's tini).
pub(super) fn init_binary() -> Result<PathBuf> {
    [
        "/usr/bin/tini-static",
        "/usr/bin/docker-init",
        "/usr/libexec/docker/docker-init",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .ok_or_else(|| anyhow!("flag --init: no init binary found (install tini)"))
}

/// The health check: flags over the image's HEALTHCHECK, docker's defaults for the rest.
pub(super) fn health_config(h: &HealthFlags, image: &ImageConfig) -> Option<HealthConfig> {
    if h.disabled {
        return None;
    }
    let from_image = image.healthcheck.clone().unwrap_or_default();
    let test = match &h.cmd {
        Some(c) => vec!["CMD-SHELL".to_string(), c.clone()],
        None => from_image.test.clone(),
    };
    if test.is_empty() || test[0] == "NONE" {
        return None;
    }
    let ms = |d: Option<std::time::Duration>, default: u64| {
        d.filter(|d| !d.is_zero())
            .map(|d| d.as_millis() as u64)
            .unwrap_or(default)
    };
    Some(HealthConfig {
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

impl Plan {
    pub(super) fn options_stop_timeout(&self) -> u64 {
        self.stop_timeout.unwrap_or(10)
    }
}
