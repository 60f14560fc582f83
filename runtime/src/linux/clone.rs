//! Process creation with namespace flags.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// clone3's CLONE_INTO_CGROUP (linux/sched.h, Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` from linux/sched.h (version 2, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Like fork(2), but the child starts in the new namespaces named by `flags` (CLONE_NEW*).
///
/// This uses clone3(2) without a stack, so the child continues on a copy-on-write copy of the
/// parent's stack exactly as with fork. Unlike a re-exec of the runtime binary (runc's design,
/// forced on it by Go's threads), the child keeps the parsed config in memory and goes straight
/// on to build the container. The caller must be single-threaded, as for fork.
/// Returns `None` in the child and the child's pid in the parent.
pub fn fork_with_namespaces(flags: u64) -> Result<Option<Pid>, Errno> {
    // With CLONE_PARENT the child inherits our own exit signal (clone3 refuses another).
    let parent = flags & libc::CLONE_PARENT as u64 != 0;
    let mut args = CloneArgs {
        flags,
        exit_signal: if parent { 0 } else { libc::SIGCHLD as u64 },
        ..Default::default()
    };
    // SAFETY: clone3 with a null stack behaves like fork: both processes return here with
    // their own copy of memory. `args` is a valid, initialised clone_args of the size passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => {
            let err = Errno::last();
            if err != Errno::ENOSYS || flags & libc::CLONE_NEWTIME as u64 != 0 {
                return Err(err);
            }
            // Kernels before 5.3 lack clone3; the legacy clone with a null stack also forks.
            // SAFETY: as above; legacy clone(flags|SIGCHLD, NULL, ...) has fork semantics.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_clone,
                    flags | libc::SIGCHLD as u64,
                    0usize,
                    0usize,
                    0usize,
                    0usize,
                )
            };
            match ret {
                -1 => Err(Errno::last()),
                0 => Ok(None),
                pid => Ok(Some(Pid::from_raw(pid as i32))),
            }
        }
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// Like [`fork_with_namespaces`], with the child born in the cgroup v2 directory `cgroup`
/// (clone3(2) CLONE_INTO_CGROUP): no migration afterwards, so no wait for the RCU grace
/// period a cgroup.procs write can cost (see init.rs). Fails with EINVAL, E2BIG or ENOSYS on
/// kernels before 5.7 and when `cgroup` is not a cgroup v2 directory; the caller then forks
/// and moves the child instead.
pub fn fork_into_cgroup(flags: u64, cgroup: BorrowedFd) -> Result<Option<Pid>, Errno> {
    let parent = flags & libc::CLONE_PARENT as u64 != 0;
    let mut args = CloneArgs {
        flags: flags | CLONE_INTO_CGROUP,
        exit_signal: if parent { 0 } else { libc::SIGCHLD as u64 },
        cgroup: cgroup.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: as in fork_with_namespaces: fork semantics with a null stack, a valid
    // clone_args of the size passed; `cgroup` is an open descriptor for the call's duration.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// Where [`fork_through_helper`] failed: the call and its error.
#[derive(Debug)]
pub struct HelperError {
    pub call: &'static str,
    pub errno: Errno,
}

/// The helper's report, sent through a pipe before it exits: a tag (0: cloned, 1: `prepare`
/// failed, 2: clone failed), the child's pid or the errno, and whether the child was born
/// in `cgroup`.
const REPORT_LEN: usize = 6;

/// Like [`fork_with_namespaces`] (into `cgroup` when given, as [`fork_into_cgroup`]), but the
/// child is cloned by a short-lived helper that first runs `prepare`, typically a setns into
/// a user namespace this process must not enter itself: root cannot leave a user namespace
/// again, yet a pid namespace created in the clone must belong to the user namespace the
/// child joins. The helper clones with CLONE_PARENT, so the child is this process's own child
/// (waited for as usual), and exits. Returns `(None, _)` in the child (in whose memory
/// `prepare` has run), `(Some(pid), born_in_cgroup)` here. Single-threaded callers only.
pub fn fork_through_helper(
    flags: u64,
    cgroup: Option<BorrowedFd>,
    prepare: impl FnOnce() -> Result<(), Errno>,
) -> Result<(Option<Pid>, bool), HelperError> {
    let fail = |call: &'static str| move |errno| HelperError { call, errno };
    let (report_rd, report_wr) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(fail("pipe2"))?;
    let Some(helper) = fork_with_namespaces(0).map_err(fail("fork"))? else {
        drop(report_rd);
        let flags = flags | libc::CLONE_PARENT as u64;
        let cloned = prepare().map_err(|e| (1u8, e)).and_then(|()| {
            match cgroup.map(|fd| fork_into_cgroup(flags, fd)) {
                Some(Ok(child)) => Ok((child, true)),
                Some(Err(Errno::EINVAL | Errno::E2BIG | Errno::ENOSYS)) | None => {
                    fork_with_namespaces(flags)
                        .map(|child| (child, false))
                        .map_err(|e| (2u8, e))
                }
                Some(Err(e)) => Err((2u8, e)),
            }
        });
        let mut report = [0u8; REPORT_LEN];
        match cloned {
            // The child: the report pipe closes as this returns.
            Ok((None, _)) => return Ok((None, false)),
            Ok((Some(pid), inside)) => {
                report[1..5].copy_from_slice(&pid.as_raw().to_le_bytes());
                report[5] = u8::from(inside);
            }
            Err((tag, e)) => {
                report[0] = tag;
                report[1..5].copy_from_slice(&(e as i32).to_le_bytes());
            }
        }
        let _ = nix::unistd::write(&report_wr, &report);
        // SAFETY: ends the helper without the parent's destructors, which belong to the
        // parent's copy of this memory.
        unsafe { libc::_exit(0) }
    };
    drop(report_wr);
    // Bounded: the helper only makes a setns and a clone before it exits.
    let status = waitpid(helper, None).map_err(fail("waitpid"))?;
    let mut report = [0u8; REPORT_LEN];
    // The helper has exited: its report is in the pipe, or it never wrote one.
    let n = nix::unistd::read(&report_rd, &mut report).unwrap_or(0);
    if n != REPORT_LEN || status != WaitStatus::Exited(helper, 0) {
        return Err(HelperError {
            call: "the helper cloning the init (it exited without a report)",
            errno: Errno::ECHILD,
        });
    }
    let value = i32::from_le_bytes([report[1], report[2], report[3], report[4]]);
    match report[0] {
        0 => Ok((Some(Pid::from_raw(value)), report[5] != 0)),
        1 => Err(HelperError {
            call: "setns (the helper joining the user namespace)",
            errno: Errno::from_raw(value),
        }),
        _ => Err(HelperError {
            call: "clone3 (in the joined user namespace)",
            errno: Errno::from_raw(value),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::path::PathBuf;

    /// A cgroup v2 directory of the host's (the hybrid host's /sys/fs/cgroup/unified, or
    /// /sys/fs/cgroup itself on v2), removed on drop.
    struct V2Dir(PathBuf);
    impl V2Dir {
        fn new() -> Option<V2Dir> {
            let name = format!("berth-clone-test-{}", std::process::id());
            ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.controllers").exists())
                .map(|root| root.join(name))
                .filter(|dir| std::fs::create_dir(dir).is_ok())
                .map(V2Dir)
        }
    }
    impl Drop for V2Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }

    #[test]
    fn a_child_cloned_into_a_cgroup_starts_there() {
        let Some(dir) = V2Dir::new() else {
            eprintln!("no writable cgroup v2 hierarchy here: skipped");
            return;
        };
        let fd = std::fs::File::open(&dir.0).expect("open cgroup dir");
        match fork_into_cgroup(0, fd.as_fd()) {
            Ok(Some(pid)) => {
                let status = nix::sys::wait::waitpid(pid, None).expect("wait");
                assert_eq!(
                    status,
                    nix::sys::wait::WaitStatus::Exited(pid, 0),
                    "the child was not in {}",
                    dir.0.display()
                );
            }
            Ok(None) => {
                // The test runner has other threads: only raw syscalls until _exit.
                let mut buf = [0u8; 4096];
                // SAFETY: open/read/_exit on a static path and a stack buffer.
                let n = unsafe {
                    let cg = libc::open(c"/proc/self/cgroup".as_ptr(), libc::O_RDONLY);
                    libc::read(cg, buf.as_mut_ptr().cast(), buf.len())
                };
                let text = &buf[..n.max(0) as usize];
                let name = dir
                    .0
                    .file_name()
                    .map(|n| n.as_encoded_bytes())
                    .unwrap_or(b"-");
                let found = text.windows(name.len()).any(|w| w == name);
                // SAFETY: ends the child without running the test harness's destructors.
                unsafe { libc::_exit(if found { 0 } else { 1 }) }
            }
            Err(e) => panic!("clone3(CLONE_INTO_CGROUP): {e}"),
        }
    }
}
