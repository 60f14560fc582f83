//! `berth network create/ls/inspect/rm/prune/connect/disconnect`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::{bail, Result};
use berth::ops::models::{
    EndpointIpamConfig, EndpointSettings, Filters, Ipam, IpamConfig, NetworkConnectRequest,
    NetworkCreateRequest, NetworkInspect,
};
use berth::ops::networks::BACKEND_OPTION;
use berth::ops::{networks, Engine, OpsError};
use ipnet::{IpNet, Ipv4Net};
use serde_json::{json, Value};

use super::Ctx;

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
    /// Output format: table, table TEMPLATE, json (one object per line) or a Go template
    #[arg(long, default_value = "table")]
    format: String,
    /// Provide filter values (name, id, driver, label, type=custom|builtin)
    #[arg(short, long = "filter")]
    filter: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Networks (names or IDs)
    #[arg(required = true)]
    networks: Vec<String>,
    /// Format output with a Go template (default: a JSON array)
    #[arg(short, long)]
    format: Option<String>,
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
    ip: Option<std::net::Ipv4Addr>,
}

#[derive(Debug, clap::Args)]
pub struct DisconnectArgs {
    network: String,
    /// Container (name or ID)
    container: String,
}

pub fn run(ctx: &mut Ctx, cmd: Command) -> Result<()> {
    let engine = &ctx.engine;
    match cmd {
        Command::Create(a) => create(engine, a),
        Command::Ls(a) => ls(engine, a),
        Command::Inspect(a) => inspect(engine, a),
        Command::Rm(a) => rm(engine, a),
        Command::Prune(a) => prune(engine, a),
        Command::Connect(a) => connect(engine, a),
        Command::Disconnect(a) => Ok(networks::disconnect(engine, &a.network, &a.container)?),
    }
}

fn create(engine: &Engine, a: CreateArgs) -> Result<()> {
    let mut labels = BTreeMap::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            bail!("flag --label: invalid label {l:?} (expected KEY=VALUE)");
        }
        labels.insert(k.to_string(), v.to_string());
    }
    // docker's CLI: one IPAM config per subnet, each with the gateway and range inside it.
    let show = |v: Option<String>| v.unwrap_or_default();
    let config = if a.subnet.is_empty() {
        vec![IpamConfig {
            gateway: show(a.gateway.first().map(|g| g.to_string())),
            ip_range: show(a.ip_range.map(|r| r.to_string())),
            ..IpamConfig::default()
        }]
    } else {
        a.subnet
            .iter()
            .map(|net| IpamConfig {
                subnet: net.to_string(),
                gateway: show(
                    a.gateway
                        .iter()
                        .find(|g| net.contains(*g))
                        .map(|g| g.to_string()),
                ),
                ip_range: show(
                    a.ip_range
                        .filter(|r| net.contains(&IpNet::V4(*r)))
                        .map(|r| r.to_string()),
                ),
            })
            .collect()
    };
    if let Some(g) = a
        .gateway
        .iter()
        .find(|g| !a.subnet.is_empty() && !a.subnet.iter().any(|n| n.contains(*g)))
    {
        bail!("flag --gateway: {g} is in none of the --subnet values");
    }
    // As docker's CLI: a range must lie in one of the subnets given.
    if let Some(r) = a
        .ip_range
        .filter(|r| !a.subnet.is_empty() && !a.subnet.iter().any(|n| n.contains(&IpNet::V4(*r))))
    {
        bail!("flag --ip-range: no matching subnet for range {r}");
    }
    let req = NetworkCreateRequest {
        name: a.name,
        driver: a.driver,
        internal: a.internal,
        enable_ipv6: a.ipv6,
        ipam: Ipam {
            options: None,
            driver: String::new(),
            config,
        },
        labels,
        options: BTreeMap::from([(BACKEND_OPTION.to_string(), a.network_backend)]),
    };
    let created = networks::create(engine, &req)?;
    println!("{}", created.id);
    Ok(())
}

fn ls(engine: &Engine, a: LsArgs) -> Result<()> {
    let filters = Filters::parse(&a.filter).map_err(OpsError::from)?;
    let mut nets = networks::list_filtered(engine, &filters)?;
    // docker's CLI lists networks by name.
    nets.sort_by(|x, y| x.name.cmp(&y.name));
    let id = |n: &NetworkInspect| {
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
    let rows: Vec<Value> = nets
        .iter()
        .map(|n| {
            let labels = n
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            json!({
                "ID": id(n), "Name": n.name, "Driver": n.driver, "Scope": n.scope,
                "Subnet": n.ipam.config.first().map(|c| c.subnet.clone()).unwrap_or_default(),
                "Internal": n.internal, "IPv6": n.enable_ipv6, "CreatedAt": n.created,
                "Labels": labels,
            })
        })
        .collect();
    let header = |field: &str| match field {
        "ID" => "NETWORK ID".to_string(),
        other => berth::template::default_header(other),
    };
    let format = if a.format == "{{json .}}" {
        "json"
    } else {
        &a.format
    };
    super::format::print_formatted(
        format,
        "table {{.ID}}\\t{{.Name}}\\t{{.Driver}}\\t{{.Scope}}",
        &rows,
        &header,
    )
}

fn inspect(engine: &Engine, a: InspectArgs) -> Result<()> {
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for what in &a.networks {
        match networks::inspect(engine, what) {
            Ok(n) => out.push(serde_json::to_value(n)?),
            Err(e) => failed.push(e.to_string()),
        }
    }
    super::container::print_values(&out, a.format.as_deref())?;
    if !failed.is_empty() {
        bail!("{}", failed.join("\nError: "));
    }
    Ok(())
}

fn rm(engine: &Engine, a: RmArgs) -> Result<()> {
    let mut failed = Vec::new();
    for what in &a.networks {
        match networks::remove(engine, what) {
            Ok(()) => println!("{what}"),
            Err(e) => failed.push(e.to_string()),
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("\nError: "));
    }
    Ok(())
}

fn prune(engine: &Engine, _a: PruneArgs) -> Result<()> {
    let removed = networks::prune(engine)?.networks_deleted;
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for n in removed {
            println!("{n}");
        }
    }
    Ok(())
}

fn connect(engine: &Engine, a: ConnectArgs) -> Result<()> {
    let req = NetworkConnectRequest {
        container: a.container,
        endpoint_config: EndpointSettings {
            aliases: a.aliases,
            ipam_config: a.ip.map(|ip| EndpointIpamConfig {
                ipv4_address: ip.to_string(),
            }),
            ..EndpointSettings::default()
        },
    };
    Ok(networks::connect(engine, &a.network, &req)?)
}
