//! `delete`: stop what is left, remove cgroups, run poststop hooks, drop the state.

use std::path::Path;
use std::time::Duration;

use super::{kill::signal_all, wait_dead, Error};
use crate::hooks;
use crate::state::{ContainerDir, StateError, Status, STATE_FILE};

/// How long `delete --force` waits for another command holding the container's lock before
/// it deletes anyway (that command is stopped or stuck; see state.rs).
const FORCE_LOCK_WAIT: Duration = Duration::from_secs(10);

pub fn delete(root: &Path, id: &str, force: bool) -> Result<(), Error> {
    let dir = if force {
        ContainerDir::open_forced(root, id, FORCE_LOCK_WAIT)?
    } else {
        ContainerDir::open(root, id)?
    };
    if !dir.path.join(STATE_FILE).exists() {
        // A `create` killed before it wrote anything left only the directory (runc removes
        // it too): there is no process and no cgroup to look for.
        if !force {
            return Err(StateError::NotFound { id: id.into() }.into());
        }
        dir.remove()?;
        return Ok(());
    }
    let state = dir.load()?;
    let status = state.status(&dir.path);
    match status {
        Status::Stopped | Status::Created => {}
        // The record of a `create` that died before its init existed for good (the init
        // died with it): holding the lock proves that `create` is gone.
        Status::Creating if dir.lock_fd().is_some() => {}
        _ if force => {}
        _ => {
            return Err(Error::WrongStatus {
                id: id.into(),
                action: "delete",
                status,
            })
        }
    }
    if status == Status::Creating {
        // Only a forced delete of a `create` that still holds the lock gets here with
        // processes possibly alive; those already in the cgroup go now, the init itself
        // dies with that `create` (its parent-death signal).
        if dir.lock_fd().is_none() {
            signal_all(&state.cgroup, libc::SIGKILL);
        }
    } else if status != Status::Stopped || !state.own_pid_ns {
        // Without a pid namespace the init's death does not end the other processes; and a
        // forced delete ends everything. A frozen cgroup must thaw for SIGKILL to land.
        if status == Status::Paused {
            if let Err(e) = state.cgroup.thaw() {
                crate::logging::warn(&format!("deleting container {id}: {e}"));
            }
        }
        // SAFETY: kill(2) with a plain pid and signal number touches no memory.
        unsafe { libc::kill(state.pid, libc::SIGKILL) };
        signal_all(&state.cgroup, libc::SIGKILL);
        wait_dead(state.pid, state.pid_start_time, Duration::from_secs(5));
        for _ in 0..100 {
            if state.cgroup.pids().is_empty() {
                break;
            }
            signal_all(&state.cgroup, libc::SIGKILL);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let mut errors = Vec::new();
    if let Err(e) = state.cgroup.remove() {
        errors.push(e.to_string());
    }
    let poststop = hooks::of_kind(state.hooks.as_ref(), "poststop");
    if !poststop.is_empty() && status != Status::Creating {
        let json = serde_json::to_vec(&state.oci(Status::Stopped)).unwrap_or_default();
        // runtime-spec: poststop failures are logged, deletion goes on.
        for e in hooks::run_all("poststop", poststop, &json) {
            crate::logging::warn(&e.to_string());
        }
    }
    dir.remove()?;
    if let Some(first) = errors.first() {
        crate::logging::warn(&format!("deleting container {id}: {first}"));
    }
    Ok(())
}
