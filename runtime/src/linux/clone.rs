//! Process creation with namespace flags.

use nix::errno::Errno;
use nix::unistd::Pid;

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
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
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
