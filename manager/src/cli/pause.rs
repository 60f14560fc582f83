//! `berth pause` / `berth unpause`: freeze and thaw a container's processes (cgroup freezer,
//! through the runtime).

use anyhow::{bail, Result};
use berth::container::Status;

use super::{ctr, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn pause(ctx: &Ctx, args: Args) -> Result<()> {
    let root = &ctx.settings.root;
    ctr::each(&args.containers, |c| {
        let (store, r) = ctr::find(root, c)?;
        match r.state.status {
            Status::Running => {}
            Status::Paused => bail!("container {} is already paused", r.id),
            _ => bail!("container {} is not running", r.id),
        }
        ctr::runtime(root, &store, &r).pause(&r.id)?;
        store.update(&r.id, |r| r.state.status = Status::Paused)?;
        Ok(())
    })
}

pub fn unpause(ctx: &Ctx, args: Args) -> Result<()> {
    let root = &ctx.settings.root;
    ctr::each(&args.containers, |c| {
        let (store, r) = ctr::find(root, c)?;
        if r.state.status != Status::Paused {
            bail!("container {} is not paused", r.id);
        }
        ctr::runtime(root, &store, &r).resume(&r.id)?;
        store.update(&r.id, |r| {
            if r.state.status == Status::Paused {
                r.state.status = Status::Running;
            }
        })?;
        Ok(())
    })
}
