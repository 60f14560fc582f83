//! `berth rename CONTAINER NEW_NAME`.

use anyhow::Result;
use berth::ops::containers;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    container: String,
    new_name: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    Ok(containers::rename(
        &ctx.engine,
        &args.container,
        &args.new_name,
    )?)
}
