//! The container lifecycle, one module per operation. Each reads: load → refresh status →
//! check the transition → act → save.

mod create;
mod delete;
mod events;
mod exec;
mod kill;
mod pause;
mod start;
mod update;

pub use create::{create, CreateOptions, Created};
pub use delete::delete;
pub use events::{stats as events_stats, stream as events_stream};
pub use exec::{container_config, exec, ExecOptions};
pub use kill::kill;
pub use pause::{pause, resume};
pub use start::start;
pub use update::update;

use std::io;
use std::path::PathBuf;

use crate::state::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Setup(#[from] crate::linux::SetupError),
    #[error(transparent)]
    Rootless(#[from] crate::rootless::RootlessError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    #[error(transparent)]
    Signal(#[from] crate::signal::BadSignal),
    #[error("starting the container process: {message}")]
    Init { message: String },
    #[error(
        "container's cgroup unexpectedly frozen ({path}): thaw it or use another linux.cgroupsPath"
    )]
    Frozen { path: PathBuf },
    #[error("container init exited before it was ready ({status})")]
    InitDied { status: String },
    #[error("cannot {action} container {id}: it is {status}")]
    WrongStatus {
        id: String,
        action: &'static str,
        status: Status,
    },
    /// runc's words: containerd's shim recognises a stopped container by "container not
    /// running" in the message.
    #[error("container not running")]
    NotRunning { id: String },
    #[error("exec --cgroup: {reason}")]
    SubCgroup { reason: String },
    #[error("container {id}: cannot exec in a {status} container{hint}")]
    CannotExec {
        id: String,
        status: Status,
        hint: &'static str,
    },
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{call} failed")]
    Sys {
        call: &'static str,
        #[source]
        source: nix::errno::Errno,
    },
}

/// The console socket the process's pty master goes to: only when it asks for a terminal;
/// a `--console-socket` path wins over a connected socket the caller handed in.
pub(crate) fn console_for(
    terminal: bool,
    path: Option<&std::path::Path>,
    connected: Option<&std::os::fd::OwnedFd>,
) -> Result<Option<std::os::fd::OwnedFd>, Error> {
    if !terminal {
        return Ok(None);
    }
    match (path, connected) {
        (Some(path), _) => Ok(Some(
            std::os::unix::net::UnixStream::connect(path)
                .map_err(io_err("connecting to console socket", path))?
                .into(),
        )),
        (None, Some(fd)) => Ok(Some(
            fd.try_clone()
                .map_err(io_err("duplicating", "console socket"))?,
        )),
        (None, None) => Err(Error::Init {
            message: "process.terminal is true but no --console-socket was given".into(),
        }),
    }
}

pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// The container's processes: its cgroup's, or for a container without one (rootless, no
/// writable cgroup) the init and every process in its pid namespace.
pub fn processes(state: &crate::state::State) -> Vec<i32> {
    if !state.cgroup.dirs.is_empty() {
        return state.cgroup.pids();
    }
    let alive = crate::linux::proc::stat(state.pid)
        .is_some_and(|s| s.start_time == state.pid_start_time && !s.is_dead());
    if !alive {
        return Vec::new();
    }
    if !state.own_pid_ns {
        return vec![state.pid];
    }
    let Ok(ns) = std::fs::read_link(format!("/proc/{}/ns/pid", state.pid)) else {
        return vec![state.pid];
    };
    let mut out: Vec<i32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| std::fs::read_link(format!("/proc/{p}/ns/pid")).is_ok_and(|n| n == ns))
        .collect();
    if !out.contains(&state.pid) {
        out.push(state.pid);
    }
    out
}

/// Waits until `pid` is gone or a zombie (it may not be our child, so we cannot wait(2)).
pub(crate) fn wait_dead(pid: i32, start_time: u64, timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let mut delay = std::time::Duration::from_micros(100);
    loop {
        match crate::linux::proc::stat(pid) {
            Some(s) if s.start_time == start_time && !s.is_dead() => {}
            _ => return true,
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(std::time::Duration::from_millis(10));
    }
}
