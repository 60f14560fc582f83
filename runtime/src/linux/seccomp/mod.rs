//! seccomp(2) filters from `linux.seccomp`, compiled to BPF with seccompiler.
//!
//! seccompiler builds one filter with a single "match" and a single "mismatch" action, while
//! an OCI profile gives every syscall its own action. The kernel runs *every* installed filter
//! on each syscall and takes the most restrictive answer (seccomp(2), "Filter return values":
//! KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > USER_NOTIF > TRACE > LOG > ALLOW). So a profile
//! becomes a small stack of seccompiler filters in which ALLOW means "no opinion":
//!
//! - a *gate* (hand-written, seccompiler cannot express it) that kills syscalls of an ABI the
//!   profile does not list, the x32 ABI included (libseccomp's "bad arch" action);
//! - per architecture, a *default* filter: syscalls matching any rule → ALLOW, all others →
//!   `defaultAction` (skipped when that is ALLOW); syscalls numbered above every syscall the
//!   profile names get ENOSYS instead (runc's "-ENOSYS stub", see bpf.rs);
//! - per architecture and per distinct rule action (ERRNO(n), KILL, TRAP, TRACE(n), LOG,
//!   NOTIFY), a filter: matching syscalls → that action, others → ALLOW.
//!
//! Where two rules with different actions match one syscall, the more restrictive one wins
//! (libseccomp's behaviour too); two ERRNO rules with different errno values on the same
//! syscall and arguments give the value of the filter installed last.
//!
//! What seccompiler lacks and is written here: NOTIFY (a placeholder TRACE value patched into
//! SECCOMP_RET_USER_NOTIF), non-native architectures (its arch check is patched), the flags
//! (LOG, SPEC_ALLOW, TSYNC, WAIT_KILLABLE_RECV), the listener fd and syscall name lookup (the
//! `syscalls` crate's per-architecture tables).

use std::collections::BTreeMap;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::errno::Errno;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op, LinuxSyscall,
};
mod bpf;

use bpf::{gate, insert_enosys_stub};
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action")]
    NotifyDefault,
    #[error("linux.seccomp.syscalls[{index}] ({names}): {action} with an errnoRet")]
    ErrnoRetWithoutErrno {
        index: usize,
        names: String,
        action: String,
    },
    #[error("linux.seccomp.syscalls[{index}]: names is empty")]
    NoNames { index: usize },
    #[error("linux.seccomp.syscalls[{index}] ({names}): args[{arg}].index {value} is not 0-5")]
    ArgIndex {
        index: usize,
        names: String,
        arg: usize,
        value: usize,
    },
    #[error(
        "linux.seccomp.syscalls[{index}]: SCMP_ACT_NOTIFY cannot be used for the {name} syscall: \
         the runtime makes it under the filter before the agent has the notify fd"
    )]
    NotifyOnRuntimeSyscall { index: usize, name: String },
    #[error("linux.seccomp.listenerPath: SCMP_ACT_NOTIFY rules need a listenerPath")]
    NotifyWithoutListener,
    #[error("linux.seccomp.listenerPath: {path:?} is not an absolute path")]
    ListenerRelative { path: PathBuf },
    #[error("linux.seccomp: compiling the {arch} filter")]
    Compile {
        arch: &'static str,
        #[source]
        source: seccompiler::BackendError,
    },
    #[error("linux.seccomp: compiling the {arch} filter: unexpected seccompiler arch check")]
    Prologue { arch: &'static str },
    #[error("installing seccomp filter {index} of {count}")]
    Install {
        index: usize,
        count: usize,
        #[source]
        source: Errno,
    },
    #[error("seccomp agent at listenerPath {path}: {action}")]
    Listener {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
}

// Return values and flags of seccomp(2) (linux/seccomp.h).
const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
const FILTER_FLAG_TSYNC: libc::c_ulong = 1;
const FILTER_FLAG_LOG: libc::c_ulong = 2;
const FILTER_FLAG_SPEC_ALLOW: libc::c_ulong = 4;
const FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 8;
const FILTER_FLAG_WAIT_KILLABLE_RECV: libc::c_ulong = 32;
/// seccompiler has no NOTIFY action: the NOTIFY filter is built with TRACE(this value) and
/// its return instructions patched afterwards. The filter holds no other TRACE action.
const NOTIFY_PLACEHOLDER: u32 = 0x7ff0_0000 | 0xb3e7;

// AUDIT_ARCH_* (linux/audit.h): what `seccomp_data.arch` holds for each ABI.
pub(super) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// x32 syscalls arrive with AUDIT_ARCH_X86_64 and this bit set in the number (syscall(2)).
pub(super) const X32_SYSCALL_BIT: i64 = 0x4000_0000;

// Classic BPF opcodes (linux/bpf_common.h).
pub(super) const BPF_LD_W_ABS: u16 = 0x20;
pub(super) const BPF_JMP_JA: u16 = 0x05;
pub(super) const BPF_JEQ_K: u16 = 0x15;
pub(super) const BPF_JSET_K: u16 = 0x45;
pub(super) const BPF_RET_K: u16 = 0x06;

/// An ABI whose syscalls this host can run: its name in errors, audit value and table.
#[derive(Clone, Copy, PartialEq, Eq)]
// Each host constructs only its own family's variants.
#[allow(dead_code)]
pub(super) enum Abi {
    X86_64,
    X86,
    Aarch64,
    Arm,
}

impl Abi {
    fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "SCMP_ARCH_X86_64",
            Abi::X86 => "SCMP_ARCH_X86",
            Abi::Aarch64 => "SCMP_ARCH_AARCH64",
            Abi::Arm => "SCMP_ARCH_ARM",
        }
    }

    pub(super) fn audit(self) -> u32 {
        match self {
            Abi::X86_64 => AUDIT_ARCH_X86_64,
            Abi::X86 => AUDIT_ARCH_I386,
            Abi::Aarch64 => AUDIT_ARCH_AARCH64,
            Abi::Arm => AUDIT_ARCH_ARM,
        }
    }

    /// The syscall number of `name` on this ABI; None when this ABI has no such syscall
    /// (skipped like runc does, so a profile written for a newer kernel still loads).
    fn number(self, name: &str) -> Option<i64> {
        let id = match self {
            Abi::X86_64 => syscalls::x86_64::Sysno::from_str(name).ok()?.id(),
            Abi::X86 => syscalls::x86::Sysno::from_str(name).ok()?.id(),
            Abi::Aarch64 => syscalls::aarch64::Sysno::from_str(name).ok()?.id(),
            Abi::Arm => syscalls::arm::Sysno::from_str(name).ok()?.id(),
        };
        Some(i64::from(id))
    }
}

