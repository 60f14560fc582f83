//! Create: an image plus a create request become a container: its writable snapshot,
//! volumes, generated /etc files, OCI spec and record. On failure nothing is left behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::container::lifecycle::{self, Paths};
use crate::container::names;
use crate::container::record::{
    now_rfc3339, Config, EndpointConfig, Health, MountPoint, Record, State,
};
use crate::container::runtime::resolve_runtime;
use crate::container::store::valid_name;
use crate::container::{ContainerError, ContainerStore, Status};
use crate::network::{self, DnsConfig, EtcConfig, ExtraHost, NetworkStore};
use crate::ops::error::{chain, OpsError, Result};
use crate::ops::models::{ContainerCreateRequest, ContainerCreateResponse};
use crate::ops::Engine;
use crate::snapshot::{self, Backend, Snapshotter};
use crate::specgen::flags::{self as f, MountKind, MountRequest};
use crate::specgen::{self, ImageConfig, NamespaceMode, ResolvedMount};
use crate::unpack::unpack_image;
use crate::volume::VolumeStore;

use super::plan::{health_config, Plan};

/// What a create takes besides the request (docker's query parameters, and berth's own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// The container's name; a random one (`adjective_name`) when `None`.
    pub name: Option<String>,
    /// The snapshotter of the container's root filesystem: `overlay` or `copy`; the
    /// kernel's best when `None`.
    pub snapshotter: Option<String>,
    /// Build the container's writable layer on this committed snapshot (of the same
    /// snapshotter) instead of the image's top layer; the image still gives the defaults
    /// (environment, user, working directory, command). For a builder's steps, each on the
    /// snapshot the previous one committed.
    pub parent_snapshot: Option<String>,
}

/// `POST /containers/create`: makes the container (stopped, nothing mounted).
pub fn create(
    engine: &Engine,
    req: &ContainerCreateRequest,
    opts: &CreateOptions,
) -> Result<ContainerCreateResponse> {
    let (store, record, warnings) = create_mounted(engine, req, opts)?;
    // A created container holds no mounts: `start` mounts its root filesystem again.
    let paths = Paths::new(engine.root(), &store, &record);
    lifecycle::teardown(&store, &record, &paths)?;
    Ok(ContainerCreateResponse {
        id: record.id,
        warnings,
    })
}

/// Creates the container and leaves its root filesystem mounted (for a start that
/// follows at once).
pub(crate) fn create_mounted(
    engine: &Engine,
    req: &ContainerCreateRequest,
    opts: &CreateOptions,
) -> Result<(ContainerStore, Record, Vec<String>)> {
    let root = engine.root().to_path_buf();
    let plan = Plan::from_request(req)?;
    let image = req.config.image.as_str();
    let store = engine.images()?;
    // A builder's step on a chain that started FROM scratch has no image: no defaults, the
    // root filesystem is the parent snapshot alone.
    let info = match (image.is_empty(), &opts.parent_snapshot) {
        (true, Some(_)) => None,
        _ => {
            let hits = store.lookup(image)?;
            Some(store.image(&hits[0])?)
        }
    };
    let image_config = match &info {
        Some(info) => {
            let blob = store
                .content()
                .read_metadata(info.manifest.config().digest())?;
            ImageConfig::from_blob(&blob)?
        }
        None => ImageConfig::default(),
    };
    let runtime_path = resolve_runtime(&plan.runtime)?;
    let backend = match &opts.snapshotter {
        Some(s) => s.parse::<Backend>()?,
        None => Backend::detect(),
    };
    if crate::rootless::is_rootless() {
        if backend != Backend::Copy {
            return Err(crate::rootless::RootlessError::Snapshotter {
                name: backend.name().into(),
            }
            .into());
        }
        crate::rootless::check_network(&plan.network)?;
        for extra in &plan.extra_networks {
            crate::rootless::check_network(&extra.name)?;
        }
    }
    let sn = backend.open(&root)?;
    let top = match (&opts.parent_snapshot, &info) {
        (Some(key), _) => Some(key.clone()),
        (None, Some(info)) => unpack_image(store, info, image, &*sn)?.map(|d| d.to_string()),
        (None, None) => None,
    };
    let containers = engine.containers()?;
    let id = names::random_id().map_err(|source| OpsError::Random { what: "id", source })?;
    let record = {
        let _names = containers.names_lock()?;
        let existing = containers.list()?;
        let name = match &opts.name {
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
            None => {
                names::generate(|n| existing.iter().any(|o| o.name == n)).map_err(|source| {
                    OpsError::Random {
                        what: "name",
                        source,
                    }
                })?
            }
        };
        let record = Record {
            id: id.clone(),
            name,
            created: now_rfc3339(),
            image: image.to_string(),
            image_id: info.as_ref().map_or(String::new(), |i| i.id().to_string()),
            snapshotter: backend.name().to_string(),
            networks: BTreeMap::new(),
            config: Config {
                runtime: plan.runtime.clone(),
                runtime_path,
                auto_remove: plan.auto_remove,
                ..Config::default()
            },
            state: State::default(),
        };
        containers.insert(&record)?;
        record
    };
    let made = finish(
        &root,
        &containers,
        record.clone(),
        &plan,
        &image_config,
        top,
        &*sn,
    );
    match made {
        Ok(r) => {
            crate::events::container(&root, &r, "create", &[]);
            Ok((containers, r, plan.warnings))
        }
        Err(e) => {
            let r = containers.load(&id).unwrap_or(record);
            let also = match lifecycle::remove_files(&root, &containers, &r, true) {
                Ok(()) => Vec::new(),
                Err(cleanup) => {
                    let mut lines = cleanup.also();
                    lines.push(format!(
                        "Error: cleaning up container {id}: {}",
                        chain(&cleanup)
                    ));
                    lines
                }
            };
            Err(e.with_also(also))
        }
    }
}

