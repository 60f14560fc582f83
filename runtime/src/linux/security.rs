//! Process security settings beyond credentials and capabilities: LSM labels (AppArmor,
//! SELinux), personality, I/O priority and scheduler, and the guarded final execve that keeps
//! the runtime binary out of the container's reach (CVE-2019-5736).

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use oci_spec::runtime::{
    IOPriorityClass, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Process,
};

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(
        "process.apparmorProfile: {profile:?} is set but AppArmor is not enabled on this host"
    )]
    NoAppArmor { profile: String },
    #[error("process.selinuxLabel: {label:?} is set but SELinux is not enabled on this host")]
    NoSelinux { label: String },
    #[error("process.scheduler.priority: {priority} is out of range for {policy} ({range})")]
    SchedulerPriority {
        policy: String,
        priority: i32,
        range: &'static str,
    },
    #[error("process.scheduler.nice: {nice} is not between -20 and 19")]
    SchedulerNice { nice: i32 },
    #[error("process.scheduler.policy: {policy} is not supported by Linux")]
    SchedulerPolicy { policy: String },
    #[error("process.ioPriority.priority: {priority} is not between 0 and 7")]
    IoPriority { priority: i64 },
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not on procfs: refusing to write to it")]
    NotProcfs { path: PathBuf },
    #[error("{call}({detail})")]
    Syscall {
        call: &'static str,
        detail: String,
        #[source]
        source: Errno,
    },
    #[error(
        "creating the exec trampoline (an executable sealed memfd; is vm.memfd_noexec set to 2?)"
    )]
    Trampoline(#[source] Errno),
    #[error("exec: {arg0:?}: {reason}")]
    Exec { arg0: String, reason: String },
}

fn syscall_err(call: &'static str, detail: impl ToString) -> impl FnOnce(Errno) -> SecurityError {
    let detail = detail.to_string();
    move |source| SecurityError::Syscall {
        call,
        detail,
        source,
    }
}

/// AppArmor is usable when its securityfs is there and the module is enabled (what runc
/// checks too).
pub fn apparmor_enabled() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|b| b.starts_with(b"Y"))
}

/// SELinux is usable when selinuxfs is mounted.
pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Checks the settings of this module at create time, so bad input fails before anything
/// exists. A label for an LSM the host does not have fails, as with runc.
pub fn validate(process: &Process) -> Result<(), SecurityError> {
    if let Some(profile) = process
        .apparmor_profile()
        .as_ref()
        .filter(|p| !p.is_empty())
    {
        if !apparmor_enabled() {
            return Err(SecurityError::NoAppArmor {
                profile: profile.clone(),
            });
        }
    }
    if let Some(label) = process.selinux_label().as_ref().filter(|l| !l.is_empty()) {
        if !selinux_enabled() {
            return Err(SecurityError::NoSelinux {
                label: label.clone(),
            });
        }
    }
    if let Some(s) = process.scheduler() {
        let policy = s.policy().to_string();
        let priority = s.priority().unwrap_or(0);
        match s.policy() {
            LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr
                if !(1..=99).contains(&priority) =>
            {
                return Err(SecurityError::SchedulerPriority {
                    policy,
                    priority,
                    range: "1-99",
                });
            }
            LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr => {}
            // SCHED_ISO was proposed but never merged (sched(7)).
            LinuxSchedulerPolicy::SchedIso => {
                return Err(SecurityError::SchedulerPolicy { policy })
            }
            _ if priority != 0 => {
                return Err(SecurityError::SchedulerPriority {
                    policy,
                    priority,
                    range: "0",
                })
            }
            _ => {}
        }
        if let Some(nice) = s.nice().filter(|n| !(-20..=19).contains(n)) {
            return Err(SecurityError::SchedulerNice { nice });
        }
    }
    if let Some(io) = process.io_priority() {
        if !(0..=7).contains(&io.priority()) {
            return Err(SecurityError::IoPriority {
                priority: io.priority(),
            });
        }
    }
    Ok(())
}

