//! Attaching a container's network namespace to networks (CNI ADD) and detaching it (CNI DEL),
//! with crash recovery and the teardown of whatever the last user of a network leaves.
//!
//! Every change holds the store lock (records) and the host lock (bridges and iptables rules
//! shared by every berth store on the host), so a crashed command's leftovers are always seen
//! whole by the next one: an endpoint still `adding` under the lock belongs to a dead process.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;
use serde_json::{json, Value};

use super::cni::{self, CniError, ConfList, Op, Plugins, Target, CNI_VERSION};
use super::endpoint::{self, Attachment, EndpointRecord, NetworkEndpoint, Phase};
use super::etc::{self, EtcConfig, EtcError, HostEntry};
use super::firewall::{self, FirewallError};
use super::netns;
use super::ports::{assign_host_ports, PortError, PortMapping};
use super::store::{Network, NetworkStore, StoreError};

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
    #[error("setting up loopback in {netns}")]
    Loopback {
        netns: String,
        #[source]
        source: Box<CniError>,
    },
    #[error("attaching container {container_id} to network {network}")]
    Add {
        container_id: String,
        network: String,
        #[source]
        source: Box<CniError>,
    },
    #[error("detaching container {container_id} from network {network}: {}", join(.errors))]
    Del {
        container_id: String,
        network: String,
        errors: Vec<CniError>,
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
    #[error("finishing interrupted network teardowns: {}", join(.errors))]
    Recovery { errors: Vec<AttachError> },
    #[error("tearing down the networking of container {container_id}: {}", join(.errors))]
    Teardown {
        container_id: String,
        errors: Vec<AttachError>,
    },
}

/// Each error with its chain of causes, `; `-separated.
fn join<E: std::error::Error>(errors: &[E]) -> String {
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

/// Brings up loopback in `ep.netns` and attaches it to every requested network it is not on
/// yet; publishes `ports` (host port 0 = a free one, see `assign_host_ports`) on the first
/// non-internal network. Writes the container's etc files and rewrites the hosts files of its
/// peers. Idempotent: networks already attached are kept. On error, the networks this call
/// attached are detached again before the error returns.
pub fn attach(
    store: &NetworkStore,
    ep: &Endpoint<'_>,
    requests: &[Request],
    ports: &[PortMapping],
) -> Result<Vec<Attachment>, AttachError> {
    let _lock = store.lock()?;
    let _host = firewall::host_lock()?;
    recover_locked(store)?;
    let plugins = Plugins::default();
    let lo = json!({"cniVersion": CNI_VERSION, "name": "loopback", "type": "loopback"});
    let lo_target = Target {
        container_id: ep.container_id,
        netns: ep.netns,
        ifname: "lo",
        args: &[],
    };
    plugins
        .exec(Op::Add, &lo_target, &lo)
        .map_err(|source| AttachError::Loopback {
            netns: ep.netns.display().to_string(),
            source: Box::new(source),
        })?;
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
        match attach_one(store, &plugins, &mut rec, req, &ports) {
            Ok(Some(name)) => added.push(name),
            Ok(None) => {}
            Err(cause) => {
                let mut cleanup = Vec::new();
                for name in added.iter().rev() {
                    if let Err(e) = detach_locked(store, &plugins, ep.container_id, Some(name)) {
                        cleanup.push(e);
                    }
                }
                let empty = endpoint::load(store, ep.container_id)
                    .map(|r| r.is_some_and(|r| r.networks.is_empty()))
                    .unwrap_or(false);
                if empty {
                    if let Err(e) = endpoint::delete(store, ep.container_id) {
                        cleanup.push(e.into());
                    }
                }
                if cleanup.is_empty() {
                    return Err(cause);
                }
                return Err(AttachError::Undo {
                    cause: Box::new(cause),
                    cleanup,
                });
            }
        }
    }
    endpoint::save(store, &rec)?;
    refresh_hosts(store, ep.container_id)?;
    Ok(rec.attachments())
}

