//! `berth create` and `berth run`: an image plus docker's flags become a container: its
//! writable snapshot, volumes, generated /etc files, OCI spec and record; `run` then starts
//! it through its monitor and, unless detached, streams it to this terminal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use berth::container::attach::{self, Hello};
use berth::container::lifecycle::{self, Paths};
use berth::container::monitor::SOCKET;
use berth::container::names;
use berth::container::record::{
    now_rfc3339, Config, HealthConfig, MountPoint, Record, RestartPolicy, State,
};
use berth::container::runtime::resolve_runtime;
use berth::container::store::valid_name;
use berth::container::{ContainerError, ContainerStore};
use berth::snapshot::{self, Backend};
use berth::specgen::flags::{self as f, MountKind, MountRequest};
use berth::specgen::{self, ImageConfig, NamespaceMode, Options, ResolvedMount};
use berth::unpack::unpack_image;
use berth::volume::VolumeStore;

use super::attach::{stream, Attach};
use super::{Ctx, Exit};

/// The flags `create` and `run` share (docker's names).
#[derive(Debug, Clone, clap::Args)]
pub struct Flags {
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables
    #[arg(short, long)]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long)]
    env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    entrypoint: Option<String>,
    /// Bind mount a volume
    #[arg(short, long)]
    volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long)]
    mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    read_only: bool,
    /// Publish a container's port(s) to the host
    #[arg(short, long)]
    publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    publish_all: bool,
    /// Connect a container to a network (bridge, none, host, container:<name|id>, or a
    /// network's name; default bridge)
    #[arg(long, visible_alias = "net")]
    network: Option<String>,
    /// Add a network-scoped alias for the container
    #[arg(long)]
    network_alias: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    domainname: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long)]
    add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long)]
    dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long)]
    dns_option: Vec<String>,
    /// Memory limit
    #[arg(short, long)]
    memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long)]
    memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long)]
    memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    cpu_shares: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<String>,
    /// Size of /dev/shm
    #[arg(long)]
    shm_size: Option<String>,
    /// Add Linux capabilities
    #[arg(long)]
    cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long)]
    cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    privileged: bool,
    /// Security Options
    #[arg(long)]
    security_opt: Vec<String>,
    /// Add a host device to the container
    #[arg(long)]
    device: Vec<String>,
    /// Restart policy to apply when a container exits
    #[arg(long, default_value = "no")]
    restart: String,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    init: bool,
    /// Set meta data on a container
    #[arg(short, long)]
    label: Vec<String>,
    /// Ulimit options
    #[arg(long)]
    ulimit: Vec<String>,
    /// Signal to stop the container
    #[arg(long)]
    stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long)]
    stop_timeout: Option<u64>,
    /// Command to run to check health
    #[arg(long)]
    health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long)]
    health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long)]
    health_timeout: Option<String>,
    /// Start period for the container to initialize before starting health-retries countdown
    #[arg(long)]
    health_start_period: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long)]
    health_retries: Option<u32>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long)]
    no_healthcheck: bool,
    /// PID namespace to use (host)
    #[arg(long)]
    pid: Option<String>,
    /// IPC mode to use (host, private)
    #[arg(long)]
    ipc: Option<String>,
    /// UTS namespace to use (host)
    #[arg(long)]
    uts: Option<String>,
    /// Log driver options (max-size, max-file)
    #[arg(long)]
    log_opt: Vec<String>,
    /// Runtime to use for this container (berth-runtime, runc, crun or a path)
    #[arg(long, default_value = "berth-runtime", env = "BERTH_RUNTIME")]
    runtime: String,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pull: String,
    /// Snapshotter for the container's root filesystem: overlay or copy
    #[arg(long, env = "BERTH_SNAPSHOTTER")]
    snapshotter: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
}

#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    #[command(flatten)]
    flags: Flags,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Proxy received signals to the process
    #[arg(long, default_value = "true", action = clap::ArgAction::Set)]
    sig_proxy: bool,
    #[command(flatten)]
    flags: Flags,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// docker's CLI exits 125 when `run`/`create` fail before the container runs.
fn as_125(e: anyhow::Error) -> anyhow::Error {
    if e.downcast_ref::<Exit>().is_some() {
        return e;
    }
    Exit::with_message(125, format!("{e:#}")).into()
}

pub fn create(ctx: &mut Ctx, args: CreateArgs) -> Result<()> {
    create_inner(ctx, args).map_err(as_125)
}

pub fn run(ctx: &mut Ctx, args: RunArgs) -> Result<()> {
    run_inner(ctx, args).map_err(as_125)
}

