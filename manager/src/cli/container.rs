//! `berth container ...` (the management group), `inspect` (containers and images) and
//! `container prune`.

use anyhow::Result;
use berth::container::lifecycle::{self, refresh, Paths};
use berth::container::{ContainerError, ContainerStore, Record, Status};
use clap::Subcommand;
use serde_json::{json, Value};

use super::{ctr, ps, Ctx};

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

/// docker's `inspect` shape for a container.
pub fn inspect_value(root: &std::path::Path, store: &ContainerStore, r: &Record) -> Value {
    let paths = Paths::new(root, store, r);
    let s = &r.state;
    let c = &r.config;
    let ports: serde_json::Map<String, Value> = c
        .ports
        .iter()
        .map(|p| {
            (
                format!("{}/{}", p.container_port, p.protocol),
                json!([{"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}]),
            )
        })
        .collect();
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": c.args.first().cloned().unwrap_or_default(),
        "Args": c.args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": s.status.as_str(),
            "Running": matches!(s.status, Status::Running | Status::Paused),
            "Paused": s.status == Status::Paused,
            "Restarting": s.status == Status::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": s.status == Status::Dead,
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": if s.started_at.is_empty() { "0001-01-01T00:00:00Z" } else { &s.started_at },
            "FinishedAt": if s.finished_at.is_empty() { "0001-01-01T00:00:00Z" } else { &s.finished_at },
            "Health": s.health,
        },
        "Image": r.image_id,
        "LogPath": paths.log,
        "Name": format!("/{}", r.name),
        "RestartCount": s.restart_count,
        "Driver": r.snapshotter,
        "HostConfig": {
            "Runtime": c.runtime,
            "NetworkMode": c.network_mode,
            "RestartPolicy": c.restart,
            "AutoRemove": c.auto_remove,
            "ReadonlyRootfs": c.read_only,
            "Privileged": c.privileged,
            "Memory": c.memory,
            "NanoCpus": c.nano_cpus,
            "PidsLimit": c.pids_limit,
            "PortBindings": ports,
        },
        "Mounts": c.mounts,
        "Config": {
            "Hostname": c.hostname,
            "User": c.user,
            "Tty": c.tty,
            "OpenStdin": c.open_stdin,
            "Env": c.env,
            "Cmd": c.cmd,
            "Entrypoint": c.entrypoint,
            "Image": r.image,
            "WorkingDir": c.working_dir,
            "Labels": c.labels,
            "StopSignal": c.stop_signal,
            "StopTimeout": c.stop_timeout,
            "Healthcheck": c.healthcheck,
            "ExposedPorts": c.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
        },
        "NetworkSettings": {
            "Networks": r.networks,
            "Ports": ports,
        },
    })
}

fn print_values(values: &[Value], format: Option<&str>) -> Result<()> {
    match format {
        None | Some("json") => println!("{}", serde_json::to_string_pretty(values)?),
        Some(f) => super::format::print_formatted(f, "json", values, &|h| h.to_string())?,
    }
    Ok(())
}

pub fn inspect(ctx: &Ctx, args: InspectArgs) -> Result<()> {
    let root = &ctx.settings.root;
    let mut out = Vec::new();
    let mut failed = false;
    for n in &args.names {
        match ctr::find(root, n) {
            Ok((store, r)) => out.push(inspect_value(root, &store, &r)),
            Err(e) => {
                eprintln!("Error: {e:#}");
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
    let root = ctx.settings.root.clone();
    let mut out = Vec::new();
    let mut failed = false;
    for n in &args.names {
        match ctr::find(&root, n) {
            Ok((store, r)) => {
                out.push(inspect_value(&root, &store, &r));
                continue;
            }
            Err(e) if !matches!(e.downcast_ref(), Some(ContainerError::NotFound { .. })) => {
                eprintln!("Error: {e:#}");
                failed = true;
                continue;
            }
            Err(_) => {}
        }
        match super::inspect::image_value(ctx, n) {
            Ok(v) => out.push(v),
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
    let root = &ctx.settings.root;
    let _ = args.force;
    let store = ContainerStore::open(root)?;
    let mut labels: Vec<(String, Option<String>)> = Vec::new();
    for f in &args.filter {
        match f.split_once('=') {
            Some(("label", l)) => labels.push(match l.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (l.to_string(), None),
            }),
            _ => anyhow::bail!("flag --filter: invalid filter {f:?} (label=...)"),
        }
    }
    println!("Deleted Containers:");
    let mut failed = false;
    for r in store.list()? {
        let r = refresh(&store, r)?;
        if !matches!(
            r.state.status,
            Status::Exited | Status::Created | Status::Dead
        ) || lifecycle::monitor_alive(&r)
        {
            continue;
        }
        let wanted = labels.iter().all(|(k, v)| match v {
            Some(v) => r.config.labels.get(k) == Some(v),
            None => r.config.labels.contains_key(k),
        });
        if !wanted {
            continue;
        }
        match berth::ops::containers::remove(&ctx.engine, &r.id, Default::default()) {
            Ok(()) => println!("{}", r.id),
            Err(e) => {
                eprintln!("Error: {e:#}");
                failed = true;
            }
        }
    }
    println!("\nTotal reclaimed space: 0B");
    let _ = ps::status_text;
    if failed {
        return Err(super::Exit::silent(1).into());
    }
    Ok(())
}
