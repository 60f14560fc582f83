//! Process creation with namespace flags.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
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
    let mut args = CloneArgs {
        flags: flags | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
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
