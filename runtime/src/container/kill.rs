//! `kill`: signal the init, or with `--all` every process in the container's cgroup.

use std::path::Path;

use super::Error;
use crate::state::ContainerDir;

fn signal(pid: i32, sig: i32) -> Result<(), nix::errno::Errno> {
    // SAFETY: kill(2) with a plain pid and signal number touches no memory.
    let r = unsafe { libc::kill(pid, sig) };
    if r < 0 {
        Err(nix::errno::Errno::last())
    } else {
        Ok(())
    }
}

pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<(), Error> {
    let dir = ContainerDir::open(root, id)?;
    let state = dir.load()?;
    let status = state.status(&dir.path);
    if all {
        // As runc: `kill --all` of a stopped container succeeds (whatever is left in its
        // cgroup gets the signal; nothing at all is fine).
        if state.cgroup.dirs.is_empty() {
            for pid in super::processes(&state) {
                let _ = signal(pid, sig);
            }
        } else {
            signal_all(&state.cgroup, sig);
        }
        return Ok(());
    }
    if !status.can_kill() {
        return Err(Error::NotRunning { id: id.into() });
    }
    match signal(state.pid, sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(source) => Err(Error::Sys {
            call: "kill",
            source,
        }),
    }
}

/// Signals every process in the cgroup, sub-cgroups included (frozen meanwhile, so nothing
/// forks past the signal).
pub(crate) fn signal_all(cgroup: &crate::cgroups::CgroupPaths, sig: i32) {
    cgroup.signal_all(sig);
}
