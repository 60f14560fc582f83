//! `berth exec`: runs a command in a running container through the runtime's `exec`, with
//! this terminal as its stdio (the runtime proxies a pty for `-t` and forwards signals).

use anyhow::Result;
use berth::ops::containers::{self, ExecStdio};
use berth::ops::models::ExecConfig;

use super::{Ctx, Exit};

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
    // `-e KEY` takes KEY's value from here, and is dropped when it has none (docker).
    let env = args
        .env
        .iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect();
    let config = ExecConfig {
        attach_stdin: args.interactive,
        attach_stdout: true,
        attach_stderr: true,
        detach: args.detach,
        tty: args.tty,
        env,
        cmd: args.command,
        user: args.user.unwrap_or_default(),
        working_dir: args.workdir.unwrap_or_default(),
        privileged: args.privileged,
    };
    containers::exec_create(&ctx.engine, &args.container, &config, "")?;
    let mut child = containers::exec(&ctx.engine, &args.container, &config, ExecStdio::Inherit)?;
    let code = child.wait()?;
    if code != 0 {
        // The runtime already printed why when the command could not run.
        return Err(Exit::silent(code).into());
    }
    Ok(())
}