/// The mounts a container gets: the request's, then the image's VOLUMEs nobody mounted
/// over (anonymous volumes).
fn mount_requests(plan: &Plan, image: &ImageConfig) -> Vec<MountRequest> {
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
    requests
}

/// Resolves the mounts (volumes made and filled from the image), recording each in the
/// record at once so that a failure later removes what was made.
fn resolve_mounts(
    root: &Path,
    containers: &ContainerStore,
    record: &mut Record,
    rootfs: &Path,
    requests: Vec<MountRequest>,
) -> Result<Vec<ResolvedMount>> {
    let volumes = VolumeStore::open(root)?;
    let mut resolved: Vec<ResolvedMount> = Vec::new();
    let mut points: Vec<MountPoint> = Vec::new();
    for m in requests {
        let target = m.target.clone();
        let mut point = MountPoint {
            kind: String::new(),
            name: String::new(),
            source: String::new(),
            destination: target.to_string_lossy().into_owned(),
            rw: !m.readonly,
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
                        std::fs::create_dir_all(source).map_err(|e| {
                            OpsError::io(format!("creating bind source {}", source.display()), e)
                        })?;
                    } else {
                        return Err(OpsError::BindSourceMissing {
                            path: source.clone(),
                        });
                    }
                }
            }
            MountKind::Tmpfs(_) => point.kind = "tmpfs".into(),
            MountKind::Volume { .. } => point.kind = "volume".into(),
        }
        let r = m.resolve(|name, nocopy| -> Result<PathBuf> {
            let existed = name.is_some_and(|n| volumes.get(n).is_ok());
            let vol = volumes.create(name, BTreeMap::new(), BTreeMap::new())?;
            if !existed {
                crate::events::emit(
                    root,
                    "volume",
                    "create",
                    &vol.name,
                    &[("driver", "local".into())],
                );
            }
            // A volume made with `--opt type=...` gets its filesystem mounted on first use.
            volumes.mount(&vol)?;
            if !nocopy {
                volumes.populate_from_rootfs(&vol, rootfs, &target)?;
            }
            point.name = vol.name.clone();
            point.source = vol.mountpoint.to_string_lossy().into_owned();
            point.anonymous = vol.anonymous;
            Ok(vol.mountpoint)
        })?;
        points.push(point);
        record.config.mounts = points.clone();
        containers.save(record)?;
        resolved.push(r);
    }
    Ok(resolved)
}

