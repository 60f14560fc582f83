//! `berth rm [-f] [-v] CONTAINER...`.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use berth::container::lifecycle::{self, monitor_alive, wait_exit};
use berth::container::{ContainerStore, Record, Status};

use super::{ctr, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let root = &ctx.settings.root;
    ctr::each(&args.containers, |c| {
        let (store, r) = ctr::find(root, c)?;
        remove(root, &store, &r, args.force, args.volumes)
    })
}

/// Removes one container, killing it first when `force`.
pub fn remove(
    root: &Path,
    store: &ContainerStore,
    r: &Record,
    force: bool,
    volumes: bool,
) -> Result<()> {
    let running = matches!(
        r.state.status,
        Status::Running | Status::Paused | Status::Restarting
    );
    if running && !force {
        bail!(
            "You cannot remove a {} container {}. Stop the container before attempting removal or force remove",
            r.state.status.as_str(),
            r.id
        );
    }
    if monitor_alive(r) {
        let r = store.update(&r.id, |r| r.state.manually_stopped = true)?;
        let runtime = ctr::runtime(root, store, &r);
        let _ = runtime.kill(&r.id, "KILL", true);
        if r.state.status == Status::Paused {
            let _ = runtime.resume(&r.id);
        }
        wait_exit(store, &r.id, Some(Duration::from_secs(30)))?;
    }
    let r = match store.load(&r.id) {
        Ok(r) => r,
        // Its monitor removed it (`--rm`).
        Err(berth::container::ContainerError::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    lifecycle::remove_files(root, store, &r, volumes)?;
    Ok(())
}
