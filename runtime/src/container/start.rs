//! `start`: release the init from the exec fifo, then run poststart hooks.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Instant;

use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use super::{io_err, Error};
use crate::hooks;
use crate::linux::init::{START_FAILED, START_OK};
use crate::state::{ContainerDir, Status, EXEC_FIFO};

pub fn start(root: &Path, id: &str) -> Result<(), Error> {
    let dir = ContainerDir::open(root, id)?;
    let state = dir.load()?;
    let status = state.status(&dir.path);
    if !status.can_start() {
        return Err(Error::WrongStatus {
            id: id.into(),
            action: "start",
            status,
        });
    }
    let fifo_path = dir.path.join(EXEC_FIFO);
    // Non-blocking open: a reader may open a FIFO with no writer yet. The init is blocked in
    // its open(O_WRONLY), which our open releases; it then writes one byte.
    let fd = open(
        &fifo_path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Io {
        action: "opening",
        path: fifo_path.clone(),
        source: e.into(),
    })?;
    let mut fifo = File::from(fd);
    // The init answers once its startContainer hooks are done: bounded like every wait for
    // it (sync.rs), and a frozen cgroup fails at once rather than at the deadline.
    let budget = hooks::time_budget(hooks::of_kind(state.hooks.as_ref(), "startContainer"))
        .map(|b| crate::sync::STEP_TIMEOUT + b);
    let started = Instant::now();
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) => {
                if state.status(&dir.path) == Status::Stopped {
                    return Err(Error::NotRunning { id: id.into() });
                }
                if state.cgroup.is_frozen() {
                    return Err(Error::Frozen {
                        path: state.cgroup.freezer_file(),
                    });
                }
                if budget.is_some_and(|b| started.elapsed() > b) {
                    return Err(Error::Sync(crate::sync::SyncError::Timeout {
                        expected: "the init to pass the start barrier",
                        waited: started.elapsed(),
                    }));
                }
            }
            Ok(_) => {
                let mut buf = [0u8; libc::PIPE_BUF];
                match fifo.read(&mut buf) {
                    Ok(n) if n > 0 && buf[..n] == *START_OK => break,
                    // The init's startContainer hooks failed: its message says why.
                    Ok(n) if n > 0 && buf[0] == START_FAILED => {
                        return Err(Error::Init {
                            message: String::from_utf8_lossy(&buf[1..n]).into_owned(),
                        })
                    }
                    Ok(_) => return Err(Error::NotRunning { id: id.into() }),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(io_err("reading", &fifo_path)(e)),
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(source) => {
                return Err(Error::Sys {
                    call: "poll",
                    source,
                })
            }
        }
    }
    std::fs::remove_file(&fifo_path).map_err(io_err("removing", &fifo_path))?;
    let poststart = hooks::of_kind(state.hooks.as_ref(), "poststart");
    if !poststart.is_empty() {
        let json = serde_json::to_vec(&state.oci(Status::Running)).unwrap_or_default();
        // runtime-spec: a failing poststart hook is logged; the lifecycle continues.
        for e in hooks::run_all("poststart", poststart, &json) {
            crate::logging::warn(&e.to_string());
        }
    }
    Ok(())
}
