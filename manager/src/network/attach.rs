//! Attaching a container's network namespace to networks and detaching it, with crash
//! recovery; each network's backend (native or CNI) does the wiring.
//!
//! Locks, narrowest first: a container's endpoint record is changed only under its own lock
//! (`endpoints/<id>.lock`), so recovery can tell a record whose owner died (lock free) from one
//! being worked on; an attach holds its network's lock shared (other starts run beside it,
//! `network rm` waits); the host lock is taken only to set a network up the first time and by
//! the CNI backend, whose plugins share host-wide chains.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use ipnet::Ipv4Net;

use super::cni::CniError;
use super::cni_backend;
use super::dns::{self, DnsError};
use super::endpoint::{self, Attachment, EndpointRecord, NetworkEndpoint, Phase};
use super::etc::{self, EtcConfig, EtcError, HostEntry};
use super::firewall::{self, FirewallError};
use super::ipam::Leases;
use super::native::{self, NativeError};
use super::netlink::{self, NetlinkError};
use super::netns;
use super::ports::{assign_host_ports, PortError, PortMapping};
use super::store::{Backend, Network, NetworkStore, StoreError, DEFAULT_NETWORK};
use crate::lock::{self, FileLock, LockError};

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error(transparent)]
    Etc(#[from] EtcError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Dns(#[from] DnsError),
    #[error("setting up loopback in {netns}")]
    Loopback {
        netns: String,
        #[source]
        source: NetlinkError,
    },
    #[error("attaching container {container_id} to network {network}")]
    Add {
        container_id: String,
        network: String,
        #[source]
        source: Box<CniError>,
    },
    #[error("attaching container {container_id} to network {network}")]
    Native {
        container_id: String,
        network: String,
        #[source]
        source: Box<NativeError>,
    },
    #[error("detaching container {container_id} from network {network}: {}", join(.errors))]
    Del {
        container_id: String,
        network: String,
        errors: Vec<CniError>,
    },
    #[error("detaching container {container_id} from network {network}: {}", join(.errors))]
    NativeDel {
        container_id: String,
        network: String,
        errors: Vec<NativeError>,
    },
    #[error("network {network} returned no IPv4 address for container {container_id}")]
    NoAddress {
        container_id: String,
        network: String,
    },
    #[error("--ip {ip} is not a free host address of network {network} ({subnet})")]
    BadStaticIp {
        ip: Ipv4Addr,
        network: String,
        subnet: Ipv4Net,
    },
    #[error("container {container_id} is not attached to network {network}")]
    NotAttached {
        container_id: String,
        network: String,
    },
    #[error("{} (undoing it failed too: {})", chain(.cause.as_ref()), join(.cleanup))]
    Undo {
        cause: Box<AttachError>,
        cleanup: Vec<AttachError>,
    },
    #[error("in the rootless network namespace")]
    Rootless(#[source] Box<crate::rootless::netns::NetnsError>),
    #[error("finishing interrupted network teardowns: {}", join(.errors))]
    Recovery { errors: Vec<AttachError> },
    #[error("tearing down the networking of container {container_id}: {}", join(.errors))]
    Teardown {
        container_id: String,
        errors: Vec<AttachError>,
    },
}

/// Each error with its chain of causes, `; `-separated.
pub(crate) fn join<E: std::error::Error>(errors: &[E]) -> String {
    errors.iter().map(chain).collect::<Vec<_>>().join("; ")
}

fn chain(e: &impl std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

/// The container being attached.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    pub container_id: &'a str,
    pub container_name: &'a str,
    /// The container's network namespace (see `Netns::create`).
    pub netns: &'a Path,
    /// Where its hosts, resolv.conf and hostname go; `None` leaves them to the caller.
    pub etc: Option<&'a EtcConfig>,
}

/// One network to attach to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Name or id; `bridge` is the default network.
    pub network: String,
    /// Extra names the other containers on this network resolve to this one.
    pub aliases: Vec<String>,
    /// A fixed address (`--ip`) instead of the next free one.
    pub ip: Option<Ipv4Addr>,
}

impl Request {
    pub fn new(network: &str) -> Self {
        Self {
            network: network.into(),
            ..Self::default()
        }
    }
}