fn create_inner(ctx: &mut Ctx, args: CreateArgs) -> Result<()> {
    let (store, record) = create_container(ctx, &args.flags, &args.image, &args.command, false)?;
    // `create` only prepares: the root filesystem is mounted again by `start`.
    let paths = Paths::new(&ctx.settings.root, &store, &record);
    lifecycle::teardown(&store, &record, &paths)?;
    println!("{}", record.id);
    Ok(())
}

fn run_inner(ctx: &mut Ctx, args: RunArgs) -> Result<()> {
    let (store, record) = create_container(ctx, &args.flags, &args.image, &args.command, args.rm)?;
    let root = ctx.settings.root.clone();
    let paths = Paths::new(&root, &store, &record);
    let record = match lifecycle::prepare(&root, &store, &record) {
        Ok(r) => r,
        Err(e) => {
            cleanup_failed(&root, &store, &record);
            return Err(Exit::with_message(125, format!("{e:#}")).into());
        }
    };
    if args.detach {
        let report = match lifecycle::spawn_monitor(&root, &paths, &record.id, true) {
            Ok(r) => r,
            Err(e) => {
                cleanup_failed(&root, &store, &record);
                return Err(Exit::with_message(125, format!("{e:#}")).into());
            }
        };
        if !report.ok {
            lifecycle::reap_monitor(report.monitor_pid);
            if args.rm {
                cleanup_failed(&root, &store, &record);
            }
            return Err(Exit::with_message(report.code, report.message).into());
        }
        println!("{}", record.id);
        return Ok(());
    }
    let report = match lifecycle::spawn_monitor(&root, &paths, &record.id, false) {
        Ok(r) => r,
        Err(e) => {
            cleanup_failed(&root, &store, &record);
            return Err(Exit::with_message(125, format!("{e:#}")).into());
        }
    };
    if !report.ok {
        lifecycle::reap_monitor(report.monitor_pid);
        if args.rm {
            cleanup_failed(&root, &store, &record);
        }
        return Err(Exit::with_message(report.code, report.message).into());
    }
    let conn = attach::connect(&paths.dir, SOCKET)
        .with_context(|| format!("connecting to the monitor of {}", record.id))?;
    let hello = Hello {
        stdin: args.flags.interactive,
        stdout: true,
        stderr: true,
        start: true,
    };
    let sig_proxy =
        (args.sig_proxy && !args.flags.tty).then(|| (paths.runtime(&record), record.id.clone()));
    let streamed = stream(
        conn,
        hello,
        Attach {
            stdin: args.flags.interactive,
            tty: args.flags.tty,
            sig_proxy,
        },
    );
    lifecycle::reap_monitor(report.monitor_pid);
    let code = streamed?;
    if code != 0 {
        return Err(Exit::silent(code).into());
    }
    Ok(())
}

/// Removes a container whose start failed (for `--rm`), reporting cleanup errors beside.
fn cleanup_failed(root: &Path, store: &ContainerStore, record: &Record) {
    if let Ok(r) = store.load(&record.id) {
        if lifecycle::monitor_alive(&r) {
            let _ = lifecycle::wait_exit(store, &r.id, Some(std::time::Duration::from_secs(10)));
        }
        if store.load(&record.id).is_ok() {
            if let Err(e) = lifecycle::remove_files(root, store, &r, true) {
                eprintln!("Error: removing container {}: {e:#}", r.id);
            }
        }
    }
}

/// Makes sure the image is in the store per `--pull`, pulling it like `berth pull` would.
fn ensure_image(ctx: &mut Ctx, image: &str, policy: &str) -> Result<()> {
    let present = ctx.store()?.lookup(image).is_ok();
    let pull = match policy {
        "always" => true,
        "missing" => !present,
        "never" => {
            if !present {
                bail!("No such image: {image}");
            }
            false
        }
        other => bail!("flag --pull: invalid value {other:?} (always, missing or never)"),
    };
    if pull {
        if !present {
            eprintln!("Unable to find image '{image}' locally");
        }
        let args = super::pull::Args::for_image(image);
        super::block_on(super::pull::run(ctx, args))
            .map_err(|e| anyhow!(Exit::with_message(125, format!("pulling {image}: {e:#}"))))?;
    }
    Ok(())
}

