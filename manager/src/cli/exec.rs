//! `berth exec`: runs a command in a running container through the runtime's `exec`, with
//! this terminal as its stdio (the runtime proxies a pty for `-t` and forwards signals).

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use berth::container::Status;

use super::{ctr, Ctx, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    detach: bool,
    /// Keep STDIN open
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Set environment variables
    #[arg(short, long)]
    env: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    privileged: bool,
    container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let root = &ctx.settings.root;
    let (store, r) = ctr::find(root, &args.container)?;
    match r.state.status {
        Status::Running => {}
        Status::Paused => bail!(
            "container {} is paused, unpause the container before exec",
            r.id
        ),
        _ => bail!("container {} is not running", r.id),
    }
    let runtime = ctr::runtime(root, &store, &r);
    let mut cmd: Command = runtime.command("exec");
    if args.tty {
        cmd.arg("--tty");
    }
    if args.detach {
        cmd.arg("--detach");
    }
    if let Some(w) = &args.workdir {
        cmd.arg("--cwd").arg(w);
    }
    for e in &args.env {
        let kv = if e.contains('=') {
            e.clone()
        } else {
            match std::env::var(e) {
                Ok(v) => format!("{e}={v}"),
                Err(_) => continue,
            }
        };
        cmd.arg("--env").arg(kv);
    }
    if let Some(u) = &args.user {
        let (uid, gid, groups) = super::run::resolve_user(&store.dir(&r.id), u)?;
        cmd.arg("--user").arg(format!("{uid}:{gid}"));
        for g in groups {
            cmd.arg("--additional-gids").arg(g.to_string());
        }
    }
    if args.privileged {
        for cap in super::run::all_capabilities() {
            cmd.arg("--cap").arg(cap);
        }
    }
    cmd.arg(&r.id).args(&args.command);
    if !args.interactive {
        cmd.stdin(Stdio::null());
    }
    let status = cmd
        .status()
        .with_context(|| format!("running {}", runtime.path.display()))?;
    let code = status.code().unwrap_or(128 + 9);
    if code != 0 {
        // The runtime already printed why when the command could not run.
        return Err(Exit::silent(code).into());
    }
    Ok(())
}
