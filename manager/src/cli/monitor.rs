//! `berth __monitor ID`: the per-container monitor (see `berth::ops::containers::monitor`). Not for
//! users: `run`, `create` and `start` spawn it with the sync pipe on fd 3.

use std::fs::File;
use std::os::fd::FromRawFd;

use anyhow::Result;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    id: String,
    /// Start the container right after creating it
    #[arg(long)]
    start: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    // SAFETY: fd 3 is the sync pipe the spawner installed for us with dup2 before exec; we
    // take sole ownership of it. When started by hand it may be absent: then the check
    // below fails and no pipe is used.
    let sync = if nix::fcntl::fcntl(
        unsafe { std::os::fd::BorrowedFd::borrow_raw(3) },
        nix::fcntl::FcntlArg::F_GETFD,
    )
    .is_ok()
    {
        // SAFETY: see above; fd 3 is open and nobody else owns it.
        Some(unsafe { File::from_raw_fd(3) })
    } else {
        None
    };
    berth::ops::containers::monitor(&ctx.engine, &args.id, args.start, sync)?;
    Ok(())
}
