//! Docker's default seccomp profile, written out as data.
//!
//! The shape follows moby's profiles/seccomp/default.json: deny (EPERM) by default, allow a
//! long list of ordinary syscalls, allow the privileged ones only to containers holding the
//! capability that the kernel would check anyway, and let `clone` create no namespaces without
//! CAP_SYS_ADMIN. Syscall names unknown on an architecture are skipped by the runtime.

use std::path::Path;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator as Op,
};

use super::profile::{ArchMap, Filter, Profile, SyscallRule};
use super::SeccompError;

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
const AF_VSOCK: u64 = 40;

/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
/// CLONE_NEWNET (sched.h): the namespace-creating clone flags.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// Syscalls every container may make.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Syscalls allowed only to holders of a capability (the kernel checks the same capability,
/// so these only shrink the attack surface of containers that could not use them anyway).
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// Architecture-specific syscalls, by docker's short architecture names.
const BY_ARCH: &[(&[&str], &[&str])] = &[
    (&["amd64", "x32"], &["arch_prctl"]),
    (&["amd64", "x32", "x86"], &["modify_ldt"]),
    (
        &["arm", "arm64"],
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    ),
];

/// personality(2) personas a program may switch to: PER_LINUX, UNAME26, PER_LINUX32,
/// UNAME26|PER_LINUX32, and 0xffffffff (a query of the current persona).
const PERSONALITIES: &[u64] = &[0x0, 0x0008, 0x20000, 0x20008, 0xffff_ffff];

fn rule(names: &[&str], action: Act) -> SyscallRule {
    SyscallRule {
        names: names.iter().map(|s| s.to_string()).collect(),
        action,
        ..Default::default()
    }
}

fn arg(index: usize, value: u64, value_two: u64, op: Op) -> LinuxSeccompArg {
    // The builder cannot fail: every field has a value.
    LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .value_two(value_two)
        .op(op)
        .build()
        .unwrap_or_default()
}

/// Docker's default profile in the docker format (conditions not yet evaluated).
pub fn docker_default() -> Profile {
    let mut syscalls = vec![rule(ALLOWED, Act::ScmpActAllow)];
    // Reading and writing other processes' memory became safe without CAP_SYS_PTRACE in 4.8,
    // when seccomp started running after ptrace hooks.
    let mut ptrace = rule(
        &["process_vm_readv", "process_vm_writev", "ptrace"],
        Act::ScmpActAllow,
    );
    ptrace.includes.min_kernel = Some("4.8".to_string());
    syscalls.push(ptrace);
    // Any socket but AF_VSOCK (40), whose sockets reach the hypervisor host, not the container's
    // network namespace.
    let mut socket = rule(&["socket"], Act::ScmpActAllow);
    socket.args = vec![arg(0, AF_VSOCK, 0, Op::ScmpCmpNe)];
    syscalls.push(socket);
    for &persona in PERSONALITIES {
        let mut r = rule(&["personality"], Act::ScmpActAllow);
        r.args = vec![arg(0, persona, 0, Op::ScmpCmpEq)];
        syscalls.push(r);
    }
    for (arches, names) in BY_ARCH {
        let mut r = rule(names, Act::ScmpActAllow);
        r.includes.arches = arches.iter().map(|s| s.to_string()).collect();
        syscalls.push(r);
    }
    for (cap, names) in BY_CAPABILITY {
        let mut r = rule(names, Act::ScmpActAllow);
        r.includes.caps = vec![cap.to_string()];
        syscalls.push(r);
    }
    // Without CAP_SYS_ADMIN, clone may not create namespaces: allow it only when
    // (flags & CLONE_NAMESPACE_FLAGS) == 0. s390 passes the flags second.
    let mut clone = rule(&["clone"], Act::ScmpActAllow);
    clone.args = vec![arg(0, CLONE_NAMESPACE_FLAGS, 0, Op::ScmpCmpMaskedEq)];
    clone.excludes = Filter {
        caps: vec!["CAP_SYS_ADMIN".to_string()],
        arches: vec!["s390".to_string(), "s390x".to_string()],
        min_kernel: None,
    };
    syscalls.push(clone);
    let mut clone_s390 = rule(&["clone"], Act::ScmpActAllow);
    clone_s390.args = vec![arg(1, CLONE_NAMESPACE_FLAGS, 0, Op::ScmpCmpMaskedEq)];
    clone_s390.includes.arches = vec!["s390".to_string(), "s390x".to_string()];
    clone_s390.excludes.caps = vec!["CAP_SYS_ADMIN".to_string()];
    syscalls.push(clone_s390);
    // clone3 passes its flags in memory, which seccomp cannot inspect: answer ENOSYS so libc
    // falls back to clone, whose flags the rule above checks.
    let mut clone3 = rule(&["clone3"], Act::ScmpActErrno);
    clone3.errno_ret = Some(ENOSYS);
    clone3.excludes.caps = vec!["CAP_SYS_ADMIN".to_string()];
    syscalls.push(clone3);

    Profile {
        default_action: Act::ScmpActErrno,
        default_errno_ret: Some(EPERM),
        architectures: Vec::new(),
        arch_map: vec![
            ArchMap {
                architecture: Arch::ScmpArchX86_64,
                sub_architectures: vec![Arch::ScmpArchX86, Arch::ScmpArchX32],
            },
            ArchMap {
                architecture: Arch::ScmpArchAarch64,
                sub_architectures: vec![Arch::ScmpArchArm],
            },
        ],
        flags: Vec::new(),
        syscalls,
    }
}

