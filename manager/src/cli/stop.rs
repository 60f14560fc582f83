//! `berth stop`, `berth restart` and `berth kill`.

use anyhow::Result;
use berth::ops::containers::{self, StopOptions};

use super::{ctr, Ctx};

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

fn options(args: &StopArgs) -> StopOptions {
    StopOptions {
        signal: args.signal.clone(),
        timeout: args.time,
    }
}

pub fn stop(ctx: &Ctx, args: StopArgs) -> Result<()> {
    let opts = options(&args);
    ctr::each(&args.containers, |c| {
        containers::stop(&ctx.engine, c, &opts)?;
        Ok(())
    })
}

pub fn restart(ctx: &Ctx, args: StopArgs) -> Result<()> {
    let opts = options(&args);
    ctr::each(&args.containers, |c| {
        containers::restart(&ctx.engine, c, &opts).map_err(ctr::start_error)
    })
}

pub fn kill(ctx: &Ctx, args: KillArgs) -> Result<()> {
    ctr::each(&args.containers, |c| {
        Ok(containers::kill(&ctx.engine, c, &args.signal)?)
    })
}
