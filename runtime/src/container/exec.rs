//! `exec`: start another process inside a running container, in all of its namespaces and
//! its cgroup, with the container's or the caller's process settings.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use super::{io_err, Error};
use crate::linux::namespaces::{self, Join};
use crate::linux::{clone, exec as child, proc};
use crate::state::{ContainerDir, Status};
use crate::sync::{channel_pair, Message};

#[derive(Debug, Default)]
pub struct ExecOptions {
    pub root: PathBuf,
    pub id: String,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// Used when the process wants a terminal and no `console_socket` is given.
    pub console_fd: Option<OwnedFd>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// `--cgroup`: a sub-cgroup of the container's to put the process in.
    pub sub_cgroup: Option<String>,
}

/// Loads what exec needs from a container: its config (for process defaults) and status.
pub fn container_config(root: &Path, id: &str) -> Result<Spec, Error> {
    let dir = ContainerDir::open(root, id)?;
    Ok(dir.load_with_config()?.1)
}

/// Runs `process` in the container and returns the new process's pid once it has exec'd.
pub fn exec(opts: ExecOptions, process: &Process) -> Result<Pid, Error> {
    let dir = ContainerDir::open(&opts.root, &opts.id)?;
    let (state, spec) = dir.load_with_config()?;
    let status = state.status(&dir.path);
    match status {
        Status::Created | Status::Running => {}
        Status::Paused if opts.ignore_paused => {}
        _ => {
            return Err(Error::WrongStatus {
                id: opts.id.clone(),
                action: "exec in",
                status,
            })
        }
    }
    // The namespaces are the init's, opened through /proc/<pid>/ns; the start time checked
    // afterwards proves the files belong to that init and not to a recycled pid.
    let mut joins = Vec::new();
    let mut in_userns = false;
    for ns in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        let path = PathBuf::from(format!(
            "/proc/{}/ns/{}",
            state.pid,
            namespaces::file_name(ns.typ())
        ));
        let file = File::open(&path).map_err(io_err("opening namespace", &path))?;
        in_userns |= ns.typ() == LinuxNamespaceType::User;
        joins.push(Join {
            kind: ns.typ(),
            path,
            file,
        });
    }
    if !proc::stat(state.pid).is_some_and(|s| s.start_time == state.pid_start_time && !s.is_dead())
    {
        return Err(Error::NotRunning);
    }
    drop(dir);

    // pid and time namespaces apply to children, so the parent joins them; the child joins
    // the rest: user first (it grants the rights for the others), mount last (it changes
    // our root and cwd).
    let rank = |t: LinuxNamespaceType| match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    };
    let (parent_joins, mut child_joins): (Vec<Join>, Vec<Join>) = joins
        .into_iter()
        .partition(|j| matches!(j.kind, LinuxNamespaceType::Pid | LinuxNamespaceType::Time));
    child_joins.sort_by_key(|j| rank(j.kind));
    let kinds: Vec<LinuxNamespaceType> = parent_joins.iter().map(|j| j.kind).collect();
    let restore = namespaces::Restore::save(&kinds)?;
    namespaces::join_all(&parent_joins)?;

    let terminal = process.terminal().unwrap_or(false);
    let console = super::console_for(
        terminal,
        opts.console_socket.as_deref(),
        opts.console_fd.as_ref(),
    )?;

    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let state_json = serde_json::to_vec(&state.oci(status)).unwrap_or_default();
    let (parent_end, child_end) = channel_pair()?;
    let forked = clone::fork_with_namespaces(0).map_err(|source| Error::Sys {
        call: "clone3",
        source,
    })?;
    let Some(pid) = forked else {
        drop(parent_end);
        child::run(child::ExecArgs {
            process,
            joins: &child_joins,
            in_userns,
            channel: child_end,
            console: console.as_ref(),
            preserve_fds: opts.preserve_fds,
            seccomp,
            state: &state_json,
        });
    };
    restore.restore()?;
    drop(child_end);
    drop(console);
    let fail = |e: Error| {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(pid, None);
        // The child sets itself up while we place it in the cgroup and may have failed
        // first: its own message (queued before it exited) says why better than ours.
        match parent_end.recv() {
            Ok(Some(Message::Error(message))) => Error::Init { message },
            _ => e,
        }
    };
    let placed = match &opts.sub_cgroup {
        Some(sub) => add_to_sub_cgroup(&state.cgroup, pid.as_raw(), sub),
        None => state.cgroup.add_pid(pid.as_raw()).map_err(Error::from),
    };
    placed.map_err(fail)?;
    parent_end
        .send(&Message::Continue)
        .map_err(|e| fail(e.into()))?;
    // The child's end is close-on-exec: end-of-file means execve succeeded.
    match parent_end.recv().map_err(|e| fail(e.into()))? {
        None => {}
        Some(Message::Error(message)) => return Err(fail(Error::Init { message })),
        Some(other) => {
            return Err(fail(Error::Init {
                message: format!("unexpected message {other:?}"),
            }))
        }
    }
    if let Some(path) = &opts.pid_file {
        super::create::write_pid_file(path, pid.as_raw())?;
    }
    Ok(pid)
}

/// `exec --cgroup`: `path` applies to every hierarchy, `controller:path` to the hierarchies
/// naming that controller; the sub-cgroup must exist inside the container's.
fn add_to_sub_cgroup(
    cgroup: &crate::cgroups::CgroupPaths,
    pid: i32,
    spec: &str,
) -> Result<(), Error> {
    use std::path::Component;
    let (ctrl, sub) = match spec.split_once(':') {
        Some((c, p)) => (Some(c), p),
        None => (None, spec),
    };
    let sub = Path::new(sub);
    let bad = || Error::Init {
        message: format!("--cgroup {spec:?}: must name a sub-cgroup inside the container's"),
    };
    if sub
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::RootDir))
    {
        return Err(bad());
    }
    let rel: PathBuf = sub
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    for (key, dir) in &cgroup.dirs {
        let wanted = ctrl.is_none_or(|c| key.split(',').any(|k| k == c));
        let target = if wanted { dir.join(&rel) } else { dir.clone() };
        let procs = target.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string()).map_err(io_err("adding process to", &procs))?;
    }
    Ok(())
}