/// The native ABI and the compat ABIs this kernel may also run.
#[cfg(target_arch = "x86_64")]
const HOST_ABIS: (Abi, &[Abi]) = (Abi::X86_64, &[Abi::X86]);
#[cfg(target_arch = "aarch64")]
const HOST_ABIS: (Abi, &[Abi]) = (Abi::Aarch64, &[Abi::Arm]);

/// A compiled profile, ready to install.
#[derive(Debug)]
pub struct Filters {
    /// In installation order; `true` marks the one filter that gets the notify listener.
    programs: Vec<(BpfProgram, bool)>,
    flags: libc::c_ulong,
    listener_path: Option<PathBuf>,
    listener_metadata: String,
}

fn names_of(s: &LinuxSyscall) -> String {
    s.names().join(",")
}

/// The kernel action for an OCI action. errnoRet defaults to EPERM (runtime-spec).
fn action(act: Act, errno_ret: Option<u32>) -> SeccompAction {
    let errno = errno_ret.unwrap_or(libc::EPERM as u32);
    match act {
        Act::ScmpActAllow => SeccompAction::Allow,
        Act::ScmpActErrno => SeccompAction::Errno(errno),
        // libseccomp's SCMP_ACT_KILL is the thread variant.
        Act::ScmpActKill | Act::ScmpActKillThread => SeccompAction::KillThread,
        Act::ScmpActKillProcess => SeccompAction::KillProcess,
        Act::ScmpActTrap => SeccompAction::Trap,
        // As runc: the errnoRet of a TRACE rule is the value the tracer sees.
        Act::ScmpActTrace => SeccompAction::Trace(errno),
        Act::ScmpActLog => SeccompAction::Log,
        Act::ScmpActNotify => SeccompAction::Trace(NOTIFY_PLACEHOLDER),
    }
}

