//! `berth start [-a] [-i] CONTAINER...`: starts created or stopped containers.

use anyhow::{bail, Result};
use berth::ops::containers;

use super::attach::{stream, Shown};
use super::{ctr, Ctx, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    attach: bool,
    /// Attach the container's STDIN
    #[arg(short, long)]
    interactive: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if args.attach || args.interactive {
        if args.containers.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let attached =
            containers::start_attached(&ctx.engine, &args.containers[0], args.interactive)
                .map_err(ctr::start_error)?;
        let code = stream(attached, true, Shown::ALL)?;
        if code != 0 {
            return Err(Exit::silent(code).into());
        }
        return Ok(());
    }
    ctr::each(&args.containers, |c| {
        containers::start(&ctx.engine, c).map_err(ctr::start_error)
    })
}
