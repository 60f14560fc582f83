//! `run`: create + start, then (unless detached) stay as the container's parent: forward
//! signals, proxy the terminal if we own it, and exit with the container's exit status.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use anyhow::{bail, Context, Result};
use berth_runtime::container;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::foreground::{hold_signals, receive_master, supervise};

use crate::Global;

#[derive(Debug, clap::Args)]
#[group(id = "run-args")]
pub struct Args {
    #[command(flatten)]
    pub create: super::create::Args,
    /// Return after starting; the container keeps running
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long = "keep")]
    pub keep: bool,
}

#[inline(never)] // see main()
pub fn run(g: &Global, args: Args) -> Result<u8> {
    hold_signals()?;
    let id = args.create.id.clone();
    let detach = args.detach;
    let socket_given = args.create.console_socket.is_some();
    let mut opts = args.create.options(g);
    // Used only if the process asks for a terminal and no --console-socket was given.
    let (ours, theirs) = UnixStream::pair().context("creating console socket pair")?;
    opts.console_fd = Some(theirs.into());
    let created = container::create(opts)?;
    let pid = Pid::from_raw(created.state.pid);
    let own_tty = created.terminal && !socket_given;
    drop(created); // release the state lock so `start` can take it
    if own_tty && detach {
        let _ = container::delete(&g.root, &id, true);
        let _ = waitpid(pid, None);
        bail!("cannot allocate a tty when detaching without --console-socket");
    }
    let master = if own_tty {
        Some(receive_master(ours.as_raw_fd()).context("receiving the pty master")?)
    } else {
        None
    };
    drop(ours);

    if let Err(e) = container::start(&g.root, &id) {
        let _ = container::delete(&g.root, &id, true);
        let _ = waitpid(pid, None);
        return Err(e.into());
    }
    if detach {
        return Ok(0);
    }
    let code = match supervise(pid, master) {
        Ok(code) => code,
        Err(e) => {
            // Nobody would forward signals to the container or reap it: take it down.
            let _ = kill(pid, Signal::SIGKILL);
            let _ = container::delete(&g.root, &id, true);
            let _ = waitpid(pid, None);
            return Err(e);
        }
    };
    if !args.keep {
        container::delete(&g.root, &id, true)
            .with_context(|| format!("deleting container {id} after it exited"))?;
    }
    Ok(code)
}
