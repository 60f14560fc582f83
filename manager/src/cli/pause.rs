//! `berth pause` / `berth unpause`: freeze and thaw a container's processes (cgroup freezer,
//! through the runtime).

use anyhow::Result;
use berth::ops::containers;

use super::{ctr, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn pause(ctx: &Ctx, args: Args) -> Result<()> {
    ctr::each(&args.containers, |c| Ok(containers::pause(&ctx.engine, c)?))
}

pub fn unpause(ctx: &Ctx, args: Args) -> Result<()> {
    ctr::each(&args.containers, |c| {
        Ok(containers::unpause(&ctx.engine, c)?)
    })
}
