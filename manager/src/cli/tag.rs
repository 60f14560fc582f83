//! `berth tag`.

use anyhow::Result;
use berth::ops::images;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// SOURCE_IMAGE[:TAG] or image ID
    source: String,
    /// TARGET_IMAGE[:TAG]
    target: String,
}

pub fn run(ctx: &mut Ctx, args: Args) -> Result<()> {
    Ok(images::tag(&ctx.engine, &args.source, &args.target)?)
}