/// The LSM label the next execve takes on, written through a /proc/self/attr file opened
/// while the host's /proc is still at /proc (before pivot_root) and checked to be procfs: a
/// container cannot redirect the write by mounting something over its /proc
/// (CVE-2019-16884). proc(5): only the task itself may write its attr files, which we are.
pub struct ExecLabel {
    file: File,
    value: String,
    path: PathBuf,
}

impl ExecLabel {
    /// Opens the attr file for the configured AppArmor profile or SELinux label, if any.
    pub fn open(process: &Process) -> Result<Vec<ExecLabel>, SecurityError> {
        let mut out = Vec::new();
        if let Some(p) = process
            .apparmor_profile()
            .as_ref()
            .filter(|p| !p.is_empty())
        {
            // Since Linux 5.8 AppArmor has its own attr directory (stackable LSMs); the old
            // shared file still works when AppArmor is the major LSM.
            let path = ["/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"]
                .into_iter()
                .find(|p| Path::new(p).exists())
                .unwrap_or("/proc/self/attr/exec");
            out.push(Self::open_attr(path, format!("exec {p}"))?);
        }
        if let Some(l) = process.selinux_label().as_ref().filter(|l| !l.is_empty()) {
            out.push(Self::open_attr("/proc/self/attr/exec", l.clone())?);
        }
        Ok(out)
    }

    fn open_attr(path: &str, value: String) -> Result<ExecLabel, SecurityError> {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|source| SecurityError::Io {
                action: "opening",
                path: path.into(),
                source,
            })?;
        if !super::proc::is_procfs(&file) {
            return Err(SecurityError::NotProcfs { path: path.into() });
        }
        Ok(ExecLabel {
            file,
            value,
            path: path.into(),
        })
    }

    /// Sets the label for the next execve.
    pub fn apply(&self) -> Result<(), SecurityError> {
        (&self.file)
            .write_all(self.value.as_bytes())
            .map_err(|source| SecurityError::Io {
                action: "writing",
                path: self.path.clone(),
                source,
            })
    }
}

/// personality(2): LINUX32 makes `uname -m` report i686 for the process and its children.
/// The spec defines no flags; like runc, they are ignored.
pub fn set_personality(p: Option<&LinuxPersonality>) -> Result<(), SecurityError> {
    let Some(p) = p else { return Ok(()) };
    let persona: libc::c_ulong = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality only changes this process's execution domain.
    if unsafe { libc::personality(persona) } < 0 {
        return Err(syscall_err("personality", format!("{persona:#x}"))(
            Errno::last(),
        ));
    }
    Ok(())
}

/// ioprio_set(2) for this process: `class << 13 | data` (IOPRIO_PRIO_VALUE).
pub fn set_io_priority(process: &Process) -> Result<(), SecurityError> {
    let Some(io) = process.io_priority() else {
        return Ok(());
    };
    let class: i64 = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let value = (class << 13) | io.priority();
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: ioprio_set takes plain integers.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    if r < 0 {
        return Err(syscall_err(
            "ioprio_set",
            format!("{} {}", io.class(), io.priority()),
        )(Errno::last()));
    }
    Ok(())
}

/// `struct sched_attr` (sched_setattr(2)), SCHED_ATTR_SIZE_VER1.
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// sched_setattr(2) for this process; RT policies need CAP_SYS_NICE, so this runs before the
/// capabilities are dropped. The policy is inherited by the user process.
pub fn set_scheduler(process: &Process) -> Result<(), SecurityError> {
    let Some(s) = process.scheduler() else {
        return Ok(());
    };
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let flags = s.flags().iter().flatten().fold(0u64, |acc, f| {
        acc | match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        }
    });
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        util_min: 0,
        util_max: 0,
    };
    // SAFETY: attr is a valid sched_attr whose size field matches its layout.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if r < 0 {
        return Err(syscall_err("sched_setattr", s.policy())(Errno::last()));
    }
    Ok(())
}