fn condition_op(op: Op, value_two: Option<u64>) -> (SeccompCmpOp, Option<u64>) {
    match op {
        Op::ScmpCmpNe => (SeccompCmpOp::Ne, None),
        Op::ScmpCmpLt => (SeccompCmpOp::Lt, None),
        Op::ScmpCmpLe => (SeccompCmpOp::Le, None),
        Op::ScmpCmpEq => (SeccompCmpOp::Eq, None),
        Op::ScmpCmpGe => (SeccompCmpOp::Ge, None),
        Op::ScmpCmpGt => (SeccompCmpOp::Gt, None),
        // (arg & value) == valueTwo: seccompiler takes the mask in the operator and compares
        // the masked argument with the condition's value.
        Op::ScmpCmpMaskedEq => (SeccompCmpOp::Eq, Some(value_two.unwrap_or(0))),
    }
}

/// The rules of one OCI entry: `None` matches the syscall whatever its arguments. Conditions
/// are ANDed, except that several conditions on the same argument become separate (ORed)
/// rules, as runc does (libseccomp cannot AND them).
fn entry_rules(index: usize, s: &LinuxSyscall) -> Result<Option<Vec<SeccompRule>>, SeccompError> {
    let args = s.args().as_deref().unwrap_or_default();
    if args.is_empty() {
        return Ok(None);
    }
    let mut conds = Vec::with_capacity(args.len());
    for (arg, a) in args.iter().enumerate() {
        let bad_index = || SeccompError::ArgIndex {
            index,
            names: names_of(s),
            arg,
            value: a.index(),
        };
        let arg_index = u8::try_from(a.index()).map_err(|_| bad_index())?;
        let (op, masked) = condition_op(a.op(), a.value_two());
        let (op, value) = match masked {
            Some(datum) => (SeccompCmpOp::MaskedEq(a.value()), datum),
            None => (op, a.value()),
        };
        let cond = SeccompCondition::new(arg_index, SeccompCmpArgLen::Qword, op, value)
            .map_err(|_| bad_index())?;
        conds.push((a.index(), cond));
    }
    let repeated = conds
        .iter()
        .any(|(i, _)| conds.iter().filter(|(j, _)| j == i).count() > 1);
    let rules: Result<Vec<SeccompRule>, _> = if repeated {
        conds
            .into_iter()
            .map(|(_, c)| SeccompRule::new(vec![c]))
            .collect()
    } else {
        SeccompRule::new(conds.into_iter().map(|(_, c)| c).collect()).map(|r| vec![r])
    };
    rules.map(Some).map_err(|source| SeccompError::Compile {
        arch: "rules",
        source,
    })
}

type RuleMap = BTreeMap<i64, Option<Vec<SeccompRule>>>;

/// Adds rules for syscall `nr`; an unconditional entry absorbs conditional ones.
fn merge(map: &mut RuleMap, nr: i64, rules: &Option<Vec<SeccompRule>>) {
    match (map.get_mut(&nr), rules) {
        (None, r) => {
            map.insert(nr, r.clone());
        }
        (Some(slot), None) => *slot = None,
        (Some(Some(have)), Some(more)) => have.extend(more.iter().cloned()),
        (Some(None), Some(_)) => {}
    }
}

/// Checks a profile without building it: everything `compile` would refuse.
pub fn validate(profile: &LinuxSeccomp) -> Result<(), SeccompError> {
    compile(profile).map(|_| ())
}