/// Docker's default filter for a container holding `caps` (names without the CAP_ prefix).
pub fn default_profile(caps: &[String]) -> Result<LinuxSeccomp, SeccompError> {
    docker_default().to_oci(Path::new("<builtin default profile>"), caps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxSyscall;

    fn rules_for<'a>(s: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        s.syscalls()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    fn default_caps() -> Vec<String> {
        crate::specgen::caps::DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn denies_with_eperm_and_allows_ordinary_calls() {
        let s = default_profile(&default_caps()).unwrap();
        assert_eq!(s.default_action(), Act::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(EPERM));
        for name in ["read", "openat", "execve", "socket", "chown", "setuid"] {
            assert!(!rules_for(&s, name).is_empty(), "{name}");
        }
        for name in [
            "mount",
            "reboot",
            "init_module",
            "kexec_load",
            "bpf",
            "chroot_nope",
        ] {
            assert!(rules_for(&s, name).is_empty(), "{name}");
        }
        let socket = rules_for(&s, "socket");
        let args = socket[0].args().clone().unwrap();
        assert_eq!((args[0].value(), args[0].op()), (AF_VSOCK, Op::ScmpCmpNe));
        // CAP_SYS_CHROOT is a default capability, so chroot is allowed.
        assert!(!rules_for(&s, "chroot").is_empty());
    }

    #[test]
    fn clone_cannot_create_namespaces_without_sys_admin() {
        let s = default_profile(&default_caps()).unwrap();
        let clone = rules_for(&s, "clone");
        assert_eq!(clone.len(), 1, "{clone:?}");
        let args = clone[0].args().clone().unwrap();
        assert_eq!(args[0].value(), CLONE_NAMESPACE_FLAGS);
        assert_eq!(args[0].op(), Op::ScmpCmpMaskedEq);
        let clone3 = rules_for(&s, "clone3");
        assert_eq!(clone3[0].action(), Act::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(ENOSYS));
    }

    #[test]
    fn sys_admin_unlocks_mount_and_unrestricted_clone() {
        let mut caps = default_caps();
        caps.push("SYS_ADMIN".to_string());
        let s = default_profile(&caps).unwrap();
        assert!(!rules_for(&s, "mount").is_empty());
        let clone = rules_for(&s, "clone");
        assert_eq!(clone.len(), 1);
        assert!(clone[0].args().is_none());
        assert_eq!(rules_for(&s, "clone3")[0].action(), Act::ScmpActAllow);
    }

    #[test]
    fn personality_is_limited_to_known_personas() {
        let s = default_profile(&default_caps()).unwrap();
        let p = rules_for(&s, "personality");
        assert_eq!(p.len(), PERSONALITIES.len());
        assert!(p
            .iter()
            .all(|r| r.args().as_ref().is_some_and(|a| a.len() == 1)));
    }

    #[test]
    fn architectures_are_the_native_family() {
        let s = default_profile(&[]).unwrap();
        let arches = s.architectures().clone().unwrap();
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                arches,
                vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
            );
            assert!(!rules_for(&s, "arch_prctl").is_empty());
            assert!(rules_for(&s, "set_tls").is_empty());
        } else if cfg!(target_arch = "aarch64") {
            assert_eq!(arches, vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]);
        }
    }
}
