//! The native backend: what a network needs on the host (bridge, addresses, forwarding, its
//! rules) is made once, on its first use, and stays until `network rm`; a start only makes the
//! container's veth, addresses and routes (netlink, in-process) and, when it publishes ports,
//! adds their DNAT rules in one batch. Nothing here holds a lock shared by other starts: the
//! addresses come from exclusive-create lease files (`ipam`), and the one-time network setup
//! takes the host lock only when the network is not ready yet.
//!
//! Measured on the 2-core reference VM: creating the veth pair with its peer already in the
//! container's namespace takes 2-5 ms and configuring the container side about 1 ms, while
//! deleting a veth takes 20-35 ms (the kernel waits for RCU grace periods). So a container's
//! teardown does not delete its veth: it goes with the namespace, whose destruction the kernel
//! does asynchronously once `Netns::remove` drops the last reference. (A container sharing
//! the namespace, `--network container:`, keeps it, and the veth, until it stops too.)

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::attach::AddRequest;
use super::endpoint::{Attachment, NetworkEndpoint, Phase};
use super::firewall::{self, host_dir, FirewallError};
use super::ipam::{IpamError, Leases, Pool};
use super::netlink::{self, NetlinkError, VethSpec};
use super::rules::{self, Family, NetSpec};
use super::store::{Network, NetworkStore};