/// Attaches `rec` to one network; `Some(name)` when it did, `None` when already attached.
fn attach_one(
    store: &NetworkStore,
    plugins: &Plugins,
    rec: &mut EndpointRecord,
    req: &Request,
    ports: &[PortMapping],
) -> Result<Option<String>, AttachError> {
    let net = store.inspect_locked(&req.network)?;
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
    firewall::save_forwarding()?;
    let interface = (0..)
        .map(|i| format!("eth{i}"))
        .find(|n| !rec.networks.iter().any(|e| &e.interface == n))
        .unwrap_or_default();
    // One default route only (a second would fail with EEXIST): the first non-internal network
    // gets it, and the published ports with it.
    let first_external = !net.internal && !rec.networks.iter().any(|n| !n.internal);
    let publish = if first_external && !ports.is_empty() {
        rec.ports = ports.to_vec();
        ports
    } else {
        &[]
    };
    let conflist = conflist(store, &net, first_external, publish, req.ip.is_none());
    let args: Vec<(String, String)> = req
        .ip
        .map(|ip| vec![("IP".to_string(), ip.to_string())])
        .unwrap_or_default();
    rec.networks.push(NetworkEndpoint {
        network: net.name.clone(),
        bridge: net.bridge.clone(),
        internal: net.internal,
        interface: interface.clone(),
        phase: Phase::Adding,
        conflist: conflist.clone(),
        args: args.clone(),
        result: Value::Null,
        attachment: None,
        aliases: req.aliases.clone(),
    });
    // Recorded before the plugins run: if berth dies during ADD, recovery runs DEL.
    endpoint::save(store, rec)?;
    let target = Target {
        container_id: &rec.container_id,
        netns: &rec.netns,
        ifname: &interface,
        args: &args,
    };
    let result = plugins
        .add_list(&conflist, &target)
        .map_err(|source| AttachError::Add {
            container_id: rec.container_id.clone(),
            network: net.name.clone(),
            source: Box::new(source),
        });
    let attachment = result.and_then(|r| {
        let a = attachment_from(&rec.container_id, &net, &interface, &req.aliases, &r)?;
        firewall::add_network(&net.bridge, net.internal)?;
        Ok((r, a))
    });
    match attachment {
        Ok((result, attachment)) => {
            if let Some(e) = rec.networks.last_mut() {
                e.phase = Phase::Ready;
                e.result = result;
                e.attachment = Some(attachment);
            }
            endpoint::save(store, rec)?;
            Ok(Some(net.name))
        }
        Err(cause) => {
            // Undo this network's partial ADD now rather than leaving it to recovery.
            let cleanup = match detach_locked(store, plugins, &rec.container_id, Some(&net.name)) {
                Ok(()) => Vec::new(),
                Err(e) => vec![e],
            };
            rec.networks.retain(|n| n.network != net.name);
            if cleanup.is_empty() {
                Err(cause)
            } else {
                Err(AttachError::Undo {
                    cause: Box::new(cause),
                    cleanup,
                })
            }
        }
    }
}