/// What one attachment asks of a backend.
pub struct AddRequest<'a> {
    pub container_id: &'a str,
    pub netns: &'a Path,
    pub interface: &'a str,
    pub aliases: &'a [String],
    pub static_ip: Option<Ipv4Addr>,
    /// This network carries the container's default routes.
    pub default_route: bool,
    /// Ports published through this network.
    pub publish: &'a [PortMapping],
}

fn endpoint_lock(store: &NetworkStore, container_id: &str) -> Result<FileLock, AttachError> {
    Ok(FileLock::exclusive(
        &store.endpoint_lock_path(container_id),
    )?)
}

/// Brings up loopback in `ep.netns` and attaches it to every requested network it is not on
/// yet; publishes `ports` (host port 0 = a free one, see `assign_host_ports`) on the first
/// non-internal network. Writes the container's etc files and starts the embedded DNS
/// resolver of each name-resolving network that has none running. Idempotent: networks
/// already attached are kept. On error, the networks this call attached are detached again
/// before the error returns.
pub fn attach(
    store: &NetworkStore,
    ep: &Endpoint<'_>,
    requests: &[Request],
    ports: &[PortMapping],
) -> Result<Vec<Attachment>, AttachError> {
    // Someone else's leftovers must not stop this start: what recovery cannot undo now is
    // reported by the commands that need it done (`network rm`, `network prune`).
    let _ = recover(store);
    let _me = endpoint_lock(store, ep.container_id)?;
    let mut rec = endpoint::load(store, ep.container_id)?.unwrap_or_else(|| EndpointRecord {
        container_id: ep.container_id.into(),
        container_name: ep.container_name.into(),
        netns: ep.netns.to_path_buf(),
        etc: None,
        ports: Vec::new(),
        networks: Vec::new(),
    });
    if let Some(cfg) = ep.etc {
        rec.etc = Some(cfg.clone());
    }
    let mut ports = ports.to_vec();
    assign_host_ports(&mut ports)?;
    let mut added = Vec::new();
    for req in requests {
        match attach_one(store, &mut rec, req, &ports) {
            Ok(Some(net)) => added.push(net),
            Ok(None) => {}
            Err(cause) => return Err(undo_all(store, &mut rec, &added, cause)),
        }
    }
    endpoint::save(store, &rec)?;
    let ready = (|| -> Result<(), AttachError> {
        // A native attachment brings loopback up with the container's link; otherwise (no
        // network, or CNI ones only) it is done here.
        if !rec.networks.iter().any(|n| n.backend == Backend::Native) {
            netlink::loopback_up(ep.netns).map_err(|source| AttachError::Loopback {
                netns: ep.netns.display().to_string(),
                source,
            })?;
        }
        write_etc(store, &rec)?;
        for net in added.iter().filter(|n| n.resolves_names()) {
            dns::ensure(store, net)?;
        }
        Ok(())
    })();
    match ready {
        Ok(()) => Ok(rec.attachments()),
        Err(cause) => Err(undo_all(store, &mut rec, &added, cause)),
    }
}

/// Detaches the networks this attach added, after `cause` stopped it.
fn undo_all(
    store: &NetworkStore,
    rec: &mut EndpointRecord,
    added: &[Network],
    cause: AttachError,
) -> AttachError {
    let mut cleanup = Vec::new();
    for net in added.iter().rev() {
        let Some(n) = rec.networks.iter().find(|n| n.network == net.name).cloned() else {
            continue;
        };
        match detach_entry(store, rec, &n, true) {
            Ok(()) => rec.networks.retain(|e| e.network != net.name),
            Err(e) => cleanup.push(e),
        }
    }
    let saved = if rec.networks.is_empty() {
        // No record left: its lock file goes too, as after a detach of the last network (a
        // rootless container killed while it is wired gets here).
        let deleted = endpoint::delete(store, &rec.container_id);
        let _ = std::fs::remove_file(store.endpoint_lock_path(&rec.container_id));
        deleted
    } else {
        endpoint::save(store, rec)
    };
    if let Err(e) = saved {
        cleanup.push(e.into());
    }
    if cleanup.is_empty() {
        cause
    } else {
        AttachError::Undo {
            cause: Box::new(cause),
            cleanup,
        }
    }
}

