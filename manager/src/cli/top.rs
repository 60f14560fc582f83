//! `berth top CONTAINER [ps OPTIONS]`: the host's `ps` output restricted to the container's
//! processes (as docker does it).

use std::process::Command;

use anyhow::{bail, Context, Result};
use berth::container::Status;

use super::{ctr, Ctx};

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
    let pids = ctr::runtime(root, &store, &r).pids(&r.id)?;
    let ps_args = if args.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.ps_args.clone()
    };
    let out = Command::new("ps")
        .args(&ps_args)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(col) = header.split_whitespace().position(|h| h == "PID") else {
        bail!("ps {}: the output has no PID column", ps_args.join(" "));
    };
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(())
}