/// Everything `create` does; on failure nothing is left behind.
fn create_container(
    ctx: &mut Ctx,
    flags: &Flags,
    image: &str,
    command: &[String],
    auto_remove: bool,
) -> Result<(ContainerStore, Record)> {
    let root = ctx.settings.root.clone();
    let plan = Plan::parse(flags).map_err(|e| Exit::with_message(125, format!("{e:#}")))?;
    ensure_image(ctx, image, &flags.pull)?;
    let store = ctx.store()?;
    let hits = store.lookup(image)?;
    let image_record = hits[0].clone();
    let info = store.image(&image_record)?;
    let blob = store
        .content()
        .read_metadata(info.manifest.config().digest())?;
    let image_config = ImageConfig::from_blob(&blob)?;
    let runtime_path = resolve_runtime(&flags.runtime)?;
    let backend = match &flags.snapshotter {
        Some(s) => s.parse::<Backend>()?,
        None => Backend::detect(),
    };
    let sn = backend.open(&root)?;
    let top = unpack_image(store, &info, image, &*sn)?;
    let containers = ContainerStore::open(&root)?;
    let id = names::random_id().context("drawing a container id")?;
    let record = {
        let _names = containers.names_lock()?;
        let existing = containers.list()?;
        let name = match &flags.name {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                if !valid_name(n) {
                    return Err(ContainerError::BadName { name: n.into() }.into());
                }
                if let Some(o) = existing.iter().find(|o| o.name == n) {
                    return Err(ContainerError::NameInUse {
                        name: n.into(),
                        id: o.id.clone(),
                    }
                    .into());
                }
                n.to_string()
            }
            None => names::generate(|n| existing.iter().any(|o| o.name == n))
                .context("drawing a container name")?,
        };
        let record = Record {
            id: id.clone(),
            name,
            created: now_rfc3339(),
            image: image.to_string(),
            image_id: info.id().to_string(),
            snapshotter: backend.name().to_string(),
            networks: BTreeMap::new(),
            config: Config {
                runtime: flags.runtime.clone(),
                runtime_path,
                auto_remove,
                ..Config::default()
            },
            state: State::default(),
        };
        containers.insert(&record)?;
        record
    };
    match finish_create(
        &root,
        &containers,
        record.clone(),
        &plan,
        &image_config,
        command,
        top.as_ref().map(|d| d.to_string()),
        &*sn,
    ) {
        Ok(r) => Ok((containers, r)),
        Err(e) => {
            let r = containers.load(&id).unwrap_or(record);
            if let Err(cleanup) = lifecycle::remove_files(&root, &containers, &r, true) {
                eprintln!("Error: cleaning up container {id}: {cleanup:#}");
            }
            Err(Exit::with_message(125, format!("{e:#}")).into())
        }
    }
}

/// The parsed flags.
struct Plan {
    env: Vec<String>,
    mounts: Vec<MountRequest>,
    restart: RestartPolicy,
    labels: BTreeMap<String, String>,
    stop_signal: Option<String>,
    options: Options,
    health: HealthFlags,
    network: String,
    publish: Vec<berth::network::PortMapping>,
    publish_all: bool,
    aliases: Vec<String>,
    stop_timeout: Option<u64>,
    extra_hosts: Vec<f::ExtraHost>,
    dns: Vec<String>,
    dns_search: Vec<String>,
    dns_option: Vec<String>,
    log_max_size: u64,
    log_max_file: u32,
}

struct HealthFlags {
    cmd: Option<String>,
    interval: Option<std::time::Duration>,
    timeout: Option<std::time::Duration>,
    start_period: Option<std::time::Duration>,
    retries: Option<u32>,
    disabled: bool,
}

fn ns_mode(flag: &str, value: Option<&str>) -> Result<NamespaceMode> {
    match value {
        None | Some("") | Some("private") => Ok(NamespaceMode::Private),
        Some("host") => Ok(NamespaceMode::Host),
        Some(v) => bail!("flag --{flag}: unsupported mode {v:?} (host or private)"),
    }
}