/// The generated /etc files and the network namespace: the namespace options and the
/// record's network settings are filled in.
fn plan_network(
    root: &Path,
    containers: &ContainerStore,
    record: &mut Record,
    plan: &Plan,
    paths: &Paths,
    hostname: &str,
    options: &mut specgen::Options,
) -> Result<()> {
    let run_dir = network::run_dir();
    let etc_dir = paths.dir.clone();
    if let Some(other) = plan.network.strip_prefix("container:") {
        // docker: the network namespace, and with it the /etc files, of a running container.
        let o = containers.find(other)?;
        let o = lifecycle::refresh(containers, o)?;
        if o.state.status != Status::Running || o.state.pid <= 0 {
            return Err(OpsError::NetworkContainerNotRunning {
                what: other.to_string(),
            });
        }
        options.namespaces.network =
            NamespaceMode::Path(PathBuf::from(format!("/proc/{}/ns/net", o.state.pid)));
        let odir = containers.dir(&o.id);
        options.etc_files = ["hosts", "resolv.conf", "hostname"]
            .iter()
            .map(|n| (PathBuf::from("/etc").join(n), odir.join(n)))
            .collect();
        record.config.network_mode = format!("container:{}", o.id);
        return Ok(());
    }
    let host_network = plan.network == "host";
    let mut extra_hosts = Vec::new();
    for h in &plan.extra_hosts {
        let ip = match &h.addr {
            f::HostAddr::Ip(ip) => *ip,
            f::HostAddr::HostGateway => {
                let nets = NetworkStore::open(root, &run_dir)?;
                match nets.inspect(&plan.network) {
                    Ok(n) if !host_network => std::net::IpAddr::V4(n.gateway),
                    _ => {
                        return Err(OpsError::HostGatewayNeedsBridge {
                            name: h.name.clone(),
                        })
                    }
                }
            }
        };
        extra_hosts.push(ExtraHost {
            name: h.name.clone(),
            ip,
        });
    }
    // Links: answered by the network's resolver on user networks; on the default bridge,
    // which resolves nothing, written into /etc/hosts with the running target's address.
    let mut links = Vec::new();
    for (target, alias) in &plan.links {
        let t = containers.find(target)?;
        if plan.network == network::DEFAULT_NETWORK {
            let ip = t
                .networks
                .get(network::DEFAULT_NETWORK)
                .and_then(|v| v["IPAddress"].as_str())
                .and_then(|s| s.parse().ok())
                .filter(|_| {
                    lifecycle::refresh(containers, t.clone())
                        .is_ok_and(|t| t.state.status == Status::Running)
                });
            let Some(ip) = ip else {
                return Err(OpsError::LinkNotRunning {
                    target: t.name.clone(),
                    name: record.name.clone(),
                    alias: alias.clone(),
                });
            };
            for name in [alias, &t.name] {
                extra_hosts.push(ExtraHost {
                    name: name.clone(),
                    ip,
                });
            }
        }
        links.push(network::etc::DnsLink {
            target: t.name,
            alias: alias.clone(),
        });
    }
    let etc = EtcConfig {
        dir: etc_dir.clone(),
        hostname: hostname.to_string(),
        extra_hosts,
        dns: DnsConfig {
            servers: if plan.dns.is_empty() && crate::rootless::uses_slirp(&plan.network) {
                // slirp4netns's forwarder, which asks the host's servers.
                vec![std::net::IpAddr::V4(network::slirp::DNS_ADDR)]
            } else {
                plan.dns.iter().filter_map(|d| d.parse().ok()).collect()
            },
            search: plan.dns_search.clone(),
            options: plan.dns_option.clone(),
            links,
        },
        host_network,
    };
    network::etc::write_files(&etc, &[], &[])?;
    options.etc_files = ["hosts", "resolv.conf", "hostname"]
        .iter()
        .map(|n| (PathBuf::from("/etc").join(n), etc_dir.join(n)))
        .collect();
    if host_network {
        options.namespaces.network = NamespaceMode::Host;
    } else {
        let rootless = crate::rootless::is_rootless();
        let user_nets = crate::rootless::networks::is_user_network(&plan.network)
            || !plan.extra_networks.is_empty();
        let nets = if (!rootless && plan.network != "none") || user_nets {
            Some(NetworkStore::open(root, &run_dir)?)
        } else {
            None
        };
        if let Some(nets) = &nets {
            // The networks must exist (the default bridge is made on first use).
            if plan.network != "none" && !(rootless && plan.network == network::DEFAULT_NETWORK) {
                nets.inspect(&plan.network)?;
            }
            for extra in &plan.extra_networks {
                nets.inspect(&extra.name)?;
            }
        }
        options.namespaces.network = if crate::rootless::is_rootless() {
            // The runtime makes it, inside the container's user namespace.
            NamespaceMode::Private
        } else {
            NamespaceMode::Path(network::Netns::path(&run_dir, &record.id))
        };
    }
    record.config.etc = Some(etc);
    record.config.network_mode = plan.network.clone();
    if let Some(ip) = plan.ip {
        record.config.endpoints.insert(
            plan.network.clone(),
            EndpointConfig {
                aliases: Vec::new(),
                ip: Some(ip),
            },
        );
    }
    for extra in &plan.extra_networks {
        record.config.extra_networks.push(extra.name.clone());
        if !extra.aliases.is_empty() || extra.ip.is_some() {
            record.config.endpoints.insert(
                extra.name.clone(),
                EndpointConfig {
                    aliases: extra.aliases.clone(),
                    ip: extra.ip,
                },
            );
        }
    }
    Ok(())
}

