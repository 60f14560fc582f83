//! `exec`: start another process inside a running container, in all of its namespaces and
//! its cgroup, with the container's or the caller's process settings.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use super::{io_err, Error};
use crate::linux::namespaces::{self, Join};
use crate::linux::{clone, exec as child, proc};
use crate::state::{ContainerDir, Status};
use crate::sync::{channel_pair, Message, STEP_TIMEOUT};

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
    /// `--cgroup` arguments (`path`, or `controller[,controller]:path`, repeatable): the
    /// sub-cgroups of the container's to put the process in.
    pub sub_cgroups: Vec<String>,
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
            return Err(Error::CannotExec {
                id: opts.id.clone(),
                status,
                hint: if status == Status::Paused {
                    " (use --ignore-paused to override)"
                } else {
                    ""
                },
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
        return Err(Error::NotRunning {
            id: opts.id.clone(),
        });
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
    // Rootless, only the child can join them, from inside the user namespace (joining needs
    // CAP_SYS_ADMIN over the namespace's owner and in our own), and then forks once more.
    // SAFETY: geteuid cannot fail and touches no memory.
    let rootless = in_userns && unsafe { libc::geteuid() } != 0;
    let (parent_joins, mut child_joins): (Vec<Join>, Vec<Join>) =
        joins.into_iter().partition(|j| {
            !rootless && matches!(j.kind, LinuxNamespaceType::Pid | LinuxNamespaceType::Time)
        });
    let refork = rootless
        && child_joins
            .iter()
            .any(|j| matches!(j.kind, LinuxNamespaceType::Pid | LinuxNamespaceType::Time));
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
        crate::logging::stage(
            "child process in init()",
            "joining the container's namespaces",
        );
        child::run(child::ExecArgs {
            process,
            joins: &child_joins,
            in_userns,
            refork,
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
    crate::logging::stage(
        "nsexec container setup",
        &format!("exec process forked as pid {pid}"),
    );
    let fail = |e: Error| {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        // Bounded: a child frozen with its container does not die until it thaws.
        for _ in 0..1000 {
            match waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                Ok(nix::sys::wait::WaitStatus::StillAlive) => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                _ => break,
            }
        }
        // The child sets itself up while we place it in the cgroup and may have failed
        // first: its own message (queued before it exited) says why better than ours.
        match parent_end.recv() {
            Ok(Some(Message::Error(message))) => Error::Init { message },
            _ => e,
        }
    };
    let pid = if refork {
        let forked =
            parent_end.recv_bounded("the exec'd process's pid", Some(STEP_TIMEOUT), &|| None);
        let _ = waitpid(pid, None);
        match forked {
            Ok(Some(Message::Forked(p))) => Pid::from_raw(p),
            Ok(Some(Message::Error(message))) => return Err(Error::Init { message }),
            Ok(other) => {
                return Err(Error::Init {
                    message: format!("exec: no process forked ({other:?})"),
                })
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        pid
    };
    let placed = if opts.sub_cgroups.is_empty() {
        state.cgroup.add_pid(pid.as_raw()).map_err(Error::from)
    } else {
        add_to_sub_cgroups(&state.cgroup, pid.as_raw(), &opts.sub_cgroups)
    };
    placed.map_err(fail)?;
    parent_end
        .send(&Message::Continue)
        .map_err(|e| fail(e.into()))?;
    // The child's end is close-on-exec: end-of-file means execve succeeded. A container
    // frozen meanwhile would hold the child forever: an error, unless the caller asked to
    // wait for a paused container (--ignore-paused).
    let ignore_paused = opts.ignore_paused;
    let stuck = || {
        (!ignore_paused && state.cgroup.is_frozen())
            .then(|| "container's cgroup unexpectedly frozen".to_string())
    };
    let answer = parent_end.recv_bounded("the exec'd process to start", Some(STEP_TIMEOUT), &stuck);
    match answer.map_err(|e| fail(e.into()))? {
        None => {}
        Some(Message::Error(message)) => return Err(fail(Error::Init { message })),
        Some(other) => {
            return Err(fail(Error::Init {
                message: format!("unexpected message {other:?}"),
            }))
        }
    }
    if let Some(path) = &opts.pid_file {
        // Nobody could find the process without its pid file: take it down and reap it (an
        // orphan would stay a zombie in the container's pid namespace until its reaper acts).
        super::create::write_pid_file(path, pid.as_raw()).map_err(fail)?;
    }
    Ok(pid)
}

/// `exec --cgroup`, as runc: one `path` for every hierarchy, or `controller[,...]:path` per
/// controller (repeatable); each must stay inside the container's cgroup and exist.
fn add_to_sub_cgroups(
    cgroup: &crate::cgroups::CgroupPaths,
    pid: i32,
    args: &[String],
) -> Result<(), Error> {
    let subs = parse_sub_cgroups(args)?;
    for ctrl in subs.keys().filter(|c| !c.is_empty()) {
        if !cgroup.dirs.keys().any(|k| k.split(',').any(|c| c == ctrl)) {
            return Err(Error::SubCgroup {
                reason: format!("unknown controller {ctrl}"),
            });
        }
    }
    for (key, dir) in &cgroup.dirs {
        let sub = subs
            .get("")
            .or_else(|| key.split(',').find_map(|c| subs.get(c)));
        let target = match sub {
            Some(rel) => dir.join(rel),
            None => dir.clone(),
        };
        let procs = target.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string()).map_err(|e| Error::SubCgroup {
            reason: format!(
                "adding pid {pid} to {}: {}",
                procs.display(),
                nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))
                    .desc()
                    .to_lowercase()
            ),
        })?;
    }
    Ok(())
}

/// The `--cgroup` arguments as controller → path below the container's cgroup ("" for all
/// controllers), each path cleaned like Go's path.Join; one that climbs out is refused.
fn parse_sub_cgroups(args: &[String]) -> Result<BTreeMap<String, PathBuf>, Error> {
    let bad = |reason: String| Error::SubCgroup { reason };
    let mut out = BTreeMap::new();
    for arg in args {
        let (ctrls, path) = match arg.split_once(':') {
            Some((_, p)) if p.contains(':') => {
                return Err(bad(format!("invalid --cgroup argument: {arg}")))
            }
            Some((c, p)) => (Some(c), p),
            None if args.len() != 1 => {
                return Err(bad(format!(
                    "invalid --cgroup argument: {arg} (missing <controller>: prefix)"
                )))
            }
            None => (None, arg.as_str()),
        };
        let mut clean = PathBuf::new();
        for c in Path::new(path).components() {
            match c {
                Component::Normal(n) => clean.push(n),
                Component::ParentDir if clean.pop() => {}
                Component::ParentDir => {
                    return Err(bad(format!("{path} is not a sub cgroup path")))
                }
                _ => {}
            }
        }
        match ctrls {
            None => {
                out.insert(String::new(), clean);
            }
            Some(list) => {
                for ctrl in list.split(',') {
                    out.insert(ctrl.to_string(), clean.clone());
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<BTreeMap<String, PathBuf>, Error> {
        parse_sub_cgroups(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn sub_cgroups_are_per_controller_and_cleaned() {
        let m = parse(&["memory:submem", "cpu,cpuacct:a/../subcpu"]).expect("valid");
        assert_eq!(m["memory"], PathBuf::from("submem"));
        assert_eq!(m["cpu"], PathBuf::from("subcpu"));
        assert_eq!(m["cpuacct"], PathBuf::from("subcpu"));
        assert_eq!(parse(&["/"]).expect("valid")[""], PathBuf::new());
    }

    #[test]
    fn a_sub_cgroup_cannot_climb_out() {
        let err = parse(&[".."]).unwrap_err().to_string();
        assert!(err.ends_with(" .. is not a sub cgroup path"), "{err}");
        let err = parse(&["a", "b"]).unwrap_err().to_string();
        assert!(err.contains("missing <controller>: prefix"), "{err}");
    }
}