#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error("writing {path}")]
    Sysctl {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {path}")]
    Marker {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Present while the network on this bridge is set up (bridge, addresses, sysctls, rules);
/// in the host directory, a tmpfs, so a reboot (which takes all of it away) takes it too.
fn marker(bridge: &str) -> PathBuf {
    host_dir().join("ready").join(bridge)
}

fn sysctl(path: &str, value: &str) -> Result<(), NativeError> {
    fs::write(path, value).map_err(|source| NativeError::Sysctl {
        path: PathBuf::from(path),
        source,
    })
}

const IP6_FORWARDING: &str = "/proc/sys/net/ipv6/conf/all/forwarding";

/// Remembers a sysctl's value the first time berth changes it (in the host directory, under
/// `name`), so the last network's removal can put it back.
fn save_sysctl(name: &str, path: &str) -> Result<(), NativeError> {
    let saved = host_dir().join(name);
    if saved.exists() {
        return Ok(());
    }
    let now = fs::read_to_string(path).unwrap_or_default();
    fs::write(&saved, now.trim()).map_err(|source| NativeError::Sysctl {
        path: saved,
        source,
    })
}

fn restore_sysctl(name: &str, path: &str) -> Result<(), NativeError> {
    let saved = host_dir().join(name);
    let Ok(before) = fs::read_to_string(&saved) else {
        return Ok(());
    };
    if before.trim() == "0" {
        sysctl(path, "0")?;
    }
    let _ = fs::remove_file(&saved);
    Ok(())
}

/// Makes sure `net` is set up on the host. The common case (its bridge and marker exist) costs
/// two `stat`s and no lock.
pub fn ensure_network(net: &Network) -> Result<(), NativeError> {
    let ready = || netlink::link_exists(&net.bridge) && marker(&net.bridge).exists();
    if ready() {
        return Ok(());
    }
    let _host = firewall::host_lock()?;
    if ready() {
        return Ok(());
    }
    firewall::save_forwarding()?;
    let mut addrs = vec![(IpAddr::V4(net.gateway), net.subnet.prefix_len())];
    if let Some(v6) = net.ipv6 {
        addrs.push((IpAddr::V6(v6.gateway), v6.subnet.prefix_len()));
    }
    netlink::ensure_bridge(&net.bridge, &addrs)?;
    sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    // Published ports reached on 127.0.0.1 are DNATed into the bridge with their loopback
    // source, which the kernel drops as martian unless the bridge allows it.
    sysctl(
        &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge),
        "1",
    )?;
    rules::setup_network(
        Family::V4,
        &NetSpec {
            bridge: &net.bridge,
            subnet: net.subnet.into(),
            internal: net.internal,
        },
    )?;
    if let Some(v6) = net.ipv6 {
        // Routing containers' IPv6 needs forwarding, as IPv4 does. Note the kernel ignores
        // router advertisements on interfaces of a forwarding host (accept_ra=1), as with
        // docker's --ipv6: a host that takes its own IPv6 route from RAs needs accept_ra=2.
        save_sysctl("ip6_forward", IP6_FORWARDING)?;
        sysctl(IP6_FORWARDING, "1")?;
        rules::setup_network(
            Family::V6,
            &NetSpec {
                bridge: &net.bridge,
                subnet: v6.subnet.into(),
                internal: net.internal,
            },
        )?;
    }
    let m = marker(&net.bridge);
    if let Some(dir) = m.parent() {
        fs::create_dir_all(dir).map_err(|source| NativeError::Marker {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    fs::write(&m, &net.id).map_err(|source| NativeError::Marker { path: m, source })
}

/// Removes what [`ensure_network`] made (its rules, bridge and marker), then the shared chains
/// and the forwarding settings when it was the last berth network; errors are collected.
pub fn remove_network(net: &Network) -> Vec<NativeError> {
    let mut errors: Vec<NativeError> = Vec::new();
    let _host = match firewall::host_lock() {
        Ok(l) => l,
        Err(e) => return vec![e.into()],
    };
    let families: &[Family] = if net.ipv6.is_some() {
        &[Family::V4, Family::V6]
    } else {
        &[Family::V4]
    };
    for &f in families {
        if let Err(e) = rules::delete_tagged(f, &net.bridge) {
            errors.push(e.into());
        }
    }
    if let Err(e) = netlink::delete_link(&net.bridge) {
        errors.push(e.into());
    }
    let _ = fs::remove_file(marker(&net.bridge));
    match rules::remove_shared_if_unused(Family::V4) {
        Ok(true) => {
            if let Err(e) = firewall::restore_forwarding() {
                errors.push(e.into());
            }
        }
        Ok(false) => {}
        Err(e) => errors.push(e.into()),
    }
    if net.ipv6.is_some() {
        match rules::remove_shared_if_unused(Family::V6) {
            Ok(true) => {
                if let Err(e) = restore_sysctl("ip6_forward", IP6_FORWARDING) {
                    errors.push(e);
                }
            }
            Ok(false) => {}
            Err(e) => errors.push(e.into()),
        }
    }
    errors
}

/// The host end of a container's veth on a network: deterministic, so recovery finds it
/// without a record, and at most 15 bytes (IFNAMSIZ).
pub fn host_link(container_id: &str, network: &str) -> String {
    let d = Sha256::digest(format!("{container_id}/{network}").as_bytes());
    format!("vb{}", &hex::encode(d)[..12])
}

/// docker's MAC scheme: 02:42 and the IPv4 address, locally administered and unique per
/// address.
fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Attaches the container to `net`: addresses, veth, addresses and routes inside, port
/// mappings. `ep` (the record's entry, already saved as `Adding`) gets what teardown needs.
/// On error the caller undoes it with [`del`].
pub fn add(
    store: &NetworkStore,
    net: &Network,
    ep: &mut NetworkEndpoint,
    req: &AddRequest<'_>,
) -> Result<Attachment, NativeError> {
    ensure_network(net)?;
    let leases = Leases::new(&store.ipam_dir(net), &net.name);
    let pool = Pool::v4(net.subnet, net.gateway, net.ip_range);
    let ip = match req.static_ip {
        Some(ip) => {
            leases.reserve(IpAddr::V4(ip), req.container_id, req.interface)?;
            ip
        }
        None => leases.allocate_v4(&pool, req.container_id, req.interface)?,
    };
    let ip6 = match net.ipv6 {
        Some(v6) => {
            let pool6 = Pool::v6(v6.subnet, v6.gateway);
            Some(leases.allocate_v6(&pool6, req.container_id, req.interface)?)
        }
        None => None,
    };
    ep.host_link = host_link(req.container_id, &net.name);
    let mac = mac_of(ip);
    let mut addrs = vec![(IpAddr::V4(ip), net.subnet.prefix_len())];
    let mut gateways = Vec::new();
    if req.default_route {
        gateways.push(IpAddr::V4(net.gateway));
    }
    if let (Some(a), Some(v6)) = (ip6, net.ipv6) {
        addrs.push((IpAddr::V6(a), v6.subnet.prefix_len()));
        if req.default_route {
            gateways.push(IpAddr::V6(v6.gateway));
        }
    }
    let spec = VethSpec {
        host: &ep.host_link,
        bridge: &net.bridge,
        netns: req.netns,
        peer: req.interface,
        mac,
    };
    netlink::add_container_link(&spec, &addrs, &gateways)?;
    if !req.publish.is_empty() {
        ep.ports = req.publish.to_vec();
        rules::add_ports(req.container_id, IpAddr::V4(ip), req.publish)?;
        if let Some(a) = ip6 {
            rules::add_ports(req.container_id, IpAddr::V6(a), req.publish)?;
        }
    }
    Ok(Attachment {
        network: net.name.clone(),
        interface: req.interface.to_string(),
        ip,
        prefix: net.subnet.prefix_len(),
        gateway: net.gateway,
        mac: mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        aliases: req.aliases.to_vec(),
        ipv6: ip6,
        prefix6: net.ipv6.map_or(0, |v| v.subnet.prefix_len()),
        gateway6: net.ipv6.map(|v| v.gateway),
    })
}

/// Undoes [`add`] (also a partial one): the port mappings, the veth when `delete_link` (a
/// disconnect; a container's teardown leaves it to the namespace's end), the leases. Every
/// step runs; the errors come back together.
pub fn del(
    store: &NetworkStore,
    net: Option<&Network>,
    ep: &NetworkEndpoint,
    container_id: &str,
    delete_link: bool,
) -> Vec<NativeError> {
    let mut errors = Vec::new();
    let crashed = ep.phase == Phase::Adding;
    if crashed || !ep.ports.is_empty() {
        let a = ep.attachment.as_ref();
        let v4 = a.map(|a| IpAddr::V4(a.ip));
        if let Err(e) = rules::remove_ports(container_id, v4, Family::V4, &ep.ports) {
            errors.push(e.into());
        }
        let v6 = a.and_then(|a| a.ipv6).map(IpAddr::V6);
        let dual = net.is_some_and(|n| n.ipv6.is_some());
        if v6.is_some() || (crashed && dual) {
            if let Err(e) = rules::remove_ports(container_id, v6, Family::V6, &ep.ports) {
                errors.push(e.into());
            }
        }
    }
    if delete_link || crashed {
        let name = if ep.host_link.is_empty() {
            host_link(container_id, &ep.network)
        } else {
            ep.host_link.clone()
        };
        if let Err(e) = netlink::delete_link(&name) {
            errors.push(e.into());
        }
    }
    if let Some(net) = net {
        let leases = Leases::new(&store.ipam_dir(net), &net.name);
        let released = match &ep.attachment {
            Some(a) => a
                .ips()
                .into_iter()
                .try_for_each(|ip| leases.release(ip, container_id)),
            None => leases.release_all(container_id),
        };
        if let Err(e) = released {
            errors.push(e.into());
        }
    }
    errors
}
