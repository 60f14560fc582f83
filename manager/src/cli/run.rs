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
use berth::container::record::{now_rfc3339, Config, MountPoint, Record, State};
use berth::container::runtime::resolve_runtime;
use berth::container::store::valid_name;
use berth::container::{ContainerError, ContainerStore};
use berth::snapshot::{self, Backend};
use berth::specgen::flags::{self as f, MountKind, MountRequest};
use berth::specgen::{self, ImageConfig, NamespaceMode, ResolvedMount};
use berth::unpack::unpack_image;
use berth::volume::VolumeStore;

use super::attach::{stream, Attach};
use super::run_flags::{health_config, Flags, Plan};
use super::{Ctx, Exit};

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
    // Detached, the monitor starts the container at once; in the foreground it waits for
    // this command to attach, so no output is missed.
    let report = match lifecycle::spawn_monitor(&root, &paths, &record.id, args.detach) {
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
    if args.detach {
        println!("{}", record.id);
        return Ok(());
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
    options.cgroups_path = Some(record.cgroup());
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
