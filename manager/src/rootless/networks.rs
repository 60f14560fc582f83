//! User-defined networks of a rootless berth: the root code, run in the rootless network
//! namespace (see `netns`).
//!
//! A container on a user network joins the namespace's user namespace R (its spec names
//! `netns::userns_link`), and the runtime makes its network namespace there. Between the
//! runtime's create and start, the monitor calls [`attach`]: berth in R and N0 attaches the
//! container's namespace (`/proc/<init>/ns/net`) to its networks exactly as root berth does
//! (bridge, veth, lease, routes, DNAT of published ports, the network's embedded DNS, the etc
//! files), and each published port is forwarded by the namespace's slirp4netns from the host
//! (`-p 127.0.0.1:8080:80`: host 127.0.0.1:8080 to 10.0.2.100:8080 in N0, DNATed there to the
//! container's port 80). When the run ends, [`detach`] undoes it; once no container is left
//! on any user network the resolvers and the namespace are stopped, so nothing of the user's
//! stays behind.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceBuilder, LinuxNamespaceType, Spec};

use super::netns::{self, Attached, Job, NetRequest, NetnsError};
use crate::container::Record;
use crate::network::{self, endpoint, slirp, Endpoint, NetworkStore, Request, DEFAULT_NETWORK};

/// Whether network mode `mode` names a user-defined network.
pub fn is_user_network(mode: &str) -> bool {
    !matches!(mode, "none" | "host" | "" | DEFAULT_NETWORK) && !mode.starts_with("container:")
}

/// Whether a container of a rootless berth is on user-defined networks (and so joins R).
pub fn uses_user_networks(record: &Record) -> bool {
    super::is_rootless()
        && (is_user_network(&record.config.network_mode)
            || !record.config.extra_networks.is_empty())
}

fn boxed(e: impl std::fmt::Display) -> NetnsError {
    NetnsError::Job {
        detail: e.to_string(),
    }
}

/// The networks the container asks for, as `lifecycle::prepare` builds them for root.
fn requests(record: &Record) -> Vec<NetRequest> {
    let endpoint = |name: &str| {
        record
            .config
            .endpoints
            .get(name)
            .cloned()
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    if is_user_network(&record.config.network_mode) {
        let name = &record.config.network_mode;
        out.push(NetRequest {
            network: name.clone(),
            aliases: record.config.aliases.clone(),
            ip: endpoint(name).ip,
        });
    }
    out.extend(record.config.extra_networks.iter().map(|n| {
        let e = endpoint(n);
        NetRequest {
            network: n.clone(),
            aliases: e.aliases,
            ip: e.ip,
        }
    }));
    out
}

/// Makes a rootless container's spec join the namespace's user namespace R instead of a new
/// one (same ids: root is the user, 1.. its subordinate range), so that the network namespace
/// the runtime makes for it belongs to R.
pub fn join_user_namespace(spec: &mut Spec) -> Result<(), super::RootlessError> {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    namespaces.retain(|n| n.typ() != LinuxNamespaceType::User);
    namespaces.insert(
        0,
        LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::User)
            .path(netns::userns_link())
            .build()
            .map_err(|source| super::RootlessError::Build {
                what: "user namespace",
                source,
            })?,
    );
    linux.set_namespaces(Some(namespaces));
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    spec.set_linux(Some(linux));
    Ok(())
}

/// Attaches the container of init `pid` to its user networks and forwards its published
/// ports from the host; returns the attachments and the ports (host ports resolved). The
/// caller holds the namespace, started (see `netns::ensure`) before the runtime made the
/// container in it. On error nothing of it is left.
pub fn attach(
    held: &netns::Held,
    root: &Path,
    record: &Record,
    pid: i32,
) -> Result<Attached, NetnsError> {
    let mut host_ports = record.config.publish.clone();
    for m in host_ports.iter_mut().filter(|m| m.host_port == 0) {
        m.host_port = slirp::free_port(m)?;
    }
    // In N0 the ports arrive at slirp4netns's address: the DNAT matches the port alone.
    let inner: Vec<_> = host_ports
        .iter()
        .cloned()
        .map(|mut m| {
            m.host_ip = None;
            m
        })
        .collect();
    let job = Job::Attach {
        root: root.to_path_buf(),
        container_id: record.id.clone(),
        container_name: record.name.clone(),
        netns: PathBuf::from(format!("/proc/{pid}/ns/net")),
        etc: record.config.etc.clone(),
        requests: requests(record),
        ports: inner,
    };
    let answer = netns::run_job(&job)
        .and_then(|out| serde_json::from_slice::<Attached>(&out).map_err(boxed));
    let mut attached = match answer {
        Ok(a) => a,
        Err(e) => {
            // The job undid its own work; a namespace started for this container goes.
            let _ = stop_if_idle(held, root);
            return Err(e);
        }
    };
    let api = netns::slirp_api();
    let addr = IpAddr::V4(netns::SLIRP_ADDR).to_string();
    for m in &host_ports {
        if let Err(e) = slirp::forward(&api, m, &addr, m.host_port) {
            slirp::unforward(&api, &host_ports);
            let _ = detach_held(held, root, &record.id);
            return Err(e.into());
        }
    }
    attached.ports = host_ports;
    Ok(attached)
}

