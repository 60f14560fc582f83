//! `berth network create/ls/inspect/rm/prune/connect/disconnect`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use anyhow::{bail, Result};
use berth::network::endpoint::{self, EndpointRecord};
use berth::network::{self, CreateOptions, Endpoint, Network, NetworkStore, Request};
use ipnet::{IpNet, Ipv4Net};
use serde_json::{json, Value};

use berth::container::lifecycle;
use berth::container::{ContainerStore, Record, Status};

use super::format::print_table;
use super::{ctr, Ctx};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove all networks no container uses
    Prune(PruneArgs),
    /// Connect a running container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    name: String,
    /// Driver (only bridge)
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR form, IPv4 and/or IPv6 (default: a free /24, and /64 with --ipv6)
    #[arg(long)]
    subnet: Vec<IpNet>,
    /// Gateway address inside a subnet (default: the subnet's first address)
    #[arg(long)]
    gateway: Vec<IpAddr>,
    /// Dual stack: an IPv6 subnet besides the IPv4 one
    #[arg(long)]
    ipv6: bool,
    /// How containers are wired: native (in-process, default) or cni (the CNI plugins)
    #[arg(long, default_value = "native")]
    network_backend: String,
    /// Allocate container addresses from this sub-range only
    #[arg(long)]
    ip_range: Option<Ipv4Net>,
    /// No access to outside the network
    #[arg(long)]
    internal: bool,
    /// Metadata KEY=VALUE (repeatable)
    #[arg(long = "label")]
    labels: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only show network IDs
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate IDs
    #[arg(long)]
    no_trunc: bool,
    /// Output format: table (default) or json (one object per line)
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Networks (names or IDs)
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Networks (names or IDs)
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation (berth never prompts)
    #[arg(short, long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    network: String,
    /// Running container (name or ID)
    container: String,
    /// Extra name the container is known by on this network (repeatable)
    #[arg(long = "alias")]
    aliases: Vec<String>,
    /// Fixed IPv4 address on this network
    #[arg(long)]
    ip: Option<Ipv4Addr>,
}

#[derive(Debug, clap::Args)]
pub struct DisconnectArgs {
    network: String,
    /// Container (name or ID)
    container: String,
}

use berth::network::run_dir;

fn open(ctx: &Ctx) -> Result<NetworkStore> {
    Ok(NetworkStore::open(&ctx.settings.root, &run_dir())?)
}

pub fn run(ctx: &mut Ctx, cmd: Command) -> Result<()> {
    let store = open(ctx)?;
    match cmd {
        Command::Create(a) => create(&store, a),
        Command::Ls(a) => ls(&store, a),
        Command::Inspect(a) => inspect(&store, a),
        Command::Rm(a) => rm(&store, a),
        Command::Prune(a) => prune(&store, a),
        Command::Connect(a) => connect(ctx, &store, a),
        Command::Disconnect(a) => disconnect(ctx, &store, a),
    }
}

fn create(store: &NetworkStore, a: CreateArgs) -> Result<()> {
    if a.driver != "bridge" {
        bail!(
            "flag --driver: unsupported driver {:?} (only bridge)",
            a.driver
        );
    }
    let mut labels = BTreeMap::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            bail!("flag --label: invalid label {l:?} (expected KEY=VALUE)");
        }
        labels.insert(k.to_string(), v.to_string());
    }
    let mut opts = CreateOptions {
        ip_range: a.ip_range,
        internal: a.internal,
        labels,
        ipv6: a.ipv6,
        backend: a.network_backend.parse()?,
        ..CreateOptions::default()
    };
    opts.set_addresses(&a.subnet, &a.gateway)?;
    let net = store.create(&a.name, &opts)?;
    println!("{}", net.id);
    Ok(())
}

