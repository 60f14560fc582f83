//! Network operations: create, list, inspect, remove, prune, connect, disconnect. The
//! network module does the work through its public functions; this layer translates
//! docker's models and keeps the container records in step.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

use crate::container::lifecycle;
use crate::container::record::EndpointConfig;
use crate::container::{ContainerStore, Record, Status};
use crate::network::endpoint::{self, EndpointRecord};
use crate::network::{self, CreateOptions, Endpoint, Network, NetworkStore, Request};
use crate::ops::error::{OpsError, Result};
use crate::ops::models::{
    EndpointSettings, Filters, Ipam, IpamConfig, NetworkConnectRequest, NetworkContainer,
    NetworkCreateRequest, NetworkCreateResponse, NetworkInspect, NetworkPruneResponse,
};
use crate::ops::Engine;

fn store(engine: &Engine) -> Result<NetworkStore> {
    Ok(NetworkStore::open(engine.root(), &network::run_dir())?)
}

/// The driver option naming how containers are wired: `native` (default) or `cni`.
pub const BACKEND_OPTION: &str = "berth.backend";

/// The aliases and fixed IPv4 address a connect request asks for.
fn requested_endpoint(
    settings: &EndpointSettings,
) -> Result<(Vec<String>, Option<std::net::Ipv4Addr>)> {
    let ip = match settings
        .ipam_config
        .as_ref()
        .map(|i| i.ipv4_address.as_str())
    {
        None | Some("") => None,
        Some(a) => parse("IPAMConfig.IPv4Address", a, "an IPv4 address")?,
    };
    Ok((settings.aliases.clone(), ip))
}

fn parse<T: std::str::FromStr>(field: &'static str, value: &str, what: &str) -> Result<Option<T>> {
    if value.is_empty() {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| OpsError::InvalidField {
        field,
        value: value.to_string(),
        reason: format!("not {what}"),
    })
}

/// `POST /networks/create`: a bridge network; berth's pool picks a free /24 when no subnet
/// is given.
pub fn create(engine: &Engine, req: &NetworkCreateRequest) -> Result<NetworkCreateResponse> {
    if !matches!(req.driver.as_str(), "" | "bridge") {
        return Err(OpsError::NetworkDriver {
            driver: req.driver.clone(),
        });
    }
    let mut subnets = Vec::new();
    let mut gateways = Vec::new();
    let mut ip_range = None;
    for c in &req.ipam.config {
        subnets.extend(parse::<IpNet>(
            "IPAM.Config.Subnet",
            &c.subnet,
            "a network",
        )?);
        gateways.extend(parse::<IpAddr>(
            "IPAM.Config.Gateway",
            &c.gateway,
            "an address",
        )?);
        if let Some(r) = parse::<Ipv4Net>("IPAM.Config.IPRange", &c.ip_range, "an IPv4 network")? {
            ip_range = Some(r);
        }
    }
    let backend = match req.options.get(BACKEND_OPTION) {
        Some(b) => b.parse()?,
        None => Default::default(),
    };
    if crate::rootless::is_rootless() {
        // Rootless networks live in berth's rootless network namespace (rootless::netns),
        // wired by the native backend, and reach out through slirp4netns.
        let reason = if backend == network::Backend::Cni {
            Some("the cni network backend (--network-backend cni) is not available to rootless berth: its networks use the native network backend")
        } else if !network::slirp::available() {
            Some("rootless user-defined networks reach the outside through slirp4netns: install the slirp4netns package")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(crate::rootless::RootlessError::NetworkCreate {
                name: req.name.clone(),
                reason,
            }
            .into());
        }
    }
    // Options the network module adds later keep their defaults here.
    #[allow(clippy::needless_update)]
    let mut opts = CreateOptions {
        ip_range,
        internal: req.internal,
        labels: req.labels.clone(),
        ipv6: req.enable_ipv6,
        backend,
        ..CreateOptions::default()
    };
    opts.set_addresses(&subnets, &gateways)?;
    let net = store(engine)?.create(&req.name, &opts)?;
    net_event(engine, "create", &net.id, &net.name, &[]);
    Ok(NetworkCreateResponse {
        id: net.id,
        warning: String::new(),
    })
}

