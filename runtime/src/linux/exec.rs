//! The child side of `exec`: a process that joins a running container's namespaces and
//! cgroup, takes on the process settings, and execs. Like the init, it runs the runtime's
//! own code after a fork (no re-exec).

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sched::setns;
use nix::unistd::setsid;
use oci_spec::runtime::{LinuxSeccomp, Process};
use pathrs::Root;

use super::namespaces::{flag, Join};
use super::process::{self, Launch};
use super::{seccomp, security, sys, tty, SetupError};
use crate::sync::{Channel, Message};

pub struct ExecArgs<'a> {
    pub process: &'a Process,
    /// Namespaces to join, in order (user first, mount last).
    pub joins: &'a [Join],
    pub in_userns: bool,
    /// The joins include pid (or time) namespaces, which only a child of the joiner enters:
    /// fork once more after them (rootless: only the user namespace's owner, from inside it,
    /// may join the others, so the parent could not join them for us).
    pub refork: bool,
    pub channel: Channel,
    pub console: Option<&'a OwnedFd>,
    pub preserve_fds: u32,
    /// The container's seccomp profile: an exec'd process is filtered like the init.
    pub seccomp: Option<&'a LinuxSeccomp>,
    /// The container's state JSON, for a seccomp agent (listenerPath).
    pub state: &'a [u8],
}

/// Never returns: execs the program, or reports the error to the parent and exits.
pub fn run(args: ExecArgs) -> ! {
    let err = match setup_and_exec(&args) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let msg = super::init::error_chain(&err);
    if args.channel.send(&Message::Error(msg.clone())).is_err() {
        let _ = writeln!(std::io::stderr(), "berth-runtime exec: {msg}");
    }
    // SAFETY: _exit skips the parent's atexit handlers and destructors, which belong to the
    // parent's copy of this memory.
    unsafe { libc::_exit(1) }
}

enum Never {}

fn setup_and_exec(a: &ExecArgs) -> Result<Never, SetupError> {
    // Until it is placed in the container's cgroup, this process dies with the `exec` that
    // forked it (see init.rs); it clears that right before execve.
    super::init::die_with_parent(&a.channel);
    // Until execve this process runs the runtime binary inside the container: keep the
    // container's processes from opening /proc/<pid>/exe or ptracing it (CVE-2019-5736).
    nix::sys::prctl::set_dumpable(false).map_err(sys("prctl", "PR_SET_DUMPABLE"))?;
    let process = a.process;
    // Host paths first, before the mount namespace changes what they name: the LSM exec
    // label files (CVE-2019-16884) and a seccomp agent's socket.
    let labels = security::ExecLabel::open(process)?;
    let filters = a.seccomp.map(seccomp::compile).transpose()?;
    let agent = filters
        .as_ref()
        .and_then(|f| f.listener_path())
        .map(seccomp::connect_listener)
        .transpose()?;
    for j in a.joins {
        setns(j.file.as_fd(), flag(j.kind)).map_err(sys("setns", j.path.display()))?;
    }
    if a.refork {
        // CLONE_PARENT: the process is our parent's child, which waits for it as usual.
        let flags = libc::CLONE_PARENT as u64;
        match super::clone::fork_with_namespaces(flags).map_err(sys("clone3", "CLONE_PARENT"))? {
            Some(pid) => {
                let _ = a.channel.send(&Message::Forked(pid.as_raw()));
                // SAFETY: ends this intermediate copy without the parent's destructors.
                unsafe { libc::_exit(0) }
            }
            None => {
                // The death signal and dumpable flag are not inherited across fork.
                super::init::die_with_parent(&a.channel);
                nix::sys::prctl::set_dumpable(false).map_err(sys("prctl", "PR_SET_DUMPABLE"))?;
            }
        }
    }
    setsid().map_err(sys("setsid", ""))?;
    if process.terminal().unwrap_or(false) {
        let Some(console) = a.console else {
            return Err(SetupError::Exec {
                arg0: String::new(),
                reason: "--tty needs --console-socket".into(),
            });
        };
        // Joining the mount namespace made its root ours: "/" is the container's root.
        let root = Root::open("/").map_err(|source| SetupError::InRoot {
            path: "/".into(),
            source,
        })?;
        let pty = tty::create_for(&root, process, console.as_raw_fd())?;
        tty::make_controlling(&pty.slave)?;
    }
    process::set_rlimits(process)?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    let launch = Launch::resolve(process)?;
    // Everything above ran while the parent moved us into the container's cgroup, which can
    // wait for an RCU grace period (see init.rs); the filter and the program come after it.
    a.channel.expect(Message::Continue, "continue")?;
    let install = |f: &seccomp::Filters| -> Result<(), SetupError> {
        let listener = f.install()?;
        if let (Some(stream), Some(fd), Some(path)) = (&agent, &listener, f.listener_path()) {
            let pid = std::process::id() as i32;
            seccomp::send_listener_fd(stream, path, fd, pid, f.listener_metadata(), a.state)?;
        }
        Ok(())
    };
    // As in the init: without no_new_privs the filter needs CAP_SYS_ADMIN, which the drop
    // may take away, so it goes on first; with it, as late as possible.
    if let (Some(f), false) = (&filters, nnp) {
        install(f)?;
    }
    launch.drop_privileges(process, a.in_userns)?;
    Err(launch.exec_with(a.preserve_fds, || {
        for label in &labels {
            label.apply()?;
        }
        if let (Some(f), true) = (&filters, nnp) {
            install(f)?;
        }
        crate::logging::stage("setns_init: about to exec", "execve of the process");
        // SAFETY: prctl with integer arguments only: the program outlives `exec -d`.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0 as libc::c_ulong) };
        Ok(())
    }))
}
