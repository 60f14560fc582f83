//! `berth container ...` (the management group), `inspect` (containers and images) and
//! `container prune`.

use anyhow::Result;
use berth::ops::models::Filters;
use berth::ops::{containers, images, ErrorClass};
use clap::Subcommand;
use serde_json::Value;

use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and run a new container from an image
    Run(super::run::RunArgs),
    /// Create a new container
    Create(super::run::CreateArgs),
    /// Start one or more stopped containers
    Start(super::start::Args),
    /// Stop one or more running containers
    Stop(super::stop::StopArgs),
    /// Restart one or more containers
    Restart(super::stop::StopArgs),
    /// Kill one or more running containers
    Kill(super::stop::KillArgs),
    /// Remove one or more containers
    #[command(alias = "remove")]
    Rm(super::rm::Args),
    /// List containers
    #[command(aliases = ["ps", "list"])]
    Ls(super::ps::Args),
    /// Fetch the logs of a container
    Logs(super::logs::Args),
    /// Execute a command in a running container
    Exec(super::exec::Args),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(super::wait::Args),
    /// Display the running processes of a container
    Top(super::top::Args),
    /// Pause all processes within one or more containers
    Pause(super::pause::Args),
    /// Unpause all processes within one or more containers
    Unpause(super::pause::Args),
    /// Rename a container
    Rename(super::rename::Args),
    /// List port mappings of a container
    Port(super::port::Args),
    /// Copy files/folders between a container and the local filesystem
    Cp(super::cp::Args),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(super::stats::Args),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(super::changes::DiffArgs),
    /// Export a container's filesystem as a tar archive
    Export(super::changes::ExportArgs),
    /// Update configuration of one or more containers
    Update(super::changes::UpdateArgs),
    /// Create a new image from a container's changes
    Commit(super::changes::CommitArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(super::attach_cmd::Args),
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Format output using a Go template (default: JSON)
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Filter (label=, until=)
    #[arg(long)]
    filter: Vec<String>,
}

/// Inspect output: a JSON array, or each value through a Go template (`-f`).
pub(super) fn print_values(values: &[Value], format: Option<&str>) -> Result<()> {
    match format {
        None | Some("json") => println!("{}", serde_json::to_string_pretty(values)?),
        Some(f) => super::format::print_formatted(f, "json", values, &|h| h.to_string())?,
    }
    Ok(())
}

pub fn inspect(ctx: &Ctx, args: InspectArgs) -> Result<()> {
    let mut out = Vec::new();
    let mut failed = false;
    for n in &args.names {
        match containers::inspect(&ctx.engine, n) {
            Ok(c) => out.push(serde_json::to_value(c)?),
            Err(e) => {
                super::report(&e.into());
                failed = true;
            }
        }
    }
    print_values(&out, args.format.as_deref())?;
    if failed {
        return Err(super::Exit::silent(1).into());
    }
    Ok(())
}

/// `berth inspect`: a container when one matches, else an image.
pub fn inspect_any(ctx: &mut Ctx, args: InspectArgs) -> Result<()> {
    let mut out = Vec::new();
    let mut failed = false;
    for n in &args.names {
        match containers::inspect(&ctx.engine, n) {
            Ok(c) => {
                out.push(serde_json::to_value(c)?);
                continue;
            }
            Err(e) if e.class() != ErrorClass::NotFound => {
                super::report(&e.into());
                failed = true;
                continue;
            }
            Err(_) => {}
        }
        match images::inspect(&ctx.engine, n) {
            Ok(v) => out.push(serde_json::to_value(v)?),
            Err(_) => {
                eprintln!("Error: No such object: {n}");
                failed = true;
            }
        }
    }
    print_values(&out, args.format.as_deref())?;
    if failed {
        return Err(super::Exit::silent(1).into());
    }
    Ok(())
}

pub fn prune(ctx: &Ctx, args: PruneArgs) -> Result<()> {
    let _ = args.force;
    let filters = match Filters::parse(&args.filter) {
        Ok(f) => f,
        Err(e) => anyhow::bail!(
            "flag --filter: invalid filter {:?} (label=..., label!=... or until=...)",
            e.term
        ),
    };
    let pruned = containers::prune(&ctx.engine, &filters)?;
    // docker: the list only when something went, then a blank line.
    if !pruned.containers_deleted.is_empty() {
        println!("Deleted Containers:");
        for id in &pruned.containers_deleted {
            println!("{id}");
        }
        println!();
    }
    for line in &pruned.errors {
        eprintln!("{line}");
    }
    println!(
        "Total reclaimed space: {}",
        super::format::human_size(pruned.space_reclaimed)
    );
    if !pruned.errors.is_empty() {
        return Err(super::Exit::silent(1).into());
    }
    Ok(())
}