/// Everything after the record exists: snapshot, volumes, /etc files, spec, settings.
fn finish(
    root: &Path,
    containers: &ContainerStore,
    mut record: Record,
    plan: &Plan,
    image: &ImageConfig,
    top: Option<String>,
    sn: &dyn Snapshotter,
) -> Result<Record> {
    let paths = Paths::new(root, containers, &record);
    std::fs::create_dir_all(&paths.rootfs)
        .map_err(|e| OpsError::io(format!("creating {}", paths.rootfs.display()), e))?;
    let mounts = sn.prepare(&record.id, top.as_deref())?;
    snapshot::mount_all(&mounts, &paths.rootfs)?;
    let requests = mount_requests(plan, image);
    let resolved = resolve_mounts(root, containers, &mut record, &paths.rootfs, requests)?;
    // In the host's UTS namespace the container has the host's name, and the spec sets none.
    let host_uts = plan.options.namespaces.uts == NamespaceMode::Host;
    let hostname = plan.options.hostname.clone().unwrap_or_else(|| {
        if plan.network == "host" || host_uts {
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            record.id[..12].to_string()
        }
    });
    let mut options = plan.options.clone();
    plan_network(
        root,
        containers,
        &mut record,
        plan,
        &paths,
        &hostname,
        &mut options,
    )?;
    let mut publish = plan.publish.clone();
    if plan.publish_all {
        let mut exposed = Vec::new();
        for e in image.exposed_ports.iter().chain(&plan.exposed_ports) {
            exposed.extend(network::parse_exposed(e)?);
        }
        publish.extend(network::publish_all(&exposed, &publish, None)?);
    }
    record.config.publish = publish;
    record.config.aliases = plan.aliases.clone();
    options.rootfs = paths.rootfs.clone();
    options.mounts = resolved;
    options.hostname = (!host_uts || plan.options.hostname.is_some()).then(|| hostname.clone());
    options.process.env = plan.env.clone();
    options.process.cmd = plan.cmd.clone();
    options.cgroups_path = Some(record.cgroup());
    let mut spec = specgen::generate(image, &options)?;
    if crate::rootless::is_rootless() {
        crate::rootless::adapt_spec(&mut spec, &crate::rootless::id_ranges())?;
        if crate::rootless::networks::uses_user_networks(&record) {
            crate::rootless::networks::join_user_namespace(&mut spec)?;
        }
    }
    let process = spec.process().clone().unwrap_or_default();
    // docker makes a missing working directory (the runtime would fail to chdir).
    specgen::create_workdir(&paths.rootfs, process.cwd())?;
    std::fs::create_dir_all(&paths.bundle)
        .map_err(|e| OpsError::io(format!("creating {}", paths.bundle.display()), e))?;
    let spec_path = paths.bundle.join("config.json");
    let bytes = serde_json::to_vec_pretty(&spec).map_err(OpsError::EncodeSpec)?;
    std::fs::write(&spec_path, bytes)
        .map_err(|e| OpsError::io(format!("writing {}", spec_path.display()), e))?;
    record_settings(&mut record, plan, image, &options, &process, hostname);
    containers.save(&record)?;
    Ok(record)
}

/// What inspect shows as the container's Config and HostConfig.
fn record_settings(
    record: &mut Record,
    plan: &Plan,
    image: &ImageConfig,
    options: &specgen::Options,
    process: &oci_spec::runtime::Process,
    hostname: String,
) {
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
    c.domainname = plan.options.domainname.clone().unwrap_or_default();
    c.host_request = plan.host_request.clone();
    c.tty = plan.options.process.tty;
    c.open_stdin = plan.options.process.stdin_open;
    c.stdin_once = plan.stdin_once;
    [c.attach_stdin, c.attach_stdout, c.attach_stderr] = plan.attach;
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
    c.stop_timeout = plan.stop_timeout_or_default();
    c.stop_signal_set = plan.stop_signal.is_some() || image.stop_signal.is_some();
    c.stop_timeout_set = plan.stop_timeout.is_some();
    c.healthcheck = health_config(&plan.health, image);
    c.exposed_ports = image.exposed_ports.iter().cloned().collect();
    for p in &plan.exposed_ports {
        if !c.exposed_ports.contains(p) {
            c.exposed_ports.push(p.clone());
        }
    }
    c.restart = plan.restart.clone();
    c.read_only = plan.options.security.read_only;
    c.privileged = plan.options.security.privileged;
    c.memory = plan.options.resources.memory.unwrap_or(0) as i64;
    c.nano_cpus = plan.options.resources.cpus.map(|c| c.0 as i64).unwrap_or(0);
    c.pids_limit = plan.options.resources.pids_limit.unwrap_or(0);
    c.sysctls = plan.options.sysctls.clone();
    c.log_max_size = plan.log_max_size;
    c.log_max_file = plan.log_max_file;
    c.log_opts = plan.log_opts.clone();
    // The regexes were checked with the plan (LogOptions::from_opts): nothing fails here.
    c.log_attrs =
        crate::logs::extra_attributes(&plan.log_opts, &c.labels, &c.env).unwrap_or_default();
    if record.config.healthcheck.is_some() {
        record.state.health = Some(Health {
            status: "starting".into(),
            ..Default::default()
        });
    }
}