impl Plan {
    fn parse(flags: &Flags) -> Result<Plan> {
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
fn init_binary() -> Result<PathBuf> {
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
fn health_config(h: &HealthFlags, image: &ImageConfig) -> Option<HealthConfig> {
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

#[allow(clippy::too_many_arguments)]
fn finish_create(
    root: &Path,
    containers: &ContainerStore,
    mut record: Record,
    plan: &Plan,
    image: &ImageConfig,
    command: &[String],
    top: Option<String>,
    sn: &dyn snapshot::Snapshotter,
) -> Result<Record> {
    let paths = Paths::new(root, containers, &record);
    std::fs::create_dir_all(&paths.rootfs)
        .with_context(|| format!("creating {}", paths.rootfs.display()))?;
    let mounts = sn.prepare(&record.id, top.as_deref())?;
    snapshot::mount_all(&mounts, &paths.rootfs)?;
    // Volumes: the user's, then the image's VOLUMEs nobody mounted over (anonymous).
    let volumes = VolumeStore::open(root)?;
    let mut requests = plan.mounts.clone();
    for v in &image.volumes {
        let target = PathBuf::from(v);
        if !requests.iter().any(|m| m.target == target) {
            requests.push(MountRequest {
                target,
                readonly: false,
                kind: MountKind::Volume {
                    name: None,
                    nocopy: false,
                },
            });
        }
    }
    let mut resolved: Vec<ResolvedMount> = Vec::new();
    let mut points: Vec<MountPoint> = Vec::new();
    for m in requests {
        let target = m.target.clone();
        let readonly = m.readonly;
        let mut point = MountPoint {
            kind: String::new(),
            name: String::new(),
            source: String::new(),
            destination: target.to_string_lossy().into_owned(),
            rw: !readonly,
            anonymous: false,
        };
        match &m.kind {
            MountKind::Bind {
                source,
                create_missing,
                ..
            } => {
                point.kind = "bind".into();
                point.source = source.to_string_lossy().into_owned();
                if !source.exists() {
                    if *create_missing {
                        std::fs::create_dir_all(source).with_context(|| {
                            format!("creating bind source {}", source.display())
                        })?;
                    } else {
                        bail!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            source.display()
                        );
                    }
                }
            }
            MountKind::Tmpfs(_) => point.kind = "tmpfs".into(),
            MountKind::Volume { .. } => point.kind = "volume".into(),
        }
        let r = m.resolve(|name, nocopy| -> Result<PathBuf> {
            let vol = volumes.create(name, BTreeMap::new(), BTreeMap::new())?;
            // A volume made with `--opt type=...` gets its filesystem mounted on first use.
            volumes.mount(&vol)?;
            if !nocopy {
                volumes.populate_from_rootfs(&vol, &paths.rootfs, &target)?;
            }
            point.name = vol.name.clone();
            point.source = vol.mountpoint.to_string_lossy().into_owned();
            point.anonymous = vol.anonymous;
            Ok(vol.mountpoint)
        })?;
        // Record anonymous volumes at once, so a failure below removes them.
        points.push(point);
        record.config.mounts = points.clone();
        containers.save(&record)?;
        resolved.push(r);
    }
    // Generated /etc files, bind-mounted over the image's (docker does the same).
    let hostname = plan.options.hostname.clone().unwrap_or_else(|| {
        if plan.network == "host" {
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            record.id[..12].to_string()
        }
    });
    let mut options = plan.options.clone();
    let run_dir = berth::network::run_dir();
    let etc_dir = paths.dir.clone();
    if let Some(other) = plan.network.strip_prefix("container:") {
        // docker: the network namespace, and with it the /etc files, of a running container.
        let o = containers.find(other)?;
        let o = lifecycle::refresh(containers, o)?;
        if o.state.status != berth::container::Status::Running || o.state.pid <= 0 {
            bail!("flag --network: container {other} is not running");
        }
        options.namespaces.network =
            NamespaceMode::Path(PathBuf::from(format!("/proc/{}/ns/net", o.state.pid)));
        let odir = containers.dir(&o.id);
        options.etc_files = ["hosts", "resolv.conf", "hostname"]
            .iter()
            .map(|n| (PathBuf::from("/etc").join(n), odir.join(n)))
            .collect();
        record.config.network_mode = format!("container:{}", o.id);
    } else {
        let host_network = plan.network == "host";
        let mut extra_hosts = Vec::new();
        for h in &plan.extra_hosts {
            let ip = match &h.addr {
                f::HostAddr::Ip(ip) => *ip,
                f::HostAddr::HostGateway => {
                    let nets = berth::network::NetworkStore::open(root, &run_dir)?;
                    match nets.inspect(&plan.network) {
                        Ok(n) if !host_network => std::net::IpAddr::V4(n.gateway),
                        _ => bail!(
                            "flag --add-host: {}:host-gateway needs a bridge network",
                            h.name
                        ),
                    }
                }
            };
            extra_hosts.push(berth::network::ExtraHost {
                name: h.name.clone(),
                ip,
            });
        }
        let etc = berth::network::EtcConfig {
            dir: etc_dir.clone(),
            hostname: hostname.clone(),
            extra_hosts,
            dns: berth::network::DnsConfig {
                servers: plan.dns.iter().filter_map(|d| d.parse().ok()).collect(),
                search: plan.dns_search.clone(),
                options: plan.dns_option.clone(),
            },
            host_network,
        };
        berth::network::etc::write_files(&etc, &[], &[])?;
        options.etc_files = ["hosts", "resolv.conf", "hostname"]
            .iter()
            .map(|n| (PathBuf::from("/etc").join(n), etc_dir.join(n)))
            .collect();
        if host_network {
            options.namespaces.network = NamespaceMode::Host;
        } else {
            if plan.network != "none" {
                // The network must exist (the default bridge is made on first use).
                let nets = berth::network::NetworkStore::open(root, &run_dir)?;
                nets.inspect(&plan.network)?;
            }
            options.namespaces.network =
                NamespaceMode::Path(berth::network::Netns::path(&run_dir, &record.id));
        }
        record.config.etc = Some(etc);
        record.config.network_mode = plan.network.clone();
    }
    let mut publish = plan.publish.clone();
    if plan.publish_all {
        let mut exposed = Vec::new();
        for e in &image.exposed_ports {
            exposed.extend(berth::network::parse_exposed(e)?);
        }
        publish.extend(berth::network::publish_all(&exposed, &publish, None)?);
    }
    record.config.publish = publish;
    record.config.aliases = plan.aliases.clone();
    options.rootfs = paths.rootfs.clone();
    options.mounts = resolved;
    options.hostname = Some(hostname.clone());
    options.process.env = plan.env.clone();
    if !command.is_empty() {
        options.process.cmd = Some(command.to_vec());
    }
    options.cgroups_path = Some(PathBuf::from(format!("/berth/{}", record.id)));
    let spec = specgen::generate(image, &options)?;
    let process = spec.process().clone().unwrap_or_default();
    // docker makes a missing working directory (the runtime would fail to chdir).
    specgen::create_workdir(&paths.rootfs, process.cwd())?;
    std::fs::create_dir_all(&paths.bundle)?;
    let spec_path = paths.bundle.join("config.json");
    std::fs::write(&spec_path, serde_json::to_vec_pretty(&spec)?)
        .with_context(|| format!("writing {}", spec_path.display()))?;
    let c = &mut record.config;
    c.args = process.args().clone().unwrap_or_default();
    c.entrypoint = options
        .process
        .entrypoint
        .clone()
        .or_else(|| image.entrypoint.clone())
        .unwrap_or_default();
    c.cmd = options
        .process
        .cmd
        .clone()
        .or_else(|| {
            if options.process.entrypoint.is_some() {
                None
            } else {
                image.cmd.clone()
            }
        })
        .unwrap_or_default();
    c.env = process.env().clone().unwrap_or_default();
    c.user = options
        .process
        .user
        .clone()
        .unwrap_or_else(|| image.user.clone());
    c.working_dir = process.cwd().to_string_lossy().into_owned();
    c.hostname = hostname;
    c.tty = plan.options.process.tty;
    c.open_stdin = plan.options.process.stdin_open;
    c.labels = image.labels.clone();
    c.labels.extend(plan.labels.clone());
    c.stop_signal = plan
        .stop_signal
        .clone()
        .or_else(|| {
            image
                .stop_signal
                .as_deref()
                .and_then(|s| f::parse_stop_signal(s).ok())
                .map(|s| s.name())
        })
        .unwrap_or_else(|| "SIGTERM".into());
    c.stop_timeout = plan.options_stop_timeout();
    c.healthcheck = health_config(&plan.health, image);
    c.exposed_ports = image.exposed_ports.iter().cloned().collect();
    c.restart = plan.restart.clone();
    c.read_only = plan.options.security.read_only;
    c.privileged = plan.options.security.privileged;
    c.memory = plan.options.resources.memory.unwrap_or(0) as i64;
    c.nano_cpus = plan.options.resources.cpus.map(|c| c.0 as i64).unwrap_or(0);
    c.pids_limit = plan.options.resources.pids_limit.unwrap_or(0);
    c.log_max_size = plan.log_max_size;
    c.log_max_file = plan.log_max_file;
    if record.config.healthcheck.is_some() {
        record.state.health = Some(berth::container::record::Health {
            status: "starting".into(),
            ..Default::default()
        });
    }
    containers.save(&record)?;
    Ok(record)
}

impl Plan {
    fn options_stop_timeout(&self) -> u64 {
        self.stop_timeout.unwrap_or(10)
    }
}

/// `-u` for `exec`: resolved in the container's root filesystem (mounted while it runs).
pub fn resolve_user(dir: &Path, user: &str) -> Result<(u32, u32, Vec<u32>)> {
    let rootfs = dir.join("bundle").join("rootfs");
    let u = specgen::resolve_user(&rootfs, user)?;
    Ok((u.uid, u.gid, u.additional_gids))
}

/// Every capability this kernel knows, for `exec --privileged`.
pub fn all_capabilities() -> Vec<String> {
    specgen::known_capabilities()
        .into_iter()
        .map(|c| format!("CAP_{c}"))
        .collect()
}