/// The final execve, guarded against CVE-2019-5736.
///
/// The init runs the runtime's own code (no re-exec), so until execve its /proc/self/exe is
/// the host's runtime binary. If the container's program is a script starting with
/// `#!/proc/self/exe` (or any path that resolves to our exe: /proc/1/exe, map_files, ...),
/// binfmt_script resolves the interpreter *during* execve, in our context, and the container
/// ends up running the host binary as its own process; a second process in the container can
/// then open /proc/<pid>/exe and, once it exits, write the host binary.
///
/// Instead of execve'ing the program ourselves we execve a 576-byte static trampoline from a
/// sealed memfd, which execve's the program. When binfmt_script resolves `/proc/self/exe`
/// it then finds the trampoline: a memfd sealed against writes, not the host file. The
/// trampoline refuses to run unless its argv[0] is its magic (so as an interpreter it just
/// exits 127), and reports a failed execve as `exec failed: errno N` with status 127.
/// The trampoline's own execve must not change what the program's execve may do: a non-root
/// process loses its permitted capabilities at execve (all but the ambient ones), and the
/// effective set of root becomes everything in its bounding set, so the permission checks of
/// the second execve (CAP_DAC_OVERRIDE on a file without the exec bit for the user, say)
/// would differ. When they would, the runtime carries the capabilities across in the ambient
/// set and the trampoline puts back the exact effective, inheritable and ambient sets
/// ([`CapHop`]: one capset(2) and a few prctl(2) calls, which a seccomp profile with
/// noNewPrivileges must then allow, as it must allow execveat).
/// Cost: one 576-byte memfd and one extra execve of a binary with no dynamic loader or
/// libraries; measured within noise of a whole `run` (see the README's security section).
pub struct ExecGuard {
    trampoline: OwnedFd,
}

/// argv[0] the trampoline insists on (compared as 8 bytes).
const TRAMPOLINE_MAGIC: &str = "berthexe";

