//! `berth rm [-f] [-v] CONTAINER...`.

use anyhow::Result;
use berth::ops::containers::{self, RemoveOptions};

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
    let opts = RemoveOptions {
        force: args.force,
        volumes: args.volumes,
    };
    ctr::each(&args.containers, |c| {
        Ok(containers::remove(&ctx.engine, c, opts)?)
    })
}
