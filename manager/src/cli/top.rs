//! `berth top CONTAINER [ps OPTIONS]`: the container's processes as the host's `ps` shows
//! them (the runtime's `ps` verb, passed through).

use std::io::Write;

use anyhow::Result;
use berth::ops::containers;
use berth::ops::OpsError;

use super::{Ctx, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    container: String,
    /// Options for ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match containers::top(&ctx.engine, &args.container, &args.ps_args) {
        Ok(top) => {
            std::io::stdout().write_all(&top.raw)?;
            Ok(())
        }
        // The runtime's own words, and its exit status.
        Err(OpsError::RuntimePs { code, stderr }) => {
            eprint!("{stderr}");
            Err(Exit::silent(code).into())
        }
        Err(e) => Err(e.into()),
    }
}