/// The plugin list of one attachment: bridge with host-local IPAM, portmap when ports are
/// published, and the firewall plugin. `dynamic`: the address is host-local's pick.
fn conflist(
    store: &NetworkStore,
    net: &Network,
    default_route: bool,
    ports: &[PortMapping],
    dynamic: bool,
) -> ConfList {
    let mut range = json!({"subnet": net.subnet.to_string(), "gateway": net.gateway.to_string()});
    // --ip-range limits the addresses handed out, not those asked for with --ip (as in
    // docker); host-local refuses a requested address outside its range, so a static
    // attachment's list spans the whole subnet. The leases are the same files either way.
    let ip_range = net.ip_range.filter(|_| dynamic);
    if let Some(r) = ip_range {
        let first = r
            .network()
            .max(Ipv4Addr::from(u32::from(net.subnet.network()) + 1));
        let last = r
            .broadcast()
            .min(Ipv4Addr::from(u32::from(net.subnet.broadcast()) - 1));
        range["rangeStart"] = json!(first.to_string());
        range["rangeEnd"] = json!(last.to_string());
    }
    let routes = if default_route {
        json!([{"dst": "0.0.0.0/0"}])
    } else {
        json!([])
    };
    let mut plugins = vec![json!({
        "type": "bridge",
        "bridge": net.bridge,
        "isGateway": true,
        "ipMasq": !net.internal,
        "hairpinMode": true,
        "ipam": {
            "type": "host-local",
            "ranges": [[range]],
            "routes": routes,
            "dataDir": store.ipam_dir(net).display().to_string(),
        },
    })];
    if !ports.is_empty() {
        let mappings: Vec<Value> = ports
            .iter()
            .map(|p| {
                let mut m = json!({
                    "hostPort": p.host_port,
                    "containerPort": p.container_port,
                    "protocol": p.protocol.to_string(),
                });
                if let Some(ip) = p.host_ip {
                    m["hostIP"] = json!(ip.to_string());
                }
                m
            })
            .collect();
        plugins.push(json!({
            "type": "portmap",
            "capabilities": {"portMappings": true},
            "runtimeConfig": {"portMappings": mappings},
        }));
    }
    plugins.push(json!({"type": "firewall", "backend": "iptables"}));
    ConfList {
        cni_version: CNI_VERSION.into(),
        name: net.name.clone(),
        plugins,
    }
}

fn attachment_from(
    container_id: &str,
    net: &Network,
    interface: &str,
    aliases: &[String],
    result: &Value,
) -> Result<Attachment, AttachError> {
    let parsed = cni::parse_result("bridge", result).map_err(|source| AttachError::Add {
        container_id: container_id.into(),
        network: net.name.clone(),
        source: Box::new(source),
    })?;
    let no_address = || AttachError::NoAddress {
        container_id: container_id.into(),
        network: net.name.clone(),
    };
    let (ip, cfg) = parsed
        .ips
        .iter()
        .find_map(|c| c.address.parse::<Ipv4Net>().ok().map(|ip| (ip, c)))
        .ok_or_else(no_address)?;
    let mac = cfg
        .interface
        .and_then(|i| parsed.interfaces.get(i))
        .or_else(|| parsed.interfaces.iter().find(|i| i.sandbox.is_some()))
        .map(|i| i.mac.clone())
        .unwrap_or_default();
    Ok(Attachment {
        network: net.name.clone(),
        interface: interface.into(),
        ip: ip.addr(),
        prefix: ip.prefix_len(),
        gateway: match cfg.gateway {
            Some(std::net::IpAddr::V4(g)) => g,
            _ => net.gateway,
        },
        mac,
        aliases: aliases.to_vec(),
    })
}

/// Detaches the container from `network` (every network when `None`): CNI DEL in reverse, the
/// record updated, peers' hosts files rewritten, and networks left without users torn down.
/// Idempotent: nothing attached is nothing to do. Leaves the namespace itself to the caller
/// (`Netns::remove`, after this).
pub fn detach(
    store: &NetworkStore,
    container_id: &str,
    network: Option<&str>,
) -> Result<(), AttachError> {
    let _lock = store.lock()?;
    let _host = firewall::host_lock()?;
    let plugins = Plugins::default();
    if let Some(name) = network {
        let net = store.inspect_locked(name)?;
        let rec = endpoint::load(store, container_id)?;
        if !rec.is_some_and(|r| r.networks.iter().any(|n| n.network == net.name)) {
            return Err(AttachError::NotAttached {
                container_id: container_id.into(),
                network: net.name,
            });
        }
        return detach_locked(store, &plugins, container_id, Some(&net.name));
    }
    detach_locked(store, &plugins, container_id, None)
}