/// Compiles `linux.seccomp` into filters for this host's ABIs.
pub fn compile(profile: &LinuxSeccomp) -> Result<Filters, SeccompError> {
    if profile.default_action() == Act::ScmpActNotify {
        return Err(SeccompError::NotifyDefault);
    }
    let default = action(profile.default_action(), profile.default_errno_ret());
    let entries = profile.syscalls().as_deref().unwrap_or_default();
    let mut parsed = Vec::with_capacity(entries.len());
    let mut notify = false;
    for (index, s) in entries.iter().enumerate() {
        if s.names().is_empty() {
            return Err(SeccompError::NoNames { index });
        }
        if s.errno_ret().is_some() && !matches!(s.action(), Act::ScmpActErrno | Act::ScmpActTrace) {
            return Err(SeccompError::ErrnoRetWithoutErrno {
                index,
                names: names_of(s),
                action: s.action().to_string(),
            });
        }
        if s.action() == Act::ScmpActNotify {
            notify = true;
            // sendmsg hands the fd to the agent; write (refused by runc too, whose words the
            // error uses) carries the runtime's own messages and logs.
            if let Some(name) = s.names().iter().find(|n| *n == "sendmsg" || *n == "write") {
                return Err(SeccompError::NotifyOnRuntimeSyscall {
                    index,
                    name: name.clone(),
                });
            }
        }
        let rules = entry_rules(index, s)?;
        parsed.push((s, action(s.action(), s.errno_ret()), rules));
    }
    match profile.listener_path() {
        Some(p) if !p.is_absolute() => {
            return Err(SeccompError::ListenerRelative { path: p.clone() })
        }
        None if notify => return Err(SeccompError::NotifyWithoutListener),
        _ => {}
    }

    let (native, compat) = HOST_ABIS;
    let listed = profile.architectures().as_deref().unwrap_or_default();
    let mut abis = vec![native];
    abis.extend(
        compat
            .iter()
            .copied()
            .filter(|a| listed.iter().any(|l| *l as u32 == a.audit())),
    );
    let x32 = native == Abi::X86_64 && listed.contains(&Arch::ScmpArchX32);
    // Syscalls newer than any the profile names get ENOSYS rather than a refusing default
    // (bpf::insert_enosys_stub), unless the default already is ENOSYS or lets them through.
    let enosys_stub = !matches!(
        profile.default_action(),
        Act::ScmpActAllow | Act::ScmpActLog | Act::ScmpActTrace
    ) && profile.default_errno_ret() != Some(libc::ENOSYS as u32);

    let mut programs = vec![(gate(&abis, x32), false)];
    for &abi in &abis {
        // Rules grouped by the kernel return value of their action.
        let mut groups: BTreeMap<u32, (SeccompAction, RuleMap)> = BTreeMap::new();
        let mut all = RuleMap::new();
        for (s, act, rules) in &parsed {
            for name in s.names() {
                let Some(nr) = abi.number(name) else { continue };
                let mut nrs = vec![nr];
                if abi == Abi::X86_64 && x32 && nr < 512 {
                    // x32 shares the x86_64 numbers (plus the x32 bit) below 512; its own
                    // compat entries from 512 up get the default action.
                    nrs.push(nr | X32_SYSCALL_BIT);
                }
                for nr in nrs {
                    merge(&mut all, nr, rules);
                    let group = groups
                        .entry(u32::from(act.clone()))
                        .or_insert_with(|| (act.clone(), RuleMap::new()));
                    merge(&mut group.1, nr, rules);
                }
            }
        }
        if default != SeccompAction::Allow {
            let mut prog = build(abi, all, SeccompAction::Allow, default.clone())?;
            if enosys_stub {
                let max = |x32_numbers: bool| {
                    parsed
                        .iter()
                        .flat_map(|(s, _, _)| s.names())
                        .filter_map(|n| abi.number(n))
                        .filter(|nr| !x32_numbers || *nr < 512)
                        .max()
                        .map(|nr| {
                            if x32_numbers {
                                nr | X32_SYSCALL_BIT
                            } else {
                                nr
                            }
                        })
                        .and_then(|nr| u32::try_from(nr).ok())
                };
                if let Some(native_max) = max(false) {
                    let x32_max = if abi == Abi::X86_64 && x32 {
                        max(true)
                    } else {
                        None
                    };
                    insert_enosys_stub(&mut prog, native_max, x32_max);
                }
            }
            programs.push((prog, false));
        }
        for (_, (act, rules)) in groups {
            if act == SeccompAction::Allow {
                continue;
            }
            let is_notify = act == SeccompAction::Trace(NOTIFY_PLACEHOLDER);
            let mut prog = build(abi, rules, act, SeccompAction::Allow)?;
            if is_notify {
                let placeholder = u32::from(SeccompAction::Trace(NOTIFY_PLACEHOLDER));
                for ins in prog.iter_mut() {
                    if ins.code == BPF_RET_K && ins.k == placeholder {
                        ins.k = SECCOMP_RET_USER_NOTIF;
                    }
                }
            }
            programs.push((prog, is_notify));
        }
    }
    // Only one filter in a tree may own a listener (seccomp(2), EBUSY): the native ABI's
    // NOTIFY filter gets it; a compat ABI's NOTIFY rules then return ENOSYS, which is what
    // USER_NOTIF does without a listener.
    let mut seen_listener = false;
    for (_, listener) in programs.iter_mut() {
        if *listener {
            *listener = !seen_listener;
            seen_listener = true;
        }
    }

    let mut flags = 0;
    for f in profile.flags().iter().flatten() {
        flags |= match f {
            Flag::SeccompFilterFlagLog => FILTER_FLAG_LOG,
            Flag::SeccompFilterFlagSpecAllow => FILTER_FLAG_SPEC_ALLOW,
            Flag::SeccompFilterFlagTsync => FILTER_FLAG_TSYNC,
            Flag::SeccompFilterFlagWaitKillableRecv => FILTER_FLAG_WAIT_KILLABLE_RECV,
        };
    }
    Ok(Filters {
        programs,
        flags,
        // Without NOTIFY rules there is no fd for an agent: a listenerPath is then ignored,
        // as runc does.
        listener_path: profile.listener_path().clone().filter(|_| notify),
        listener_metadata: profile.listener_metadata().clone().unwrap_or_default(),
    })
}