fn inspect_model(n: &Network, records: &[EndpointRecord]) -> NetworkInspect {
    let mut containers = BTreeMap::new();
    for r in records {
        for att in r.attachments().iter().filter(|a| a.network == n.name) {
            containers.insert(
                r.container_id.clone(),
                NetworkContainer {
                    name: r.container_name.clone(),
                    mac_address: att.mac.clone(),
                    ipv4_address: format!("{}/{}", att.ip, att.prefix),
                    ipv6_address: att
                        .ipv6
                        .map(|a| format!("{a}/{}", att.prefix6))
                        .unwrap_or_default(),
                    aliases: att.aliases.clone(),
                },
            );
        }
    }
    NetworkInspect {
        name: n.name.clone(),
        id: n.id.clone(),
        created: n.created.clone(),
        scope: "local".into(),
        driver: n.driver.clone(),
        enable_ipv6: n.ipv6.is_some(),
        ipam: Ipam {
            driver: "default".into(),
            options: None,
            config: std::iter::once(IpamConfig {
                subnet: n.subnet.to_string(),
                gateway: n.gateway.to_string(),
                ip_range: n.ip_range.map(|r| r.to_string()).unwrap_or_default(),
            })
            .chain(n.ipv6.as_ref().map(|v6| IpamConfig {
                subnet: v6.subnet.to_string(),
                gateway: v6.gateway.to_string(),
                ip_range: String::new(),
            }))
            .collect(),
        },
        internal: n.internal,
        attachable: false,
        ingress: false,
        config_from: Default::default(),
        config_only: false,
        containers,
        options: BTreeMap::from([
            ("berth.bridge".to_string(), n.bridge.clone()),
            (BACKEND_OPTION.to_string(), n.backend.to_string()),
        ]),
        labels: n.labels.clone(),
    }
}

/// `GET /networks`: every network, the default one included (listing is its first use),
/// and docker's pre-defined `host` and `none`.
pub fn list(engine: &Engine) -> Result<Vec<NetworkInspect>> {
    let store = store(engine)?;
    let bridge = store.default_network()?;
    let records = endpoint::load_all(&store)?;
    let mut out: Vec<NetworkInspect> = store
        .list()?
        .iter()
        .map(|n| inspect_model(n, &records))
        .collect();
    let containers = engine.containers()?.list()?;
    for (name, _) in PREDEFINED {
        out.push(predefined_model(name, &bridge.created, &containers));
    }
    Ok(out)
}

/// [`list`] narrowed by docker's network filters: `name` (a substring), `id` (a prefix),
/// `driver`, `label` (`k` or `k=v`), `type` (`custom` or `builtin`); values of one key are
/// alternatives, keys must all hold.
pub fn list_filtered(engine: &Engine, filters: &Filters) -> Result<Vec<NetworkInspect>> {
    for (k, v) in filters.terms() {
        let ok = match k {
            "name" | "id" | "driver" | "label" => true,
            "type" => matches!(v, "custom" | "builtin"),
            _ => false,
        };
        if !ok {
            return Err(OpsError::FilterTerm {
                term: format!("{k}={v}"),
                hint: "name=, id=, driver=, label=, type=custom|builtin",
            });
        }
    }
    let any = |key: &str, f: &dyn Fn(&str) -> bool| {
        let vs = filters.get(key);
        vs.is_empty() || vs.iter().any(|v| f(v))
    };
    Ok(list(engine)?
        .into_iter()
        .filter(|n| {
            let builtin = n.name == network::DEFAULT_NETWORK || predefined(&n.name).is_some();
            any("name", &|v| n.name.contains(v))
                && any("id", &|v| n.id.starts_with(v))
                && any("driver", &|v| n.driver == v)
                && any("type", &|v| (v == "builtin") == builtin)
                && filters
                    .get("label")
                    .iter()
                    .all(|l| Filters::label_matches(&n.labels, l))
        })
        .collect())
}

