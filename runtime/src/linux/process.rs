//! The container process's own attributes: credentials, capabilities, rlimits, fds and the
//! final execve.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use caps::{CapSet, Capability as Cap, CapsHashSet};
use nix::errno::Errno;
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{LinuxCapabilities, PosixRlimitType, Process};

use super::security::CapHop;
use super::{sys, SetupError};

/// Writes a /proc file, refusing anything that is not procfs.
pub fn write_proc(path: &str, value: &str) -> Result<(), SetupError> {
    let io = |source| SetupError::Io {
        action: "writing",
        path: PathBuf::from(path),
        source,
    };
    let mut f = OpenOptions::new().write(true).open(path).map_err(io)?;
    if !super::proc::is_procfs(&f) {
        return Err(SetupError::NotProcfs { path: path.into() });
    }
    f.write_all(value.as_bytes()).map_err(io)
}

fn rlimit_resource(t: PosixRlimitType) -> Resource {
    match t {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

pub fn set_rlimits(process: &Process) -> Result<(), SetupError> {
    for r in process.rlimits().iter().flatten() {
        setrlimit(rlimit_resource(r.typ()), r.soft(), r.hard()).map_err(sys(
            "setrlimit",
            format!("{} soft={} hard={}", r.typ(), r.soft(), r.hard()),
        ))?;
    }
    Ok(())
}

pub fn set_oom_score_adj(process: &Process) -> Result<(), SetupError> {
    match process.oom_score_adj() {
        Some(adj) => write_proc("/proc/self/oom_score_adj", &adj.to_string()),
        None => Ok(()),
    }
}

/// Converts the spec's capability names to the caps crate's.
fn cap_set(
    list: Option<&HashSet<oci_spec::runtime::Capability>>,
) -> Result<CapsHashSet, SetupError> {
    let mut out = CapsHashSet::new();
    for c in list.into_iter().flatten() {
        let name = format!("CAP_{c}");
        match Cap::from_str(&name) {
            Ok(cap) => {
                out.insert(cap);
            }
            Err(e) => {
                return Err(SetupError::Capability {
                    name,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(out)
}

fn caps_err(what: &'static str) -> impl FnOnce(caps::errors::CapsError) -> SetupError {
    move |e| SetupError::Capability {
        name: what.to_string(),
        reason: e.to_string(),
    }
}

/// The parsed capability sets, computed before the credentials change.
pub struct CapSets {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

impl CapSets {
    pub fn from_spec(caps: Option<&LinuxCapabilities>) -> Result<CapSets, SetupError> {
        Ok(CapSets {
            bounding: cap_set(caps.and_then(|c| c.bounding().as_ref()))?,
            effective: cap_set(caps.and_then(|c| c.effective().as_ref()))?,
            permitted: cap_set(caps.and_then(|c| c.permitted().as_ref()))?,
            inheritable: cap_set(caps.and_then(|c| c.inheritable().as_ref()))?,
            ambient: cap_set(caps.and_then(|c| c.ambient().as_ref()))?,
        })
    }

    /// Drops everything outside the bounding set (needs CAP_SETPCAP, so it comes first).
    pub fn apply_bounding(&self) -> Result<(), SetupError> {
        for cap in caps::all() {
            if !self.bounding.contains(&cap)
                && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false)
            {
                caps::drop(None, CapSet::Bounding, cap).map_err(caps_err("bounding"))?;
            }
        }
        Ok(())
    }

    /// Sets the other four sets, after the uid change (which kept the permitted set thanks to
    /// PR_SET_KEEPCAPS). Order matters: inheritable while permitted is still full, then
    /// effective (must stay a subset of permitted), then permitted, then ambient (each ambient
    /// capability must be permitted and inheritable). With a `hop`, the capabilities it
    /// carries across the trampoline's execve are made inheritable and ambient too; the
    /// trampoline puts the sets back before the program's execve.
    pub fn apply(&self, hop: Option<&CapHop>) -> Result<(), SetupError> {
        let carried: CapsHashSet = match hop {
            Some(h) => caps::all()
                .into_iter()
                .filter(|c| h.ambient_lower & (1u64 << c.index()) != 0)
                .collect(),
            None => CapsHashSet::new(),
        };
        let inheritable: CapsHashSet = self.inheritable.union(&carried).copied().collect();
        caps::set(None, CapSet::Inheritable, &inheritable).map_err(caps_err("inheritable"))?;
        caps::set(None, CapSet::Effective, &self.effective).map_err(caps_err("effective"))?;
        caps::set(None, CapSet::Permitted, &self.permitted).map_err(caps_err("permitted"))?;
        caps::clear(None, CapSet::Ambient).map_err(caps_err("ambient"))?;
        for cap in self.effective_ambient().union(&carried) {
            caps::raise(None, CapSet::Ambient, *cap).map_err(caps_err("ambient"))?;
        }
        Ok(())
    }

    /// The ambient capabilities the kernel allows: those also permitted and inheritable. Like
    /// runc, the others are skipped rather than refused (runc's own default spec lists
    /// ambient capabilities without inheritable ones).
    fn effective_ambient(&self) -> CapsHashSet {
        self.ambient
            .iter()
            .filter(|c| self.permitted.contains(c) && self.inheritable.contains(c))
            .copied()
            .collect()
    }

    /// What the exec trampoline (security::ExecGuard) must restore for the program's execve
    /// to run with the credentials it would have without it; `None` when its own execve
    /// changes nothing that matters. `uid` is the process's user in its user namespace.
    ///
    /// - Non-root: an execve keeps only the ambient capabilities, so effective ones that are
    ///   not ambient (CAP_DAC_OVERRIDE to run a file without the exec bit for the user) would
    ///   be gone at the program's execve: they cross in the ambient set and are lowered again.
    /// - Root: an execve makes the effective set the whole permitted set, inheritable plus
    ///   bounding; the trampoline narrows it back to the configured effective set.
    pub fn trampoline_hop(&self, uid: u32) -> Option<CapHop> {
        let mask = |set: &CapsHashSet| set.iter().fold(0u64, |m, c| m | (1u64 << c.index()));
        let effective = mask(&self.effective);
        let inheritable = mask(&self.inheritable);
        if uid != 0 {
            let ambient = mask(&self.effective_ambient());
            let carried = effective & !ambient;
            return (carried != 0).then_some(CapHop {
                effective,
                permitted: ambient | carried,
                inheritable,
                ambient_lower: carried,
            });
        }
        let after_exec = inheritable | mask(&self.bounding);
        (effective != after_exec).then_some(CapHop {
            effective: effective & after_exec,
            permitted: after_exec,
            inheritable,
            ambient_lower: 0,
        })
    }
}

/// Switches to the configured user, keeping the permitted capabilities across the change.
/// The supplementary groups are exactly `additionalGids`, as with runc (see user.rs).
pub fn switch_user(process: &Process, in_new_userns: bool) -> Result<(), SetupError> {
    let user = process.user();
    let uid = Uid::from_raw(user.uid());
    let gid = Gid::from_raw(user.gid());
    nix::sys::prctl::set_keepcaps(true).map_err(sys("prctl", "PR_SET_KEEPCAPS"))?;
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // setgroups(2) is refused in a user namespace whose setgroups file says "deny" (since
    // Linux 3.19): there is nothing to do about the groups then, and runc skips them too.
    let denied = in_new_userns
        && std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    if !denied {
        setgroups(&groups).map_err(sys("setgroups", format!("{groups:?}")))?;
    }
    setresgid(gid, gid, gid).map_err(sys("setresgid", gid))?;
    setresuid(uid, uid, uid).map_err(sys("setresuid", uid))?;
    nix::sys::prctl::set_keepcaps(false).map_err(sys("prctl", "PR_SET_KEEPCAPS"))?;
    Ok(())
}

/// The user's program and identity, resolved while the init is still privileged, then
/// applied: the sequence shared by a container's init and by `exec`.
pub struct Launch {
    exe: PathBuf,
    args: Vec<String>,
    env: Vec<String>,
    /// The cwd could not be entered as root: enter it as the user.
    cwd_as_user: bool,
    caps: CapSets,
    /// What the trampoline restores after its own execve (see CapSets::trampoline_hop).
    hop: Option<CapHop>,
    /// The final execve goes through a sealed trampoline (CVE-2019-5736, see security.rs).
    guard: super::security::ExecGuard,
}

impl Launch {
    /// Enters the working directory and finds the program (as root, before the uid changes,
    /// so a missing binary or cwd fails before the container is reported ready).
    pub fn resolve(process: &Process) -> Result<Launch, SetupError> {
        let cwd = process.cwd();
        // As root first: a cwd only the runtime may enter works (runc does the same). One the
        // runtime may not enter (a volume owned by the container user, root squashed) is
        // entered again as the user, in drop_privileges.
        let cwd_as_user = match enter_cwd(cwd) {
            Ok(()) => false,
            Err(SetupError::Syscall {
                source: Errno::EACCES | Errno::EPERM,
                ..
            }) => true,
            Err(e) => return Err(e),
        };
        let args = process.args().clone().unwrap_or_default();
        let user = super::user::lookup(process.user().uid());
        let env = super::user::with_home(process.env().clone().unwrap_or_default(), &user);
        let arg0 = args.first().cloned().unwrap_or_default();
        let exe = find_executable(&arg0, &env, cwd)?;
        let caps = CapSets::from_spec(process.capabilities().as_ref())?;
        let hop = caps.trampoline_hop(process.user().uid());
        let guard = super::security::ExecGuard::prepare(hop)?;
        Ok(Launch {
            exe,
            args,
            env,
            cwd_as_user,
            caps,
            hop,
            guard,
        })
    }

    /// Becomes the configured user with exactly the configured capabilities.
    pub fn drop_privileges(
        &self,
        process: &Process,
        in_new_userns: bool,
    ) -> Result<(), SetupError> {
        let user = process.user();
        chown_stdio(user.uid())?;
        self.caps.apply_bounding()?;
        switch_user(process, in_new_userns)?;
        if self.cwd_as_user {
            enter_cwd(process.cwd())?;
        }
        self.caps.apply(self.hop.as_ref())?;
        if process.no_new_privileges().unwrap_or(false) {
            nix::sys::prctl::set_no_new_privs().map_err(sys("prctl", "PR_SET_NO_NEW_PRIVS"))?;
        }
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
            user.umask().unwrap_or(0o022),
        ));
        Ok(())
    }

    /// Sheds what the runtime inherited and replaces this process with the program.
    /// Only returns on failure.
    pub fn exec(&self, preserve_fds: u32) -> SetupError {
        self.exec_with(preserve_fds, || Ok(()))
    }

    /// Like `exec`, with `last` run right before the execve (LSM exec labels; for `exec`,
    /// the seccomp filter with noNewPrivileges: as late as possible).
    pub fn exec_with(
        &self,
        preserve_fds: u32,
        last: impl FnOnce() -> Result<(), SetupError>,
    ) -> SetupError {
        if let Err(e) = reset_inherited(preserve_fds) {
            return e;
        }
        self.exec_prepared(last)
    }

    /// Like `exec_with` for a caller that already called [`reset_inherited`] (before a
    /// seccomp filter that might refuse what it does).
    pub fn exec_prepared(&self, last: impl FnOnce() -> Result<(), SetupError>) -> SetupError {
        if let Err(e) = last() {
            return e;
        }
        self.guard.exec(&self.exe, &self.args, &self.env).into()
    }
}

/// chdir(2) into the process's cwd, refusing one outside the container's root. A cwd like
/// `/proc/self/fd/N` follows a descriptor: one the runtime or its caller still holds can
/// point at a host directory (CVE-2024-21626). getcwd(2) then cannot express the path from
/// our root and fails with ENOENT ("(unreachable)" prefix, see getcwd(3)).
fn enter_cwd(cwd: &Path) -> Result<(), SetupError> {
    nix::unistd::chdir(cwd).map_err(sys("chdir", cwd.display()))?;
    match nix::unistd::getcwd() {
        Ok(_) => Ok(()),
        Err(Errno::ENOENT) => Err(SetupError::Exec {
            arg0: String::new(),
            reason: format!(
                "process.cwd {}: the working directory is outside the container's root",
                cwd.display()
            ),
        }),
        Err(e) => Err(sys("getcwd", cwd.display())(e)),
    }
}

/// A non-root container user must be able to use its stdio (reopen /dev/stdout, own its
/// terminal): hand the descriptors to it as runc does. Only the owner changes: the group is
/// the one the file has (a pty's is devpts' gid=, the tty group). Descriptors that already
/// belong to the user or are the container's /dev/null are left alone, and so are those we
/// may not change (an unmapped group in a user namespace: EINVAL; an owner outside it:
/// EPERM; a read-only /dev: EROFS).
fn chown_stdio(uid: u32) -> Result<(), SetupError> {
    let null_rdev = nix::sys::stat::stat("/dev/null")
        .map(|st| st.st_rdev)
        .unwrap_or_else(|_| nix::sys::stat::makedev(1, 3));
    for fd in 0..3 {
        // SAFETY: stdio descriptors stay open for the life of the process; borrowed briefly.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let Ok(st) = nix::sys::stat::fstat(fd) else {
            continue;
        };
        if st.st_uid == uid || st.st_rdev == null_rdev {
            continue;
        }
        match nix::unistd::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(st.st_gid))) {
            Ok(()) | Err(Errno::EINVAL | Errno::EPERM | Errno::EROFS) => {}
            Err(e) => return Err(sys("fchown", format!("stdio fd to uid {uid}"))(e)),
        }
    }
    Ok(())
}

/// Resolves args[0] like execvp(3), using the container's PATH, so a missing binary fails at
/// create time with a clear message instead of after start.
pub fn find_executable(arg0: &str, env: &[String], cwd: &Path) -> Result<PathBuf, SetupError> {
    let exec_err = |reason: &str| SetupError::Exec {
        arg0: arg0.to_string(),
        reason: reason.to_string(),
    };
    let check = |p: &Path| -> Result<(), &'static str> {
        let meta = std::fs::metadata(p).map_err(|_| "no such file or directory")?;
        if meta.is_dir() {
            return Err("is a directory");
        }
        if meta.permissions().mode() & 0o111 == 0 {
            return Err("permission denied");
        }
        Ok(())
    };
    if arg0.contains('/') {
        let p = cwd.join(arg0);
        return check(&p).map(|_| PathBuf::from(arg0)).map_err(exec_err);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let p = cwd.join(dir).join(arg0);
        if check(&p).is_ok() {
            return Ok(Path::new(dir).join(arg0));
        }
    }
    Err(exec_err("executable file not found in $PATH"))
}

/// Everything the init inherited from the runtime that must not reach the user process:
/// blocked signals, ignored signals (Rust ignores SIGPIPE; ignored dispositions survive
/// execve) and descriptors above 2 plus `preserve_fds`.
pub fn reset_inherited(preserve_fds: u32) -> Result<(), SetupError> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(sys("sigprocmask", "empty"))?;
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: restoring the default disposition installs no handler code.
        unsafe {
            let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl);
        }
    }
    cloexec_from(3 + preserve_fds)
}