/// Detaches the container from its user networks (nothing to do when it is on none) and
/// stops the namespace when no container is left on a user network.
pub fn detach(root: &Path, container_id: &str) -> Result<(), NetnsError> {
    let store = NetworkStore::open(root, &network::run_dir()).map_err(boxed)?;
    if endpoint::load(&store, container_id)
        .map_err(boxed)?
        .is_none()
    {
        return Ok(());
    }
    let held = netns::hold()?;
    detach_held(&held, root, container_id)
}

fn detach_held(held: &netns::Held, root: &Path, container_id: &str) -> Result<(), NetnsError> {
    let store = NetworkStore::open(root, &network::run_dir()).map_err(boxed)?;
    if let Some(rec) = endpoint::load(&store, container_id).map_err(boxed)? {
        // Its leases and rules are undone in N0; a namespace that is gone (killed) is started
        // again for that, and stopped below.
        netns::ensure(held)?;
        slirp::unforward(&netns::slirp_api(), &rec.ports);
        netns::run_job(&Job::Detach {
            root: root.to_path_buf(),
            container_id: container_id.to_string(),
            network: None,
        })?;
    }
    stop_idle(held, &store)
}

/// Stops the resolvers and the namespace when no container of store `root` is attached to a
/// user network.
pub fn stop_if_idle(held: &netns::Held, root: &Path) -> Result<(), NetnsError> {
    let store = NetworkStore::open(root, &network::run_dir()).map_err(boxed)?;
    stop_idle(held, &store)
}

fn stop_idle(held: &netns::Held, store: &NetworkStore) -> Result<(), NetnsError> {
    if !endpoint::load_all(store).map_err(boxed)?.is_empty() {
        return Ok(());
    }
    for net in store.list().map_err(boxed)? {
        network::dns::stop(store, &net).map_err(boxed)?;
    }
    if netns::running().is_some() || netns::dir().exists() {
        netns::stop(held)?;
    }
    Ok(())
}

/// `network connect` of a running container on user networks (it is in R): attaches its
/// namespace to one more network; returns all its attachments.
pub fn connect(root: &Path, record: &Record, request: NetRequest) -> Result<(), NetnsError> {
    let _held = netns::hold()?;
    let store = NetworkStore::open(root, &network::run_dir()).map_err(boxed)?;
    let rec = endpoint::load(&store, &record.id)
        .map_err(boxed)?
        .ok_or(NetnsError::NotRunning)?;
    netns::run_job(&Job::Attach {
        root: root.to_path_buf(),
        container_id: record.id.clone(),
        container_name: record.name.clone(),
        netns: rec.netns,
        etc: record.config.etc.clone(),
        requests: vec![request],
        ports: Vec::new(),
    })
    .map(drop)
}

/// `network disconnect` of a running container on user networks.
pub fn disconnect(root: &Path, container_id: &str, network: &str) -> Result<(), NetnsError> {
    let _held = netns::hold()?;
    netns::run_job(&Job::Detach {
        root: root.to_path_buf(),
        container_id: container_id.to_string(),
        network: Some(network.to_string()),
    })
    .map(drop)
}

/// What a removed network has in N0 (its bridge and rules), when the namespace runs;
/// without it there is nothing (the bridges went with it). Not under the namespace's lock:
/// `network rm` holds the network's lock, which an attach holding the namespace's lock may be
/// waiting for; a namespace stopped meanwhile took the bridge with it.
pub fn remove_network(net: &network::Network) -> Result<(), NetnsError> {
    if netns::running().is_none() {
        return Ok(());
    }
    match netns::run_job(&Job::RemoveNetwork {
        root: PathBuf::new(),
        network: net.clone(),
    }) {
        Ok(_) => Ok(()),
        Err(_) if netns::running().is_none() => Ok(()),
        Err(e) => Err(e),
    }
}