/// `GET /networks/{id}`: by name, id or unique id prefix.
pub fn inspect(engine: &Engine, what: &str) -> Result<NetworkInspect> {
    let store = store(engine)?;
    if let Some(name) = predefined(what) {
        let bridge = store.default_network()?;
        let containers = engine.containers()?.list()?;
        return Ok(predefined_model(name, &bridge.created, &containers));
    }
    let n = store.inspect(what)?;
    let records = endpoint::load_all(&store)?;
    Ok(inspect_model(&n, &records))
}

/// docker's networks that are not bridges: a container's `--network host|none`, listed and
/// inspected like the others, never removed.
const PREDEFINED: [(&str, &str); 2] = [("host", "host"), ("none", "null")];

pub(crate) fn predefined_id(name: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        format!("berth pre-defined network {name}").as_bytes(),
    ))
}

/// The pre-defined network `what` names (its name, id or an id prefix of 3+ characters).
fn predefined(what: &str) -> Option<&'static str> {
    PREDEFINED
        .iter()
        .map(|(n, _)| *n)
        .find(|n| *n == what || (what.len() >= 3 && predefined_id(n).starts_with(what)))
}

/// A pre-defined network; its containers are the running ones of `containers` in that mode.
fn predefined_model(name: &str, created: &str, containers: &[Record]) -> NetworkInspect {
    let driver = PREDEFINED
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("null", |(_, d)| *d);
    let containers = containers
        .iter()
        .filter(|r| r.config.network_mode == name && r.state.status == Status::Running)
        .map(|r| {
            let c = NetworkContainer {
                name: r.name.clone(),
                ..NetworkContainer::default()
            };
            (r.id.clone(), c)
        })
        .collect();
    NetworkInspect {
        name: name.to_string(),
        id: predefined_id(name),
        created: created.to_string(),
        scope: "local".into(),
        driver: driver.into(),
        enable_ipv6: false,
        ipam: Ipam {
            driver: "default".into(),
            options: None,
            config: Vec::new(),
        },
        internal: false,
        containers,
        options: BTreeMap::new(),
        labels: BTreeMap::new(),
        ..Default::default()
    }
}

/// `DELETE /networks/{id}`: refused while a container is attached.
pub fn remove(engine: &Engine, what: &str) -> Result<()> {
    let store = store(engine)?;
    if let Some(name) = predefined(what) {
        return Err(network::StoreError::Predefined { name: name.into() }.into());
    }
    // Endpoints a crash left behind must not keep a network "in use".
    recover(engine, &store)?;
    let n = store.inspect(what)?;
    store.remove(what)?;
    net_event(engine, "destroy", &n.id, &n.name, &[]);
    Ok(())
}

/// Finishes the network teardowns crashed commands left (rootless: in berth's rootless
/// network namespace, where the links and rules are).
fn recover(engine: &Engine, store: &NetworkStore) -> Result<()> {
    if crate::rootless::is_rootless() {
        crate::rootless::networks::recover(engine.root())
            .map_err(|e| network::AttachError::Rootless(Box::new(e)))?;
    } else {
        network::recover(store)?;
    }
    Ok(())
}

/// Records a network event (docker's attributes: name and type, plus `extra`).
fn net_event(engine: &Engine, action: &str, id: &str, name: &str, extra: &[(&str, String)]) {
    let mut attrs = vec![("name", name.to_string()), ("type", "bridge".to_string())];
    attrs.extend(extra.iter().cloned());
    crate::events::emit(engine.root(), "network", action, id, &attrs);
}

