//! `berth stop`, `berth restart` and `berth kill`.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use berth::container::lifecycle;
use berth::container::{ContainerStore, Status};

use super::{ctr, start, Ctx};

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container (default: its --stop-timeout, else 10)
    #[arg(short = 't', long = "time", visible_alias = "timeout")]
    time: Option<i64>,
    /// Signal to send (default: its --stop-signal, else SIGTERM)
    #[arg(short, long)]
    signal: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal to send
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

fn timeout(args: &StopArgs, default: u64) -> Duration {
    match args.time {
        // docker: a negative timeout waits forever.
        Some(t) if t < 0 => Duration::from_secs(u64::MAX / 4),
        Some(t) => Duration::from_secs(t as u64),
        None => Duration::from_secs(default),
    }
}

/// Stops one container with its own stop signal and timeout unless the flags say otherwise.
fn stop_one(root: &Path, args: &StopArgs, c: &str) -> Result<(ContainerStore, String)> {
    let (store, r) = ctr::find(root, c)?;
    let signal = args
        .signal
        .clone()
        .unwrap_or_else(|| r.config.stop_signal.clone());
    lifecycle::stop(
        root,
        &store,
        &r,
        &signal,
        timeout(args, r.config.stop_timeout),
    )?;
    Ok((store, r.id))
}

pub fn stop(ctx: &Ctx, args: StopArgs) -> Result<()> {
    let root = &ctx.settings.root;
    ctr::each(&args.containers, |c| stop_one(root, &args, c).map(drop))
}

pub fn restart(ctx: &Ctx, args: StopArgs) -> Result<()> {
    let root = &ctx.settings.root;
    ctr::each(&args.containers, |c| {
        let (store, id) = stop_one(root, &args, c)?;
        start::start_detached(root, &store, &store.load(&id)?)
    })
}

pub fn kill(ctx: &Ctx, args: KillArgs) -> Result<()> {
    let root = &ctx.settings.root;
    ctr::each(&args.containers, |c| {
        let (store, r) = ctr::find(root, c)?;
        if !matches!(r.state.status, Status::Running | Status::Paused) {
            bail!(
                "Cannot kill container: {c}: Container {} is not running",
                r.id
            );
        }
        let signal = args.signal.trim_start_matches("SIG").to_string();
        if matches!(signal.as_str(), "KILL" | "9" | "TERM" | "15" | "INT" | "2") {
            store.update(&r.id, |r| r.state.manually_stopped = true)?;
        }
        ctr::runtime(root, &store, &r).kill(&r.id, &signal, false)?;
        Ok(())
    })
}