fn ls(store: &NetworkStore, a: LsArgs) -> Result<()> {
    let json = match a.format.as_str() {
        "table" => false,
        "json" | "{{json .}}" => true,
        other => bail!("flag --format: unknown format {other:?} (use table or json)"),
    };
    // The default network always shows, as docker's does; listing is a first use.
    store.default_network()?;
    let nets = store.list()?;
    let id = |n: &Network| {
        if a.no_trunc {
            n.id.clone()
        } else {
            n.id.chars().take(12).collect()
        }
    };
    if a.quiet {
        for n in &nets {
            println!("{}", id(n));
        }
        return Ok(());
    }
    if json {
        for n in &nets {
            let row = json!({
                "ID": id(n), "Name": n.name, "Driver": n.driver, "Scope": "local",
                "Subnet": n.subnet.to_string(), "Internal": n.internal, "CreatedAt": n.created,
                "Labels": n.labels,
            });
            println!("{row}");
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = nets
        .iter()
        .map(|n| {
            vec![
                id(n),
                n.name.clone(),
                n.driver.clone(),
                "local".into(),
                n.subnet.to_string(),
            ]
        })
        .collect();
    print_table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE", "SUBNET"], &rows);
    Ok(())
}

fn inspect(store: &NetworkStore, a: InspectArgs) -> Result<()> {
    let records = endpoint::load_all(store)?;
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for what in &a.networks {
        match store.inspect(what) {
            Ok(n) => out.push(inspect_json(&n, &records)),
            Err(e) => failed.push(e.to_string()),
        }
    }
    println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
    if !failed.is_empty() {
        bail!("{}", failed.join("\nError: "));
    }
    Ok(())
}

/// Docker's shape of `network inspect`, with berth's bridge name under Options.
fn inspect_json(n: &Network, records: &[EndpointRecord]) -> Value {
    let mut containers = serde_json::Map::new();
    for r in records {
        for att in r.attachments().iter().filter(|a| a.network == n.name) {
            containers.insert(
                r.container_id.clone(),
                json!({
                    "Name": r.container_name,
                    "MacAddress": att.mac,
                    "IPv4Address": format!("{}/{}", att.ip, att.prefix),
                    "IPv6Address": att.ipv6.map(|a| format!("{a}/{}", att.prefix6)).unwrap_or_default(),
                    "Aliases": att.aliases,
                }),
            );
        }
    }
    let mut ipam = json!({"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()});
    if let Some(r) = n.ip_range {
        ipam["IPRange"] = json!(r.to_string());
    }
    let mut configs = vec![ipam];
    if let Some(v6) = n.ipv6 {
        configs.push(json!({"Subnet": v6.subnet.to_string(), "Gateway": v6.gateway.to_string()}));
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": n.ipv6.is_some(),
        "IPAM": {"Driver": "default", "Config": configs},
        "Internal": n.internal,
        "Containers": containers,
        "Options": {"berth.bridge": n.bridge, "berth.backend": n.backend.to_string()},
        "Labels": n.labels,
    })
}

fn rm(store: &NetworkStore, a: RmArgs) -> Result<()> {
    // Endpoints a crash left behind must not keep a network "in use".
    network::recover(store)?;
    let mut failed = Vec::new();
    for what in &a.networks {
        match store.remove(what) {
            Ok(_) => println!("{what}"),
            Err(e) => failed.push(e.to_string()),
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("\nError: "));
    }
    Ok(())
}

fn prune(store: &NetworkStore, _a: PruneArgs) -> Result<()> {
    network::recover(store)?;
    let removed = store.prune()?;
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for n in removed {
            println!("{n}");
        }
    }
    Ok(())
}

/// A running container with a network namespace of its own, and its endpoint record.
fn find_container(
    ctx: &Ctx,
    store: &NetworkStore,
    what: &str,
) -> Result<(ContainerStore, Record, EndpointRecord)> {
    let (containers, record) = ctr::find(&ctx.settings.root, what)?;
    if !lifecycle::own_netns(&record) {
        bail!(
            "container {what} shares a network namespace (--network {}): it cannot be connected or disconnected",
            record.config.network_mode
        );
    }
    if !matches!(record.state.status, Status::Running | Status::Paused) {
        bail!("container {what} is not running");
    }
    let Some(ep) = endpoint::load(store, &record.id)? else {
        bail!("container {what} has no network namespace set up by berth");
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

fn connect(ctx: &Ctx, store: &NetworkStore, a: ConnectArgs) -> Result<()> {
    let (containers, record, rec) = find_container(ctx, store, &a.container)?;
    let net = store.inspect(&a.network)?;
    if rec.networks.iter().any(|n| n.network == net.name) {
        bail!(
            "container {} is already connected to network {}",
            a.container,
            net.name
        );
    }
    let ep = Endpoint {
        container_id: &record.id,
        container_name: &record.name,
        netns: &rec.netns,
        etc: rec.etc.as_ref(),
    };
    let name = net.name.clone();
    let req = Request {
        network: net.name,
        aliases: a.aliases,
        ip: a.ip,
    };
    network::attach(store, &ep, &[req], &[])?;
    // Remembered, so the next start joins it again (docker keeps connected networks).
    containers.update(&record.id, |r| {
        if r.config.network_mode != name && !r.config.extra_networks.contains(&name) {
            r.config.extra_networks.push(name.clone());
        }
    })?;
    record_attachments(&containers, store, &record.id)
}

fn disconnect(ctx: &Ctx, store: &NetworkStore, a: DisconnectArgs) -> Result<()> {
    let (containers, record, _) = find_container(ctx, store, &a.container)?;
    network::detach(store, &record.id, Some(&a.network))?;
    let name = store
        .inspect(&a.network)
        .map(|n| n.name)
        .unwrap_or(a.network);
    containers.update(&record.id, |r| {
        r.config.extra_networks.retain(|n| *n != name)
    })?;
    record_attachments(&containers, store, &record.id)
}