/// Detach with the locks held; errors of every step are collected.
fn detach_locked(
    store: &NetworkStore,
    plugins: &Plugins,
    container_id: &str,
    network: Option<&str>,
) -> Result<(), AttachError> {
    let Some(mut rec) = endpoint::load(store, container_id)? else {
        return Ok(());
    };
    let mut errors = Vec::new();
    let mut touched = BTreeSet::new();
    let chosen: Vec<NetworkEndpoint> = rec
        .networks
        .iter()
        .filter(|n| network.is_none_or(|w| n.network == w))
        .rev()
        .cloned()
        .collect();
    // With the namespace gone (or only its empty mount point left), DEL runs without one, as
    // the spec allows: the plugins then release what lives outside it (leases, host rules).
    let alive = netns::is_netns(&rec.netns);
    let netns_arg = if alive {
        rec.netns.as_path()
    } else {
        Path::new("")
    };
    for n in chosen {
        let target = Target {
            container_id,
            netns: netns_arg,
            ifname: &n.interface,
            args: &n.args,
        };
        // A DEL after the namespace is gone cannot find the address the bridge plugin's
        // masquerade rules are keyed on; remove those by their chain name as well.
        let del = plugins.del_list(&n.conflist, &target, &n.result);
        firewall::sweep_masquerade(&n.network, container_id);
        match del {
            Ok(()) => {
                rec.networks.retain(|e| e.network != n.network);
                touched.insert(n.network.clone());
            }
            Err(errs) => errors.push(AttachError::Del {
                container_id: container_id.into(),
                network: n.network.clone(),
                errors: errs,
            }),
        }
    }
    if rec.networks.is_empty() {
        endpoint::delete(store, container_id)?;
    } else {
        if rec.networks.iter().all(|n| n.internal) {
            rec.ports.clear();
        }
        endpoint::save(store, &rec)?;
    }
    for name in &touched {
        if let Err(e) = refresh_network(store, name) {
            errors.push(e);
        }
    }
    errors.extend(teardown_idle(store)?);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AttachError::Teardown {
            container_id: container_id.into(),
            errors,
        })
    }
}

/// Removes the bridge and rules of every network of this store with no endpoint left, and the
/// leases directory host-local keeps for it.
fn teardown_idle(store: &NetworkStore) -> Result<Vec<AttachError>, AttachError> {
    let records = endpoint::load_all(store)?;
    let used: BTreeSet<&str> = records
        .iter()
        .flat_map(|r| r.networks.iter().map(|n| n.network.as_str()))
        .collect();
    let mut errors = Vec::new();
    // Read once: an idle network whose bridge someone else deleted may still have rules.
    let with_rules = firewall::bridges_with_rules();
    for net in store.list()? {
        if used.contains(net.name.as_str()) {
            continue;
        }
        // Another root's containers may be on the same bridge (the default network's is
        // host-wide): a bridge with ports left is in use.
        let link = firewall::link_exists(&net.bridge);
        let leftover = if link {
            !firewall::bridge_has_ports(&net.bridge)
        } else {
            with_rules.contains(&net.bridge)
        };
        if leftover {
            errors.extend(
                firewall::remove_network(&net.bridge, net.internal)
                    .into_iter()
                    .map(AttachError::from),
            );
        }
        let leases = store.ipam_dir(&net).join(&net.name);
        if leases.exists() && store.ipam_dir(&net) == store.ipam_dir_of_root() {
            if let Err(source) = std::fs::remove_dir_all(&leases) {
                errors.push(AttachError::Store(StoreError::Remove {
                    path: leases,
                    source,
                }));
            }
        }
    }
    Ok(errors)
}

/// Finishes what crashed commands left: endpoints still `adding` (ADD interrupted) and records
/// whose namespace is gone (the container's teardown was interrupted, or the host rebooted)
/// are run through DEL, then idle networks are torn down.
pub fn recover(store: &NetworkStore) -> Result<(), AttachError> {
    let _lock = store.lock()?;
    let _host = firewall::host_lock()?;
    recover_locked(store)
}