/// The embedded DNS resolver of one network (`berth __dns`): serves until the network's
/// last container has left. `ready` runs once it serves (the spawner waits for that word).
pub fn serve_dns(engine: &Engine, network_name: &str, ready: impl FnOnce()) -> Result<()> {
    network::dns::serve(engine.root(), network_name, ready)?;
    Ok(())
}

/// `POST /networks/prune`: every network no container uses (not the pre-defined ones).
pub fn prune(engine: &Engine) -> Result<NetworkPruneResponse> {
    let store = store(engine)?;
    recover(engine, &store)?;
    let before = store.list()?;
    let deleted = store.prune()?;
    for n in before.iter().filter(|n| deleted.contains(&n.name)) {
        net_event(engine, "destroy", &n.id, &n.name, &[]);
    }
    Ok(NetworkPruneResponse {
        networks_deleted: deleted,
    })
}

/// A running container with a network namespace of its own, and its endpoint record.
fn find_container(
    engine: &Engine,
    store: &NetworkStore,
    what: &str,
) -> Result<(ContainerStore, Record, EndpointRecord)> {
    let (containers, record) = super::containers::find(engine, what)?;
    // Rootless, a container on user networks is wired in the rootless network namespace.
    if !lifecycle::own_netns(&record) && !crate::rootless::networks::uses_user_networks(&record) {
        return Err(OpsError::SharedNetns {
            what: what.to_string(),
            mode: record.config.network_mode.clone(),
        });
    }
    if !matches!(record.state.status, Status::Running | Status::Paused) {
        return Err(OpsError::NotRunning {
            id: what.to_string(),
        });
    }
    let Some(ep) = endpoint::load(store, &record.id)? else {
        return Err(OpsError::NoEndpoint {
            what: what.to_string(),
        });
    };
    Ok((containers, record, ep))
}

/// Writes the container's attachments into its record (`inspect`'s NetworkSettings).
fn record_attachments(containers: &ContainerStore, store: &NetworkStore, id: &str) -> Result<()> {
    let attachments = network::attachments(store, id)?;
    containers.update(id, |r| {
        r.networks = attachments
            .iter()
            .map(|a| (a.network.clone(), a.settings_json()))
            .collect();
    })?;
    Ok(())
}

/// `POST /networks/{id}/connect`: attaches a running container, with the endpoint's
/// aliases and fixed address; remembered, so every later start joins it again.
pub fn connect(engine: &Engine, network_name: &str, req: &NetworkConnectRequest) -> Result<()> {
    let store = store(engine)?;
    if let Some((containers, record)) = stopped(engine, &req.container)? {
        return connect_stopped(engine, &store, &containers, &record, network_name, req);
    }
    let (containers, record, rec) = find_container(engine, &store, &req.container)?;
    let net = store.inspect(network_name)?;
    if rec.networks.iter().any(|n| n.network == net.name) {
        return Err(OpsError::AlreadyConnected {
            container: req.container.clone(),
            network: net.name,
        });
    }
    let ep = Endpoint {
        container_id: &record.id,
        container_name: &record.name,
        netns: &rec.netns,
        etc: rec.etc.as_ref(),
    };
    let (aliases, ip) = requested_endpoint(&req.endpoint_config)?;
    let name = net.name.clone();
    let net_id = net.id.clone();
    let request = Request {
        aliases: aliases.clone(),
        ip,
        ..Request::new(&net.name)
    };
    if crate::rootless::is_rootless() {
        let req = crate::rootless::netns::NetRequest {
            network: request.network,
            aliases: request.aliases,
            ip: request.ip,
        };
        crate::rootless::networks::connect(engine.root(), &record, req)
            .map_err(|e| network::AttachError::Rootless(Box::new(e)))?;
    } else {
        network::attach(&store, &ep, &[request], &[])?;
    }
    containers.update(&record.id, |r| {
        if r.config.network_mode != name && !r.config.extra_networks.contains(&name) {
            r.config.extra_networks.push(name.clone());
        }
        if !aliases.is_empty() || ip.is_some() {
            r.config
                .endpoints
                .insert(name.clone(), EndpointConfig { aliases, ip });
        }
    })?;
    net_event(
        engine,
        "connect",
        &net_id,
        &name,
        &[("container", record.id.clone())],
    );
    record_attachments(&containers, &store, &record.id)
}