/// Attaches `rec` to one network; `Some(network)` when it did, `None` when already attached.
fn attach_one(
    store: &NetworkStore,
    rec: &mut EndpointRecord,
    req: &Request,
    ports: &[PortMapping],
) -> Result<Option<Network>, AttachError> {
    let net = store.inspect(&req.network)?;
    if rec.networks.iter().any(|n| n.network == net.name) {
        return Ok(None);
    }
    if let Some(ip) = req.ip {
        if !net.subnet.contains(&ip)
            || ip == net.gateway
            || ip == net.subnet.network()
            || ip == net.subnet.broadcast()
        {
            return Err(AttachError::BadStaticIp {
                ip,
                network: net.name,
                subnet: net.subnet,
            });
        }
    }
    let _net_lock = store.network_lock(&net.name, false)?;
    // Removed between the lookup and the lock?
    let net = store.inspect(&net.name)?;
    let interface = (0..)
        .map(|i| format!("eth{i}"))
        .find(|n| !rec.networks.iter().any(|e| &e.interface == n))
        .unwrap_or_default();
    // One default route only (a second would fail with EEXIST): the first non-internal network
    // gets it, and the published ports with it.
    let first_external = !net.internal && !rec.networks.iter().any(|n| !n.internal);
    let publish: &[PortMapping] = if first_external && !ports.is_empty() {
        ports
    } else {
        &[]
    };
    rec.networks.push(NetworkEndpoint {
        network: net.name.clone(),
        bridge: net.bridge.clone(),
        internal: net.internal,
        interface: interface.clone(),
        phase: Phase::Adding,
        backend: net.backend,
        conflist: None,
        args: Vec::new(),
        result: serde_json::Value::Null,
        host_link: String::new(),
        ports: Vec::new(),
        attachment: None,
        aliases: req.aliases.clone(),
    });
    // Recorded before anything is made: if berth dies half-way, recovery undoes it.
    endpoint::save(store, rec)?;
    let (id, netns) = (rec.container_id.clone(), rec.netns.clone());
    let Some(entry) = rec.networks.last_mut() else {
        return Ok(None);
    };
    let r = AddRequest {
        container_id: &id,
        netns: &netns,
        interface: &interface,
        aliases: &req.aliases,
        static_ip: req.ip,
        default_route: first_external,
        publish,
    };
    let made = match net.backend {
        Backend::Native => {
            native::add(store, &net, entry, &r).map_err(|source| AttachError::Native {
                container_id: id.clone(),
                network: net.name.clone(),
                source: Box::new(source),
            })
        }
        Backend::Cni => cni_backend::add(store, &net, entry, &r),
    };
    match made {
        Ok(attachment) => {
            entry.phase = Phase::Ready;
            entry.attachment = Some(attachment);
            if !publish.is_empty() {
                rec.ports = publish.to_vec();
            }
            endpoint::save(store, rec)?;
            Ok(Some(net))
        }
        Err(cause) => {
            // Undo this network's partial attachment now rather than leaving it to recovery.
            let failed = entry.clone();
            let cleanup = detach_entry(store, rec, &failed, true);
            rec.networks.retain(|n| n.network != net.name);
            match cleanup {
                Ok(()) => Err(cause),
                Err(e) => Err(AttachError::Undo {
                    cause: Box::new(cause),
                    cleanup: vec![e],
                }),
            }
        }
    }
}

/// Undoes one network's attachment, by its backend. `delete_link`: the namespace stays (a
/// disconnect), so the container's link must be deleted; otherwise it goes with the namespace.
fn detach_entry(
    store: &NetworkStore,
    rec: &EndpointRecord,
    n: &NetworkEndpoint,
    delete_link: bool,
) -> Result<(), AttachError> {
    match n.backend {
        Backend::Native => {
            let net = store.get(&n.network).ok();
            let errors = native::del(store, net.as_ref(), n, &rec.container_id, delete_link);
            if errors.is_empty() {
                Ok(())
            } else {
                Err(AttachError::NativeDel {
                    container_id: rec.container_id.clone(),
                    network: n.network.clone(),
                    errors,
                })
            }
        }
        Backend::Cni => cni_backend::del(&rec.container_id, &rec.netns, n),
    }
}