/// x86_64 machine code of the trampoline (assembled with GNU as from the listing below,
/// Intel syntax). With argv[0] its magic, it restores the capability state the runtime asked
/// for (the data block at the end; version 0 there means nothing to restore), then
/// execve(argv[1], argv + 2, envp); on failure it prints the errno and exits 127.
///
/// ```text
/// _start:
///     mov  rax, [rsp]
///     cmp  rax, 2
///     jb   usage
///     lea  r13, [rsp+8]
///     lea  r14, [r13+rax*8+8]
///     mov  rdi, [r13]
///     movabs rcx, 0x6578656874726562
///     cmp  [rdi], rcx
///     jne  usage
///     cmp  dword ptr [rip+caps_hdr], 0
///     je   run
///     sub  rsp, 32
///     mov  rax, [rip+caps_hdr]
///     mov  [rsp], rax
///     mov  rax, [rip+caps_data]
///     mov  [rsp+8], rax
///     mov  rax, [rip+caps_data+8]
///     mov  [rsp+16], rax
///     mov  rax, [rip+caps_data+16]
///     mov  [rsp+24], rax
///     mov  rdi, rsp
///     lea  rsi, [rsp+8]
///     mov  eax, 126
///     syscall
///     add  rsp, 32
///     test rax, rax
///     jnz  failed
///     mov  r12, [rip+ambient_lower]
///     xor  ebx, ebx
/// lower:
///     bt   r12, rbx
///     jnc  next
///     mov  edi, 47
///     mov  esi, 3
///     mov  rdx, rbx
///     xor  r10d, r10d
///     xor  r8d, r8d
///     mov  eax, 157
///     syscall
///     test rax, rax
///     jnz  failed
/// next:
///     inc  ebx
///     cmp  ebx, 64
///     jb   lower
/// run:
///     mov  rdi, [r13+8]
///     lea  rsi, [r13+16]
///     mov  rdx, r14
///     mov  eax, 59
///     syscall
/// failed:
///     neg  rax
///     lea  rsi, [rsp-8]
///     mov  byte ptr [rsi], 10
///     mov  ecx, 10
/// digits:
///     xor  edx, edx
///     div  rcx
///     add  dl, 48
///     dec  rsi
///     mov  [rsi], dl
///     test rax, rax
///     jnz  digits
///     mov  r12, rsi
///     mov  edi, 2
///     lea  rsi, [rip+prefix]
///     mov  edx, 34
///     mov  eax, 1
///     syscall
///     mov  edi, 2
///     mov  rsi, r12
///     lea  rdx, [rsp-7]
///     sub  rdx, r12
///     mov  eax, 1
///     syscall
///     jmp  out
/// usage:
///     mov  edi, 2
///     lea  rsi, [rip+umsg]
///     mov  edx, 51
///     mov  eax, 1
///     syscall
/// out:
///     mov  edi, 127
///     mov  eax, 231
///     syscall
/// prefix: .ascii "berth-runtime: exec failed: errno "
/// umsg:   .ascii "berth-runtime: exec trampoline: not an interpreter\n"
/// .balign 8
/// caps_hdr:      .long 0, 0
/// caps_data:     .long 0, 0, 0, 0, 0, 0
/// ambient_lower: .quad 0
/// ```
#[cfg(target_arch = "x86_64")]
const TRAMPOLINE_CODE: &[u8] = &[
    0x48, 0x8b, 0x04, 0x24, 0x48, 0x83, 0xf8, 0x02, 0x0f, 0x82, 0x16, 0x01, 0x00, 0x00, 0x4c, 0x8d,
    0x6c, 0x24, 0x08, 0x4d, 0x8d, 0x74, 0xc5, 0x08, 0x49, 0x8b, 0x7d, 0x00, 0x48, 0xb9, 0x62, 0x65,
    0x72, 0x74, 0x68, 0x65, 0x78, 0x65, 0x48, 0x39, 0x0f, 0x0f, 0x85, 0xf5, 0x00, 0x00, 0x00, 0x83,
    0x3d, 0x6a, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x84, 0x80, 0x00, 0x00, 0x00, 0x48, 0x83, 0xec, 0x20,
    0x48, 0x8b, 0x05, 0x59, 0x01, 0x00, 0x00, 0x48, 0x89, 0x04, 0x24, 0x48, 0x8b, 0x05, 0x56, 0x01,
    0x00, 0x00, 0x48, 0x89, 0x44, 0x24, 0x08, 0x48, 0x8b, 0x05, 0x52, 0x01, 0x00, 0x00, 0x48, 0x89,
    0x44, 0x24, 0x10, 0x48, 0x8b, 0x05, 0x4e, 0x01, 0x00, 0x00, 0x48, 0x89, 0x44, 0x24, 0x18, 0x48,
    0x89, 0xe7, 0x48, 0x8d, 0x74, 0x24, 0x08, 0xb8, 0x7e, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x83,
    0xc4, 0x20, 0x48, 0x85, 0xc0, 0x75, 0x47, 0x4c, 0x8b, 0x25, 0x32, 0x01, 0x00, 0x00, 0x31, 0xdb,
    0x49, 0x0f, 0xa3, 0xdc, 0x73, 0x1f, 0xbf, 0x2f, 0x00, 0x00, 0x00, 0xbe, 0x03, 0x00, 0x00, 0x00,
    0x48, 0x89, 0xda, 0x45, 0x31, 0xd2, 0x45, 0x31, 0xc0, 0xb8, 0x9d, 0x00, 0x00, 0x00, 0x0f, 0x05,
    0x48, 0x85, 0xc0, 0x75, 0x19, 0xff, 0xc3, 0x83, 0xfb, 0x40, 0x72, 0xd4, 0x49, 0x8b, 0x7d, 0x08,
    0x49, 0x8d, 0x75, 0x10, 0x4c, 0x89, 0xf2, 0xb8, 0x3b, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0xf7,
    0xd8, 0x48, 0x8d, 0x74, 0x24, 0xf8, 0xc6, 0x06, 0x0a, 0xb9, 0x0a, 0x00, 0x00, 0x00, 0x31, 0xd2,
    0x48, 0xf7, 0xf1, 0x80, 0xc2, 0x30, 0x48, 0xff, 0xce, 0x88, 0x16, 0x48, 0x85, 0xc0, 0x75, 0xee,
    0x49, 0x89, 0xf4, 0xbf, 0x02, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x35, 0x49, 0x00, 0x00, 0x00, 0xba,
    0x22, 0x00, 0x00, 0x00, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf, 0x02, 0x00, 0x00, 0x00,
    0x4c, 0x89, 0xe6, 0x48, 0x8d, 0x54, 0x24, 0xf9, 0x4c, 0x29, 0xe2, 0xb8, 0x01, 0x00, 0x00, 0x00,
    0x0f, 0x05, 0xeb, 0x18, 0xbf, 0x02, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x35, 0x3a, 0x00, 0x00, 0x00,
    0xba, 0x33, 0x00, 0x00, 0x00, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf, 0x7f, 0x00, 0x00,
    0x00, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x62, 0x65, 0x72, 0x74, 0x68, 0x2d, 0x72, 0x75,
    0x6e, 0x74, 0x69, 0x6d, 0x65, 0x3a, 0x20, 0x65, 0x78, 0x65, 0x63, 0x20, 0x66, 0x61, 0x69, 0x6c,
    0x65, 0x64, 0x3a, 0x20, 0x65, 0x72, 0x72, 0x6e, 0x6f, 0x20, 0x62, 0x65, 0x72, 0x74, 0x68, 0x2d,
    0x72, 0x75, 0x6e, 0x74, 0x69, 0x6d, 0x65, 0x3a, 0x20, 0x65, 0x78, 0x65, 0x63, 0x20, 0x74, 0x72,
    0x61, 0x6d, 0x70, 0x6f, 0x6c, 0x69, 0x6e, 0x65, 0x3a, 0x20, 0x6e, 0x6f, 0x74, 0x20, 0x61, 0x6e,
    0x20, 0x69, 0x6e, 0x74, 0x65, 0x72, 0x70, 0x72, 0x65, 0x74, 0x65, 0x72, 0x0a, 0x0f, 0x1f, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// Where the capability block (`caps_hdr`, `caps_data`, `ambient_lower` above) starts in
/// TRAMPOLINE_CODE: 8 bytes of `__user_cap_header_struct`, 24 of two
/// `__user_cap_data_struct` (capset(2)), 8 of ambient capabilities to lower.
#[cfg(target_arch = "x86_64")]
const TRAMPOLINE_CAPS_AT: usize = 0x1a0;

/// `_LINUX_CAPABILITY_VERSION_3` (linux/capability.h): 64-bit sets as two 32-bit words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The capability state the trampoline restores before the user's execve, so that execve
/// runs with exactly the credentials it would have had without the trampoline (see
/// process::CapSets::trampoline_hop). Bit N is capability N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapHop {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    /// Ambient capabilities raised only to survive the trampoline's own execve.
    pub ambient_lower: u64,
}