/// The container when it is not running (created or exited): a connect or disconnect
/// then only changes what its next start joins, as docker's.
fn stopped(engine: &Engine, what: &str) -> Result<Option<(ContainerStore, Record)>> {
    let (containers, record) = super::containers::find(engine, what)?;
    if matches!(
        record.state.status,
        Status::Running | Status::Paused | Status::Restarting
    ) {
        return Ok(None);
    }
    Ok(Some((containers, record)))
}

/// Records a network (with the endpoint's aliases and address) for a container that is
/// not running; its start attaches it.
fn connect_stopped(
    engine: &Engine,
    store: &NetworkStore,
    containers: &ContainerStore,
    record: &Record,
    network_name: &str,
    req: &NetworkConnectRequest,
) -> Result<()> {
    if !lifecycle::is_own_netns_mode(&record.config.network_mode) {
        return Err(OpsError::SharedNetns {
            what: req.container.clone(),
            mode: record.config.network_mode.clone(),
        });
    }
    let net = store.inspect(network_name)?;
    let mode = match record.config.network_mode.as_str() {
        "" | "default" => network::DEFAULT_NETWORK,
        m => m,
    };
    if mode == net.name || record.config.extra_networks.contains(&net.name) {
        return Err(OpsError::AlreadyConnected {
            container: req.container.clone(),
            network: net.name,
        });
    }
    let (aliases, ip) = requested_endpoint(&req.endpoint_config)?;
    let name = net.name.clone();
    containers.update(&record.id, |r| {
        r.config.extra_networks.push(name.clone());
        if !aliases.is_empty() || ip.is_some() {
            r.config
                .endpoints
                .insert(name.clone(), EndpointConfig { aliases, ip });
        }
    })?;
    net_event(
        engine,
        "connect",
        &net.id,
        &net.name,
        &[("container", record.id.clone())],
    );
    Ok(())
}

/// `POST /networks/{id}/disconnect`.
pub fn disconnect(engine: &Engine, network_name: &str, container: &str) -> Result<()> {
    let store = store(engine)?;
    if let Some((containers, record)) = stopped(engine, container)? {
        // Nothing is wired: the container just no longer joins the network at its start.
        let net = store.inspect(network_name)?;
        containers.update(&record.id, |r| {
            r.config.extra_networks.retain(|n| *n != net.name);
            r.config.endpoints.remove(&net.name);
        })?;
        net_event(
            engine,
            "disconnect",
            &net.id,
            &net.name,
            &[("container", record.id.clone())],
        );
        return Ok(());
    }
    let (containers, record, _) = find_container(engine, &store, container)?;
    if crate::rootless::is_rootless() {
        crate::rootless::networks::disconnect(engine.root(), &record.id, network_name)
            .map_err(|e| network::AttachError::Rootless(Box::new(e)))?;
    } else {
        network::detach(&store, &record.id, Some(network_name))?;
    }
    let (name, net_id) = store.inspect(network_name).map_or_else(
        |_| (network_name.to_string(), network_name.to_string()),
        |n| (n.name, n.id),
    );
    net_event(
        engine,
        "disconnect",
        &net_id,
        &name,
        &[("container", record.id.clone())],
    );
    containers.update(&record.id, |r| {
        r.config.extra_networks.retain(|n| *n != name);
        r.config.endpoints.remove(&name);
    })?;
    record_attachments(&containers, &store, &record.id)
}