/// Detaches the container from `network`, or from every network when `None` (its teardown:
/// the caller removes the namespace right after, with `Netns::remove`, and the container's
/// links go with it). The record is updated, the container's resolv.conf rewritten after a
/// disconnect. Idempotent: nothing attached is nothing to do.
pub fn detach(
    store: &NetworkStore,
    container_id: &str,
    network: Option<&str>,
) -> Result<(), AttachError> {
    if network.is_none() && endpoint::load(store, container_id)?.is_none() {
        // Nothing attached (a second teardown): no lock file made for nothing.
        return Ok(());
    }
    let _me = endpoint_lock(store, container_id)?;
    if let Some(name) = network {
        let rec = endpoint::load(store, container_id)?;
        let attached = rec.as_ref().and_then(|r| {
            r.networks
                .iter()
                .find(|n| n.network == name)
                .map(|n| n.network.clone())
                .or_else(|| {
                    let net = store.inspect(name).ok()?;
                    r.networks
                        .iter()
                        .any(|n| n.network == net.name)
                        .then_some(net.name)
                })
        });
        let Some(name) = attached else {
            return Err(AttachError::NotAttached {
                container_id: container_id.into(),
                network: name.into(),
            });
        };
        return detach_locked(store, container_id, Some(&name));
    }
    detach_locked(store, container_id, None)
}

/// Detach with the container's lock held; errors of every step are collected.
fn detach_locked(
    store: &NetworkStore,
    container_id: &str,
    network: Option<&str>,
) -> Result<(), AttachError> {
    let Some(mut rec) = endpoint::load(store, container_id)? else {
        return Ok(());
    };
    let mut errors = Vec::new();
    let chosen: Vec<NetworkEndpoint> = rec
        .networks
        .iter()
        .filter(|n| network.is_none_or(|w| n.network == w))
        .rev()
        .cloned()
        .collect();
    let mut cni = false;
    for n in chosen {
        cni |= n.backend == Backend::Cni;
        match detach_entry(store, &rec, &n, network.is_some()) {
            Ok(()) => rec.networks.retain(|e| e.network != n.network),
            Err(e) => errors.push(e),
        }
    }
    if rec.networks.is_empty() {
        endpoint::delete(store, container_id)?;
        let _ = std::fs::remove_file(store.endpoint_lock_path(container_id));
    } else {
        if rec.networks.iter().all(|n| n.internal) {
            rec.ports.clear();
        }
        endpoint::save(store, &rec)?;
        if network.is_some() {
            if let Err(e) = write_etc(store, &rec) {
                errors.push(e);
            }
        }
    }
    // Half-written records of writers that were killed: theirs when their lock is free.
    for (id, tmp) in endpoint::stale_temp_files(store) {
        if let Some(_lock) = try_endpoint_lock(store, &id)? {
            if let Err(e) = endpoint::remove_if_there(&tmp) {
                errors.push(e.into());
            }
            // No record left either: the lock goes too, as a detach of the last network does.
            if endpoint::load(store, &id)?.is_none() {
                let _ = std::fs::remove_file(store.endpoint_lock_path(&id));
            }
        }
    }
    if cni {
        errors.extend(cni_backend::teardown_idle(store)?);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AttachError::Teardown {
            container_id: container_id.into(),
            errors,
        })
    }
}

/// Finishes what crashed commands left: attachments still `adding` whose owner is gone, and
/// records whose namespace is gone (the container's teardown was interrupted, or the host
/// rebooted). Records whose lock is held belong to a live command and are skipped.
pub fn recover(store: &NetworkStore) -> Result<(), AttachError> {
    let mut errors = Vec::new();
    let mut cni = false;
    for rec in endpoint::load_all(store)? {
        let gone = !netns::is_netns(&rec.netns);
        let adding = rec.networks.iter().any(|n| n.phase == Phase::Adding);
        if !gone && !adding {
            continue;
        }
        let Some(_lock) = try_endpoint_lock(store, &rec.container_id)? else {
            continue;
        };
        // Read again under the lock: the owner may have finished meanwhile (and removed the
        // lock file, which the try above made again).
        let Some(rec) = endpoint::load(store, &rec.container_id)? else {
            let _ = std::fs::remove_file(store.endpoint_lock_path(&rec.container_id));
            continue;
        };
        cni |= rec.networks.iter().any(|n| n.backend == Backend::Cni);
        if !netns::is_netns(&rec.netns) {
            if let Err(e) = detach_locked(store, &rec.container_id, None) {
                errors.push(e);
            }
            continue;
        }
        for n in rec.networks.iter().filter(|n| n.phase == Phase::Adding) {
            if let Err(e) = detach_locked(store, &rec.container_id, Some(&n.network)) {
                errors.push(e);
            }
        }
    }
    if cni {
        errors.extend(cni_backend::teardown_idle(store)?);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AttachError::Recovery { errors })
    }
}