/// `network::recover` for a rootless store: in the namespace, where the records' links and
/// rules are (when a record is left and the namespace is gone, it is started for that and
/// stopped again).
pub fn recover(root: &Path) -> Result<(), NetnsError> {
    let store = NetworkStore::open(root, &network::run_dir()).map_err(boxed)?;
    if endpoint::load_all(&store).map_err(boxed)?.is_empty() {
        return Ok(());
    }
    let held = netns::hold()?;
    netns::ensure(&held)?;
    let done = netns::run_job(&Job::Recover {
        root: root.to_path_buf(),
    });
    stop_idle(&held, &store)?;
    done.map(drop)
}

/// Berth's side in R and N0: one job.
pub(crate) fn do_job(job: Job) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
    match job {
        Job::Attach {
            root,
            container_id,
            container_name,
            netns,
            etc,
            requests,
            ports,
        } => {
            let store = NetworkStore::open(&root, &network::run_dir())?;
            let ep = Endpoint {
                container_id: &container_id,
                container_name: &container_name,
                netns: &netns,
                etc: etc.as_ref(),
            };
            let requests: Vec<Request> = requests
                .into_iter()
                .map(|r| Request {
                    network: r.network,
                    aliases: r.aliases,
                    ip: r.ip,
                })
                .collect();
            let attachments = network::attach(&store, &ep, &requests, &ports)?;
            let ports = network::published_ports(&store, &container_id)?;
            Ok(serde_json::to_vec(&Attached { attachments, ports })?)
        }
        Job::Detach {
            root,
            container_id,
            network,
        } => {
            let store = NetworkStore::open(&root, &network::run_dir())?;
            network::detach(&store, &container_id, network.as_deref())?;
            Ok(Vec::new())
        }
        Job::Recover { root } => {
            network::recover(&NetworkStore::open(&root, &network::run_dir())?)?;
            Ok(Vec::new())
        }
        Job::RemoveNetwork { network, .. } => {
            let errors = network::native::remove_network(&network);
            if errors.is_empty() {
                Ok(Vec::new())
            } else {
                Err(network::attach::join(&errors).into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, LinuxIdMappingBuilder, SpecBuilder};

    #[test]
    fn only_named_networks_are_user_networks() {
        for m in ["none", "host", "", DEFAULT_NETWORK, "container:abc"] {
            assert!(!is_user_network(m), "{m}");
        }
        for m in ["app", "proj_default", "bridge2"] {
            assert!(is_user_network(m), "{m}");
        }
    }

    #[test]
    fn a_user_network_container_joins_the_namespace_s_user_namespace_without_maps() {
        let map = LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(1000u32)
            .size(1u32)
            .build()
            .unwrap();
        let ns = |t| LinuxNamespaceBuilder::default().typ(t).build().unwrap();
        let linux = LinuxBuilder::default()
            .namespaces(vec![
                ns(LinuxNamespaceType::Pid),
                ns(LinuxNamespaceType::Network),
                ns(LinuxNamespaceType::User),
            ])
            .uid_mappings(vec![map])
            .gid_mappings(vec![map])
            .build()
            .unwrap();
        let mut spec = SpecBuilder::default().linux(linux).build().unwrap();
        join_user_namespace(&mut spec).unwrap();
        let linux = spec.linux().clone().unwrap();
        let nss = linux.namespaces().clone().unwrap();
        let users: Vec<_> = nss
            .iter()
            .filter(|n| n.typ() == LinuxNamespaceType::User)
            .collect();
        assert_eq!(users.len(), 1);
        assert_eq!(
            users[0].path().as_deref(),
            Some(netns::userns_link().as_path())
        );
        // Joined first; the network namespace stays a new one (made in R).
        assert_eq!(nss[0].typ(), LinuxNamespaceType::User);
        assert!(nss
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_none()));
        assert!(linux.uid_mappings().is_none() && linux.gid_mappings().is_none());
    }

    #[test]
    fn jobs_travel_as_json() {
        let job = Job::Detach {
            root: "/r".into(),
            container_id: "abc".into(),
            network: Some("app".into()),
        };
        let text = serde_json::to_string(&job).unwrap();
        assert!(text.contains("\"job\":\"detach\""), "{text}");
        let back: Job = serde_json::from_str(&text).unwrap();
        assert!(matches!(back, Job::Detach { network: Some(n), .. } if n == "app"));
    }
}