fn recover_locked(store: &NetworkStore) -> Result<(), AttachError> {
    let plugins = Plugins::default();
    let mut errors = Vec::new();
    for rec in endpoint::load_all(store)? {
        let gone = !netns::is_netns(&rec.netns);
        if gone {
            if let Err(e) = detach_locked(store, &plugins, &rec.container_id, None) {
                errors.push(e);
            }
            continue;
        }
        for n in rec.networks.iter().filter(|n| n.phase == Phase::Adding) {
            if let Err(e) = detach_locked(store, &plugins, &rec.container_id, Some(&n.network)) {
                errors.push(e);
            }
        }
    }
    errors.extend(teardown_idle(store)?);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AttachError::Recovery { errors })
    }
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

/// Rewrites the hosts file of every container on `network` (a container joined or left).
pub fn refresh_network(store: &NetworkStore, network: &str) -> Result<(), AttachError> {
    let records = endpoint::load_all(store)?;
    for rec in records
        .iter()
        .filter(|r| r.networks.iter().any(|n| n.network == network))
    {
        write_etc(store, rec, &records, false)?;
    }
    Ok(())
}

/// Writes the etc files of `container_id` and rewrites its peers' hosts files.
fn refresh_hosts(store: &NetworkStore, container_id: &str) -> Result<(), AttachError> {
    let records = endpoint::load_all(store)?;
    let Some(me) = records.iter().find(|r| r.container_id == container_id) else {
        return Ok(());
    };
    write_etc(store, me, &records, true)?;
    let mine: BTreeSet<&str> = me.networks.iter().map(|n| n.network.as_str()).collect();
    for peer in records.iter().filter(|r| {
        r.container_id != container_id
            && r.networks.iter().any(|n| mine.contains(n.network.as_str()))
    }) {
        write_etc(store, peer, &records, false)?;
    }
    Ok(())
}

fn write_etc(
    store: &NetworkStore,
    rec: &EndpointRecord,
    all: &[EndpointRecord],
    every_file: bool,
) -> Result<(), AttachError> {
    let Some(cfg) = &rec.etc else {
        return Ok(());
    };
    let own = own_entries(cfg, rec);
    let peers = peer_entries(store, rec, all)?;
    if every_file {
        etc::write_files(cfg, &own, &peers)?;
    } else {
        etc::write_hosts(cfg, &own, &peers)?;
    }
    Ok(())
}

fn own_entries(cfg: &EtcConfig, rec: &EndpointRecord) -> Vec<HostEntry> {
    let mut names = vec![cfg.hostname.clone()];
    if rec.container_name != cfg.hostname && !rec.container_name.is_empty() {
        names.push(rec.container_name.clone());
    }
    rec.attachments()
        .into_iter()
        .take(1)
        .map(|a| HostEntry {
            ip: a.ip.into(),
            names: names.clone(),
        })
        .collect()
}

/// Containers sharing a name-resolving network with `rec`, by name and per-network aliases.
fn peer_entries(
    store: &NetworkStore,
    rec: &EndpointRecord,
    all: &[EndpointRecord],
) -> Result<Vec<HostEntry>, AttachError> {
    let mut out: Vec<HostEntry> = Vec::new();
    for mine in rec.attachments() {
        let net = match store.inspect_locked(&mine.network) {
            Ok(n) => n,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        if !net.resolves_names() {
            continue;
        }
        for other in all.iter().filter(|o| o.container_id != rec.container_id) {
            for a in other
                .attachments()
                .into_iter()
                .filter(|a| a.network == mine.network)
            {
                let mut names = vec![other.container_name.clone()];
                names.extend(a.aliases.iter().cloned());
                names.retain(|n| !n.is_empty());
                if !out.iter().any(|e| e.ip == std::net::IpAddr::V4(a.ip)) {
                    out.push(HostEntry {
                        ip: a.ip.into(),
                        names,
                    });
                }
            }
        }
    }
    Ok(out)
}