/// The container's endpoint lock if nobody holds it.
fn try_endpoint_lock(
    store: &NetworkStore,
    container_id: &str,
) -> Result<Option<std::fs::File>, AttachError> {
    let path = store.endpoint_lock_path(container_id);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| LockError::Open {
            path: path.clone(),
            source,
        })?;
    match lock::try_lock_exclusive(&file) {
        Ok(true) => Ok(Some(file)),
        Ok(false) => Ok(None),
        Err(source) => Err(LockError::Lock { path, source }.into()),
    }
}

/// Removes what `net` has on the host: its resolver, the bridge and rules (native: made once
/// for the network; CNI: left by the plugins) and its leases. Called by `network rm` with the
/// network's lock held and no endpoint left; errors are collected.
pub(crate) fn teardown_network(store: &NetworkStore, net: &Network) -> Vec<AttachError> {
    let mut errors = Vec::new();
    if let Err(e) = dns::stop(store, net) {
        errors.push(e.into());
    }
    match net.backend {
        // Rootless: the bridge and rules are in the rootless network namespace.
        Backend::Native if crate::rootless::is_rootless() => {
            if let Err(e) = crate::rootless::networks::remove_network(net) {
                errors.push(AttachError::Rootless(Box::new(e)));
            }
        }
        Backend::Native => errors.extend(native::remove_network(net).into_iter().map(|source| {
            AttachError::Native {
                container_id: String::new(),
                network: net.name.clone(),
                source: Box::new(source),
            }
        })),
        Backend::Cni => {
            let idle =
                !firewall::link_exists(&net.bridge) || !firewall::bridge_has_ports(&net.bridge);
            if idle {
                match firewall::host_lock() {
                    Ok(_host) => errors.extend(
                        firewall::remove_network(&net.bridge, net.internal)
                            .into_iter()
                            .map(AttachError::from),
                    ),
                    Err(e) => errors.push(e.into()),
                }
            }
        }
    }
    if store.ipam_dir(net) == store.ipam_dir_of_root() {
        if let Err(e) = Leases::new(&store.ipam_dir(net), &net.name).remove_all() {
            errors.push(AttachError::Native {
                container_id: String::new(),
                network: net.name.clone(),
                source: Box::new(e.into()),
            });
        }
    }
    errors
}

/// The ports published for a container (host ports resolved).
pub fn published_ports(
    store: &NetworkStore,
    container_id: &str,
) -> Result<Vec<PortMapping>, AttachError> {
    Ok(endpoint::load(store, container_id)?
        .map(|r| r.ports)
        .unwrap_or_default())
}

/// The attachments of a container.
pub fn attachments(
    store: &NetworkStore,
    container_id: &str,
) -> Result<Vec<Attachment>, AttachError> {
    Ok(endpoint::load(store, container_id)?
        .map(|r| r.attachments())
        .unwrap_or_default())
}

/// Writes the container's hosts (itself; other containers are found through the embedded
/// DNS), resolv.conf (the resolvers of its name-resolving networks, else the host's servers)
/// and hostname.
fn write_etc(store: &NetworkStore, rec: &EndpointRecord) -> Result<(), AttachError> {
    let Some(cfg) = &rec.etc else {
        return Ok(());
    };
    let mut names = vec![cfg.hostname.clone()];
    if rec.container_name != cfg.hostname && !rec.container_name.is_empty() {
        names.push(rec.container_name.clone());
    }
    let own: Vec<HostEntry> = rec
        .attachments()
        .into_iter()
        .take(1)
        .flat_map(|a| a.ips())
        .map(|ip| HostEntry {
            ip,
            names: names.clone(),
        })
        .collect();
    let mut resolvers: Vec<IpAddr> = Vec::new();
    let mut seen = BTreeSet::new();
    for a in rec.attachments() {
        if a.network != DEFAULT_NETWORK && seen.insert(a.network.clone()) {
            // Only networks with a resolver (a store where DNS is off has none).
            if store.resolver_program().is_some() {
                resolvers.push(IpAddr::V4(a.gateway));
            }
        }
    }
    etc::write_files(cfg, &own, &resolvers)?;
    Ok(())
}