/// Flags every descriptor from `first` up close-on-exec: what the runtime's caller left open
/// reaches neither hooks nor the container's program.
pub fn cloexec_from(first: u32) -> Result<(), SetupError> {
    // SAFETY: close_range only flags descriptors close-on-exec; no memory is touched.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret < 0 {
        return Err(sys("close_range", format!("{first}.."))(Errno::last()));
    }
    Ok(())
}

/// Replaces the init with the user's program. Only returns on failure.
pub fn exec(path: &Path, args: &[String], env: &[String]) -> SetupError {
    let to_c = |s: &str| CString::new(s).unwrap_or_default();
    let c_path = to_c(&path.to_string_lossy());
    let c_args: Vec<CString> = args.iter().map(|a| to_c(a)).collect();
    let c_env: Vec<CString> = env.iter().map(|e| to_c(e)).collect();
    match nix::unistd::execve(&c_path, &c_args, &c_env) {
        Err(e) => SetupError::Exec {
            arg0: args.first().cloned().unwrap_or_default(),
            reason: e.desc().to_lowercase(),
        },
        Ok(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_the_container_path() {
        let env = vec!["PATH=/usr/bin:/bin".to_string()];
        let p = find_executable("sh", &env, Path::new("/")).expect("sh is on this host");
        assert!(
            p == Path::new("/usr/bin/sh") || p == Path::new("/bin/sh"),
            "{p:?}"
        );
    }

    #[test]
    fn a_missing_program_is_named_in_the_error() {
        let err = find_executable("no-such-program-xyz", &[], Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("no-such-program-xyz"), "{err}");
        assert!(err.to_string().contains("not found"), "{err}");
    }

    fn sets(json: &str) -> CapSets {
        let caps: LinuxCapabilities = serde_json::from_str(json).expect("parses");
        CapSets::from_spec(Some(&caps)).expect("known")
    }

    #[test]
    fn a_non_root_user_carries_its_effective_capabilities_over_the_trampoline() {
        let c = sets(
            r#"{"bounding":["CAP_DAC_OVERRIDE","CAP_KILL"],"effective":["CAP_DAC_OVERRIDE","CAP_KILL"],
                "permitted":["CAP_DAC_OVERRIDE","CAP_KILL"],"inheritable":["CAP_KILL"],"ambient":["CAP_KILL"]}"#,
        );
        let dac = 1u64 << Cap::CAP_DAC_OVERRIDE.index();
        let kill = 1u64 << Cap::CAP_KILL.index();
        let hop = c
            .trampoline_hop(1000)
            .expect("DAC_OVERRIDE is effective, not ambient");
        assert_eq!(hop.effective, dac | kill);
        assert_eq!(hop.permitted, dac | kill);
        assert_eq!(hop.inheritable, kill);
        assert_eq!(hop.ambient_lower, dac);
    }

    #[test]
    fn no_hop_when_the_trampoline_changes_nothing() {
        let same = r#"{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]}"#;
        assert_eq!(sets(same).trampoline_hop(0), None);
        let none = r#"{"bounding":["CAP_KILL"],"effective":[],"permitted":[]}"#;
        assert_eq!(sets(none).trampoline_hop(1000), None);
    }

    #[test]
    fn root_gets_its_configured_effective_set_back() {
        let c = sets(
            r#"{"bounding":["CAP_DAC_OVERRIDE","CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]}"#,
        );
        let hop = c
            .trampoline_hop(0)
            .expect("execve would make DAC_OVERRIDE effective");
        assert_eq!(hop.effective, 1u64 << Cap::CAP_KILL.index());
        assert_eq!(hop.ambient_lower, 0);
    }

    #[test]
    fn spec_capability_names_map_to_kernel_capabilities() {
        let set: HashSet<oci_spec::runtime::Capability> =
            serde_json::from_str(r#"["CAP_NET_BIND_SERVICE","CAP_KILL"]"#).expect("parses");
        let caps = cap_set(Some(&set)).expect("known");
        assert!(caps.contains(&Cap::CAP_NET_BIND_SERVICE) && caps.contains(&Cap::CAP_KILL));
    }
}
