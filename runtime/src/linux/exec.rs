//! The child side of `exec`: a process that joins a running container's namespaces and
//! cgroup, takes on the process settings, and execs. Like the init, it runs the runtime's
//! own code after a fork (no re-exec).

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sched::setns;
use nix::unistd::setsid;
use oci_spec::runtime::Process;
use pathrs::Root;

use super::namespaces::{flag, Join};
use super::process::{self, Launch};
use super::{sys, tty, SetupError};
use crate::sync::{Channel, Message};

pub struct ExecArgs<'a> {
    pub process: &'a Process,
    /// Namespaces to join, in order (user first, mount last).
    pub joins: &'a [Join],
    pub in_userns: bool,
    pub channel: Channel,
    pub console: Option<&'a OwnedFd>,
    pub preserve_fds: u32,
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
    // Until execve this process runs the runtime binary inside the container: keep the
    // container's processes from opening /proc/<pid>/exe or ptracing it (CVE-2019-5736).
    nix::sys::prctl::set_dumpable(false).map_err(sys("prctl", "PR_SET_DUMPABLE"))?;
    a.channel.expect(Message::Continue, "continue")?;
    for j in a.joins {
        setns(j.file.as_fd(), flag(j.kind)).map_err(sys("setns", j.path.display()))?;
    }
    setsid().map_err(sys("setsid", ""))?;
    let process = a.process;
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
    let launch = Launch::resolve(process)?;
    launch.drop_privileges(process, a.in_userns)?;
    Err(launch.exec(a.preserve_fds))
}