/// One seccompiler filter for `abi`. seccompiler starts every program with
/// `ld arch; jeq <its target>, +1; ret KILL_PROCESS`: the compared value becomes `abi`'s and
/// the kill becomes ALLOW, since other ABIs are the gate's business and ALLOW means "no
/// opinion" in a stack of filters.
fn build(
    abi: Abi,
    rules: RuleMap,
    match_action: SeccompAction,
    mismatch_action: SeccompAction,
) -> Result<BpfProgram, SeccompError> {
    let arch = abi.name();
    let rules: BTreeMap<i64, Vec<SeccompRule>> = rules
        .into_iter()
        .map(|(nr, r)| (nr, r.unwrap_or_default()))
        .collect();
    let filter = SeccompFilter::new(rules, mismatch_action, match_action, TargetArch::x86_64)
        .map_err(|source| SeccompError::Compile { arch, source })?;
    let mut prog: BpfProgram = filter
        .try_into()
        .map_err(|source| SeccompError::Compile { arch, source })?;
    let shape_ok = prog.len() > 3
        && prog[0].code == BPF_LD_W_ABS
        && prog[0].k == 4
        && prog[1].code == BPF_JEQ_K
        && prog[1].k == AUDIT_ARCH_X86_64
        && prog[2].code == BPF_RET_K;
    if !shape_ok {
        return Err(SeccompError::Prologue { arch });
    }
    prog[1].k = abi.audit();
    prog[2].k = libc::SECCOMP_RET_ALLOW;
    Ok(prog)
}

/// `struct sock_fprog` (linux/filter.h).
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const sock_filter,
}

impl Filters {
    pub fn listener_path(&self) -> Option<&Path> {
        self.listener_path.as_deref()
    }

    pub fn listener_metadata(&self) -> &str {
        &self.listener_metadata
    }

    /// Installs the filters in order. Needs no_new_privs or CAP_SYS_ADMIN (seccomp(2)).
    /// Returns the notify fd when the profile has NOTIFY rules.
    pub fn install(&self) -> Result<Option<OwnedFd>, SeccompError> {
        let count = self.programs.len();
        let mut listener = None;
        for (i, (prog, wants_listener)) in self.programs.iter().enumerate() {
            let mut flags = self.flags;
            if *wants_listener {
                // TSYNC and NEW_LISTENER together need TSYNC_ESRCH; the init is
                // single-threaded, so TSYNC has nothing to synchronise anyway.
                flags = (flags & !FILTER_FLAG_TSYNC) | FILTER_FLAG_NEW_LISTENER;
            } else {
                // WAIT_KILLABLE_RECV is only valid along with NEW_LISTENER (seccomp(2)).
                flags &= !FILTER_FLAG_WAIT_KILLABLE_RECV;
            }
            let fprog = SockFprog {
                len: prog.len() as libc::c_ushort,
                filter: prog.as_ptr(),
            };
            // SAFETY: fprog points at `prog`, alive for the call; the kernel copies it.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    SECCOMP_SET_MODE_FILTER,
                    flags,
                    &fprog as *const SockFprog,
                )
            };
            if ret < 0 {
                return Err(SeccompError::Install {
                    index: i + 1,
                    count,
                    source: Errno::last(),
                });
            }
            if *wants_listener {
                // SAFETY: with NEW_LISTENER the return value is a new fd that we now own.
                listener = Some(unsafe { OwnedFd::from_raw_fd(ret as i32) });
            }
        }
        Ok(listener)
    }
}

/// Connects to the agent's socket. Done *before* the filters are installed, so only
/// sendmsg(2) is needed afterwards.
pub fn connect_listener(path: &Path) -> Result<UnixStream, SeccompError> {
    UnixStream::connect(path).map_err(|source| SeccompError::Listener {
        path: path.to_path_buf(),
        // runc's words, which its tests and users look for.
        action: "failed to connect with seccomp agent",
        source,
    })
}

