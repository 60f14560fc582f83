//! `berth top CONTAINER [ps OPTIONS]`: the container's processes as the host's `ps` shows
//! them. The runtime's `ps` verb does exactly this (runc's, and berth-runtime's), so it is
//! passed through.

use anyhow::{bail, Context, Result};
use berth::container::Status;

use super::{ctr, Ctx, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    container: String,
    /// Options for ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let root = &ctx.settings.root;
    let (store, r) = ctr::find(root, &args.container)?;
    if !matches!(r.state.status, Status::Running | Status::Paused) {
        bail!("container {} is not running", r.id);
    }
    let runtime = ctr::runtime(root, &store, &r);
    let mut cmd = runtime.command("ps");
    cmd.arg(&r.id).args(&args.ps_args);
    let status = cmd
        .status()
        .with_context(|| format!("running {} ps", runtime.path.display()))?;
    if !status.success() {
        return Err(Exit::silent(status.code().unwrap_or(1)).into());
    }
    Ok(())
}
