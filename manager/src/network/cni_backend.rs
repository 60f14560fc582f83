//! The CNI backend (`network create --network-backend cni`): each attachment runs the standard
//! plugin chain (bridge with host-local IPAM, portmap when ports are published, firewall) and
//! its teardown runs DEL; the bridge and rules go when the network's last container leaves.
//! The plugins share host-wide chains, so every ADD and DEL holds the host lock.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;
use serde_json::{json, Value};

use super::attach::{AddRequest, AttachError};
use super::cni::{self, CniError, ConfList, Plugins, Target, CNI_VERSION};
use super::endpoint::{self, Attachment, NetworkEndpoint};
use super::firewall;
use super::ports::PortMapping;
use super::store::{Backend, Network, NetworkStore, StoreError};

/// Attaches through the plugins; `ep` (saved as `Adding`) gets the list and result DEL needs.
pub(crate) fn add(
    store: &NetworkStore,
    net: &Network,
    ep: &mut NetworkEndpoint,
    req: &AddRequest<'_>,
) -> Result<Attachment, AttachError> {
    let _host = firewall::host_lock()?;
    firewall::save_forwarding()?;
    let list = conflist(
        store,
        net,
        req.default_route,
        req.publish,
        req.static_ip.is_none(),
    );
    let args: Vec<(String, String)> = req
        .static_ip
        .map(|ip| vec![("IP".to_string(), ip.to_string())])
        .unwrap_or_default();
    ep.conflist = Some(list.clone());
    ep.args = args.clone();
    ep.ports = req.publish.to_vec();
    let target = Target {
        container_id: req.container_id,
        netns: req.netns,
        ifname: &ep.interface,
        args: &args,
    };
    let add_err = |source| AttachError::Add {
        container_id: req.container_id.into(),
        network: net.name.clone(),
        source: Box::new(source),
    };
    let result = Plugins::default()
        .add_list(&list, &target)
        .map_err(add_err)?;
    ep.result = result.clone();
    let attachment = attachment_from(req.container_id, net, &ep.interface, &ep.aliases, &result)?;
    firewall::add_network(&net.bridge, net.internal)?;
    Ok(attachment)
}

/// Runs DEL for one attachment. With the namespace gone (or only its empty mount point left),
/// DEL runs without one, as the spec allows: the plugins then release what lives outside it
/// (leases, host rules).
pub(crate) fn del(
    container_id: &str,
    netns: &Path,
    ep: &NetworkEndpoint,
) -> Result<(), AttachError> {
    let Some(list) = &ep.conflist else {
        return Ok(());
    };
    let _host = firewall::host_lock()?;
    let alive = super::netns::is_netns(netns);
    let target = Target {
        container_id,
        netns: if alive { netns } else { Path::new("") },
        ifname: &ep.interface,
        args: &ep.args,
    };
    // A DEL after the namespace is gone cannot find the address the bridge plugin's
    // masquerade rules are keyed on; remove those by their chain name as well.
    let del = Plugins::default().del_list(list, &target, &ep.result);
    firewall::sweep_masquerade(&ep.network, container_id);
    del.map_err(|errors| AttachError::Del {
        container_id: container_id.into(),
        network: ep.network.clone(),
        errors,
    })
}

/// Removes the bridge and rules of every CNI network of this store with no endpoint left, and
/// the leases directory host-local keeps for it.
pub(crate) fn teardown_idle(store: &NetworkStore) -> Result<Vec<AttachError>, AttachError> {
    let nets: Vec<Network> = store
        .list()?
        .into_iter()
        .filter(|n| n.backend == Backend::Cni)
        .collect();
    if nets.is_empty() {
        return Ok(Vec::new());
    }
    let records = endpoint::load_all(store)?;
    let used: BTreeSet<&str> = records
        .iter()
        .flat_map(|r| r.networks.iter().map(|n| n.network.as_str()))
        .collect();
    let _host = firewall::host_lock()?;
    let mut errors = Vec::new();
    // Read once: an idle network whose bridge someone else deleted may still have rules.
    let with_rules = firewall::bridges_with_rules();
    for net in nets.iter().filter(|n| !used.contains(n.name.as_str())) {
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
        let leases = store.ipam_dir(net).join(&net.name);
        if leases.exists() && store.ipam_dir(net) == store.ipam_dir_of_root() {
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
    let parsed =
        cni::parse_result("bridge", result).map_err(|source: CniError| AttachError::Add {
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
        ipv6: None,
        prefix6: 0,
        gateway6: None,
    })
}