/// Sends the notify fd and the container process state to the agent, as the runtime-spec
/// describes ("Container Process State"): one message, the JSON as data and the fds named
/// in its `fds` array attached with SCM_RIGHTS in that order.
pub fn send_listener_fd(
    stream: &UnixStream,
    path: &Path,
    fd: &OwnedFd,
    pid: i32,
    metadata: &str,
    state: &[u8],
) -> Result<(), SeccompError> {
    let state: serde_json::Value = serde_json::from_slice(state).unwrap_or_default();
    let msg = serde_json::json!({
        "ociVersion": "1.2.0",
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": state,
    })
    .to_string();
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(msg.as_bytes())];
    sendmsg::<()>(stream.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).map_err(|e| {
        SeccompError::Listener {
            path: path.to_path_buf(),
            action: "sending the notify fd",
            source: io::Error::from(e),
        }
    })?;
    Ok(())
}

/// The `linux.seccomp` section of `features` (runtime-spec features.md): what this runtime
/// understands, and which filter flags this kernel accepts.
pub fn features() -> serde_json::Value {
    let known = [
        ("SECCOMP_FILTER_FLAG_TSYNC", FILTER_FLAG_TSYNC),
        ("SECCOMP_FILTER_FLAG_LOG", FILTER_FLAG_LOG),
        ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", FILTER_FLAG_SPEC_ALLOW),
        (
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            FILTER_FLAG_WAIT_KILLABLE_RECV,
        ),
    ];
    // seccomp(2) with a NULL program: EFAULT means the flag was understood, EINVAL not.
    // WAIT_KILLABLE_RECV is only accepted together with NEW_LISTENER.
    let supported: Vec<&str> = known
        .iter()
        .map(|(name, flag)| match *flag {
            FILTER_FLAG_WAIT_KILLABLE_RECV => (name, flag | FILTER_FLAG_NEW_LISTENER),
            _ => (name, *flag),
        })
        .filter(|(_, flag)| {
            // SAFETY: a NULL program is never read; the kernel fails before installing.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    SECCOMP_SET_MODE_FILTER,
                    *flag,
                    std::ptr::null::<SockFprog>(),
                )
            };
            r < 0 && Errno::last() == Errno::EFAULT
        })
        .map(|(name, _)| *name)
        .collect();
    let (native, compat) = HOST_ABIS;
    let mut archs: Vec<&str> = vec![native.name()];
    archs.extend(compat.iter().map(|a| a.name()));
    if native == Abi::X86_64 {
        archs.push("SCMP_ARCH_X32");
    }
    serde_json::json!({
        "enabled": true,
        "actions": [
            "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
            "SCMP_ACT_TRAP"
        ],
        "operators": [
            "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
        ],
        "archs": archs,
        "knownFlags": known.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "supportedFlags": supported,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).expect("test profile parses")
    }

    #[test]
    fn unknown_syscall_names_are_skipped() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["no_such_syscall_xyz","getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        let f = compile(&p).expect("compiles");
        // gate + default filter for the native ABI.
        assert_eq!(f.programs.len(), 2);
    }

    #[test]
    fn errno_ret_on_a_non_errno_action_names_the_entry() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["getpid"],"action":"SCMP_ACT_LOG"},
                {"names":["mkdir"],"action":"SCMP_ACT_KILL","errnoRet":1}]}"#,
        );
        let err = compile(&p).expect_err("must fail").to_string();
        assert!(
            err.contains("syscalls[1]") && err.contains("mkdir"),
            "{err}"
        );
    }

    #[test]
    fn notify_needs_a_listener_and_is_not_a_default() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(matches!(
            compile(&p),
            Err(SeccompError::NotifyWithoutListener)
        ));
        let p = profile(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#);
        assert!(matches!(compile(&p), Err(SeccompError::NotifyDefault)));
    }

    #[test]
    fn an_argument_index_past_five_names_the_entry() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["personality"],"action":"SCMP_ACT_ERRNO",
                 "args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        let err = compile(&p).expect_err("must fail").to_string();
        assert!(
            err.contains("syscalls[0]") && err.contains("args[0].index 6"),
            "{err}"
        );
    }

    #[test]
    fn notify_filters_return_user_notif() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock",
                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        let f = compile(&p).expect("compiles");
        let (prog, listener) = f.programs.last().expect("a notify filter");
        assert!(listener);
        assert!(prog
            .iter()
            .any(|i| i.code == BPF_RET_K && i.k == SECCOMP_RET_USER_NOTIF));
    }
}
