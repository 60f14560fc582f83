//! `berth volume create|ls|inspect|rm|prune`.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use berth::ops::models::{Filters, Volume, VolumeCreateRequest};
use berth::ops::{volumes, Engine, ErrorClass};
use berth::template::{default_header, Format, Template};
use serde_json::{json, Value};

use super::format::human_size;
use super::Ctx;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused volumes (anonymous ones unless --all)
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Volume name (a random one when omitted)
    name: Option<String>,
    /// Volume driver (only "local")
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// Set metadata on the volume (KEY=VALUE)
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Driver options (type, device, o)
    #[arg(short = 'o', long = "opt")]
    opts: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short, long)]
    quiet: bool,
    /// Filter output (name=, label=, label!=, dangling=, driver=)
    #[arg(short, long = "filter")]
    filters: Vec<String>,
    /// Format output: table, table TEMPLATE, json or a Go template
    #[arg(long, default_value = "")]
    format: String,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    #[arg(required = true)]
    names: Vec<String>,
    /// Format output with a Go template (default: a JSON array)
    #[arg(short, long)]
    format: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    #[arg(required = true)]
    names: Vec<String>,
    /// Do not fail on volumes that do not exist
    #[arg(short, long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    all: bool,
    /// Filter (label=, label!=)
    #[arg(long = "filter")]
    filters: Vec<String>,
    /// Do not prompt for confirmation (berth never prompts)
    #[arg(short, long)]
    force: bool,
}

const DEFAULT_TABLE: &str = "table {{.Driver}}\t{{.Name}}";

pub fn run(ctx: &mut Ctx, cmd: Command) -> Result<()> {
    let engine = &ctx.engine;
    match cmd {
        Command::Create(a) => create(engine, a),
        Command::Ls(a) => ls(engine, a),
        Command::Inspect(a) => inspect(engine, a),
        Command::Rm(a) => rm(engine, a),
        Command::Prune(a) => prune(engine, a),
    }
}

fn key_values(flag: &str, items: &[String]) -> Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            if k.is_empty() {
                bail!("flag {flag}: invalid value {kv:?} (want KEY=VALUE)");
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// `--filter` terms; one without `=` is refused as the volume filters refuse bad terms.
fn filters(terms: &[String]) -> Result<Filters> {
    Filters::parse(terms).map_err(|e| anyhow::anyhow!("invalid filter {:?}", e.term))
}

fn create(engine: &Engine, a: CreateArgs) -> Result<()> {
    if a.driver != "local" {
        bail!(
            "flag --driver: unknown volume driver {:?} (only local)",
            a.driver
        );
    }
    let req = VolumeCreateRequest {
        name: a.name.unwrap_or_default(),
        driver: a.driver,
        labels: key_values("--label", &a.labels)?,
        driver_opts: key_values("--opt", &a.opts)?,
    };
    let v = volumes::create(engine, &req)?;
    println!("{}", v.name);
    Ok(())
}

/// One row of `volume ls`, with the fields docker's formatter exposes (labels as
/// `k=v,...`; size and links are only computed by `system df`).
fn row(v: &Volume) -> Value {
    let labels: Vec<String> = v
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    json!({
        "Driver": v.driver,
        "Name": v.name,
        "Mountpoint": v.mountpoint,
        "Scope": "local",
        "Labels": labels.join(","),
        "Links": "N/A",
        "Size": "N/A",
    })
}

fn header(field: &str) -> String {
    match field {
        "Name" => "VOLUME NAME".into(),
        other => default_header(other),
    }
}

fn ls(engine: &Engine, a: LsArgs) -> Result<()> {
    let vols = volumes::list(engine, &filters(&a.filters)?)?.volumes;
    if a.quiet {
        for v in &vols {
            println!("{}", v.name);
        }
        return Ok(());
    }
    let format = Format::parse(&a.format, DEFAULT_TABLE).context("flag --format")?;
    let rows: Vec<Value> = vols.iter().map(row).collect();
    print!("{}", format.render(&rows, &header)?);
    Ok(())
}

fn inspect(engine: &Engine, a: InspectArgs) -> Result<()> {
    let tmpl = a
        .format
        .as_deref()
        .filter(|f| *f != "json")
        .map(Template::parse)
        .transpose()
        .context("flag --format")?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in &a.names {
        match volumes::inspect(engine, name) {
            Ok(v) => found.push(serde_json::to_value(v)?),
            Err(e) if e.class() == ErrorClass::NotFound => missing.push(name.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    match tmpl {
        Some(t) => {
            for v in &found {
                println!("{}", t.render(v)?);
            }
        }
        None => println!("{}", pretty(&Value::Array(found))?),
    }
    if !missing.is_empty() {
        bail!("no such volume: {}", missing.join(", "));
    }
    Ok(())
}

/// JSON indented by four spaces, as docker prints inspect output.
fn pretty(v: &Value) -> Result<String> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(v, &mut ser)?;
    Ok(String::from_utf8(buf)?)
}

fn rm(engine: &Engine, a: RmArgs) -> Result<()> {
    let mut failed = 0;
    for name in &a.names {
        match volumes::remove(engine, name) {
            Ok(()) => println!("{name}"),
            Err(e) if a.force && e.class() == ErrorClass::NotFound => {}
            Err(e) => {
                eprintln!("Error: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} volumes could not be removed", a.names.len());
    }
    Ok(())
}

fn prune(engine: &Engine, a: PruneArgs) -> Result<()> {
    let _ = a.force;
    let filters = Filters::parse(&a.filters).map_err(|e| {
        anyhow::anyhow!(
            "flag --filter: invalid filter {:?} for prune (use label= or label!=)",
            e.term
        )
    })?;
    let report = volumes::prune(engine, a.all, &filters)?;
    if !report.volumes_deleted.is_empty() {
        println!("Deleted Volumes:");
        for name in &report.volumes_deleted {
            println!("{name}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(report.space_reclaimed)
    );
    Ok(())
}