impl CapHop {
    /// The data block as the trampoline reads it.
    fn encode(&self) -> [u8; 40] {
        let mut b = [0u8; 40];
        b[0..4].copy_from_slice(&CAPABILITY_VERSION_3.to_le_bytes());
        // pid 0: this process.
        for (i, (lo, hi)) in [
            (self.effective as u32, (self.effective >> 32) as u32),
            (self.permitted as u32, (self.permitted >> 32) as u32),
            (self.inheritable as u32, (self.inheritable >> 32) as u32),
        ]
        .into_iter()
        .enumerate()
        {
            // data[0] holds capabilities 0-31 of each set, data[1] 32-63.
            b[8 + 4 * i..12 + 4 * i].copy_from_slice(&lo.to_le_bytes());
            b[20 + 4 * i..24 + 4 * i].copy_from_slice(&hi.to_le_bytes());
        }
        b[32..40].copy_from_slice(&self.ambient_lower.to_le_bytes());
        b
    }
}

/// A minimal static ELF64 executable around `code`: the ELF header and one PT_LOAD program
/// header mapping the whole file read+execute at 0x400000 (elf(5)).
#[cfg(target_arch = "x86_64")]
fn trampoline_elf(code: &[u8]) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56;
    let total = HEADERS + code.len() as u64;
    let mut elf = Vec::with_capacity(total as usize);
    elf.extend_from_slice(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    elf.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // e_machine: EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    elf.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // e_entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for v in [64u16, 56, 1, 0, 0, 0] {
        // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // p_flags: R + X
    for v in [0, BASE, BASE, total, total, 0x1000u64] {
        // p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(code);
    elf
}

impl ExecGuard {
    /// Writes the trampoline into a memfd and seals it (memfd_create(2), F_ADD_SEALS in
    /// fcntl(2)): no write, resize or further sealing is possible afterwards, for anyone.
    /// Called before the seccomp filter is installed, which may refuse memfd_create.
    #[cfg(target_arch = "x86_64")]
    pub fn prepare(hop: Option<CapHop>) -> Result<ExecGuard, SecurityError> {
        const MFD_EXEC: libc::c_uint = 0x10;
        let name = c"berth-exec";
        let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        // Linux 6.3+ wants MFD_EXEC for an executable memfd when vm.memfd_noexec is 1;
        // older kernels reject the unknown flag with EINVAL.
        // SAFETY: memfd_create takes a NUL-terminated name and flags.
        let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
        if fd < 0 && Errno::last() == Errno::EINVAL {
            // SAFETY: as above.
            fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        }
        if fd < 0 {
            return Err(SecurityError::Trampoline(Errno::last()));
        }
        // SAFETY: memfd_create returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut file = File::from(fd);
        let mut code = TRAMPOLINE_CODE.to_vec();
        if let Some(hop) = hop {
            code[TRAMPOLINE_CAPS_AT..TRAMPOLINE_CAPS_AT + 40].copy_from_slice(&hop.encode());
        }
        file.write_all(&trampoline_elf(&code)).map_err(|e| {
            SecurityError::Trampoline(Errno::from_raw(e.raw_os_error().unwrap_or(0)))
        })?;
        let seals =
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        // SAFETY: F_ADD_SEALS on a memfd we own.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(SecurityError::Trampoline(Errno::last()));
        }
        Ok(ExecGuard {
            trampoline: OwnedFd::from(file),
        })
    }

    /// The trampoline exists for x86_64 only so far; elsewhere refuse rather than run
    /// unprotected.
    #[cfg(not(target_arch = "x86_64"))]
    pub fn prepare(_hop: Option<CapHop>) -> Result<ExecGuard, SecurityError> {
        Err(SecurityError::Trampoline(Errno::ENOSYS))
    }

    /// Replaces this process with `path` through the trampoline. Only returns on failure
    /// (which is then the trampoline's execveat itself: the program's own failures show as
    /// exit status 127 with a message on stderr, after its existence and mode were checked
    /// by the caller).
    pub fn exec(&self, path: &Path, args: &[String], env: &[String]) -> SecurityError {
        let to_c = |s: &str| CString::new(s).unwrap_or_default();
        let mut argv: Vec<CString> = vec![to_c(TRAMPOLINE_MAGIC), to_c(&path.to_string_lossy())];
        argv.extend(args.iter().map(|a| to_c(a)));
        let envp: Vec<CString> = env.iter().map(|e| to_c(e)).collect();
        let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_p.push(std::ptr::null());
        let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
        envp_p.push(std::ptr::null());
        // SAFETY: NUL-terminated strings and NULL-terminated arrays that outlive the call;
        // execveat only returns on failure.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                self.trampoline.as_raw_fd(),
                c"".as_ptr(),
                argv_p.as_ptr(),
                envp_p.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
        }
        let errno = Errno::last();
        SecurityError::Exec {
            arg0: args.first().cloned().unwrap_or_default(),
            reason: format!(
                "execveat of the exec trampoline (a seccomp profile must allow execveat): {}",
                errno.desc().to_lowercase()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trampoline_is_a_small_sealed_executable() {
        let g = ExecGuard::prepare(None).expect("memfd");
        // SAFETY: F_GET_SEALS on our memfd.
        let seals = unsafe { libc::fcntl(g.trampoline.as_raw_fd(), libc::F_GET_SEALS) };
        assert!(seals & libc::F_SEAL_WRITE != 0, "seals {seals:#x}");
        let meta = std::fs::metadata(format!("/proc/self/fd/{}", g.trampoline.as_raw_fd()))
            .expect("stat memfd");
        assert_eq!(meta.len(), 576);
    }

    #[test]
    fn out_of_range_scheduler_priority_is_rejected() {
        let p: Process = serde_json::from_str(
            r#"{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"],
                "scheduler":{"policy":"SCHED_FIFO","priority":0}}"#,
        )
        .expect("parses");
        let err = validate(&p).expect_err("must fail").to_string();
        assert!(err.contains("process.scheduler.priority"), "{err}");
    }
}
