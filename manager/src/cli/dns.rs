//! `berth __dns NETWORK`: a network's embedded DNS resolver (see `berth::network::dns`). Not
//! for users: the first container attached to a user network starts it.

use anyhow::Result;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    network: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    berth::ops::networks::serve_dns(&ctx.engine, &args.network, || println!("ready"))?;
    Ok(())
}
