//! The device allow/deny list: v1's devices controller, and on v2 an eBPF program of type
//! BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's cgroup.
//!
//! Rules apply in order, a later rule overriding an earlier one, as on v1 where each rule is
//! one write to devices.allow or devices.deny. Like runc, the runtime appends its own rules
//! after the spec's: the standard /dev nodes every container has, so `deny a *:* rwm` alone
//! still leaves a working /dev. The nodes of `linux.devices` get no rule of their own, as
//! under runc: they exist in the container, and `linux.resources.devices` says whether they
//! may be used (docker and containerd write an allow rule for each device they add).

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

/// Access bits as the kernel's eBPF context encodes them (include/uapi/linux/bpf.h,
/// BPF_DEVCG_ACC_*): mknod 1, read 2, write 4.
const ACC_MKNOD: u8 = 1;
const ACC_READ: u8 = 2;
const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    All,
    Block,
    Char,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: Kind,
    /// None is the wildcard `*`.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl DeviceRule {
    const fn allow(kind: Kind, major: Option<u32>, minor: Option<u32>, access: u8) -> Self {
        DeviceRule {
            allow: true,
            kind,
            major,
            minor,
            access,
        }
    }

    /// Matches every device with every access (v1 treats any `a` rule as the whole list).
    fn is_catch_all(&self) -> bool {
        self.kind == Kind::All && self.access == ACC_ALL
    }
}

/// The v1 form written to devices.allow / devices.deny, e.g. `c 1:3 rwm`, `a *:* rwm`.
impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::All => "a",
            Kind::Block => "b",
            Kind::Char => "c",
        };
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        let mut acc = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                acc.push(c);
            }
        }
        write!(f, "{kind} {}:{} {acc}", num(self.major), num(self.minor))
    }
}

/// What every container may use whatever its spec says (the same set runc allows): mknod of
/// any node, and /dev/null, zero, full, random, urandom, tty, ptmx and the pty slaves.
const DEFAULT_ALLOWED: [DeviceRule; 10] = [
    DeviceRule::allow(Kind::Char, None, None, ACC_MKNOD),
    DeviceRule::allow(Kind::Block, None, None, ACC_MKNOD),
    DeviceRule::allow(Kind::Char, Some(1), Some(3), ACC_ALL),
    DeviceRule::allow(Kind::Char, Some(1), Some(5), ACC_ALL),
    DeviceRule::allow(Kind::Char, Some(1), Some(7), ACC_ALL),
    DeviceRule::allow(Kind::Char, Some(1), Some(8), ACC_ALL),
    DeviceRule::allow(Kind::Char, Some(1), Some(9), ACC_ALL),
    DeviceRule::allow(Kind::Char, Some(5), Some(0), ACC_ALL),
    DeviceRule::allow(Kind::Char, Some(5), Some(2), ACC_ALL),
    DeviceRule::allow(Kind::Char, Some(136), None, ACC_ALL),
];

/// The effective rule list: the spec's rules, then the defaults. An empty spec list leaves
/// the kernel's (inherited) list alone.
pub(crate) fn rules(spec: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, CgroupError> {
    if spec.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(spec.len() + DEFAULT_ALLOWED.len());
    for (i, r) in spec.iter().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        let kind = match r.typ() {
            None | Some(LinuxDeviceType::A) => Kind::All,
            Some(LinuxDeviceType::B) => Kind::Block,
            Some(LinuxDeviceType::C | LinuxDeviceType::U) => Kind::Char,
            Some(other) => {
                return Err(invalid(
                    format!("{field}.type"),
                    other.as_str(),
                    "must be a, b or c",
                ))
            }
        };
        let letters = r.access().as_deref().unwrap_or("rwm");
        let mut access = 0;
        for c in letters.chars() {
            access |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                // runc ignores letters it does not know (its own tests use "rwa"), so
                // configs written for it do not fail here; a rule left with none fails.
                other => {
                    crate::logging::debug(&format!(
                        "{field}.access: ignoring unknown permission {other:?}"
                    ));
                    0
                }
            };
        }
        if access == 0 && !letters.is_empty() {
            return Err(invalid(
                format!("{field}.access"),
                letters,
                "no permission among r, w and m",
            ));
        }
        out.push(DeviceRule {
            allow: r.allow(),
            kind,
            major: number(&format!("{field}.major"), r.major())?,
            minor: number(&format!("{field}.minor"), r.minor())?,
            access,
        });
    }
    out.extend(DEFAULT_ALLOWED);
    Ok(out)
}

/// -1 and absent are the wildcard.
fn number(field: &str, n: Option<i64>) -> Result<Option<u32>, CgroupError> {
    match n {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| invalid(field.to_string(), n, "must be -1 (any) or a device number")),
    }
}

fn invalid(field: String, value: impl ToString, reason: &'static str) -> CgroupError {
    CgroupError::Invalid {
        field,
        value: value.to_string(),
        reason,
    }
}

/// v1: one write per rule, in order (Documentation/admin-guide/cgroup-v1/devices.rst).
/// Writing `a` to devices.deny empties the list and denies by default; `a` to devices.allow
/// allows everything again. The kernel parses each write(2) as one rule, so both files are
/// opened once and written once per rule (a default container has a dozen rules; kernfs
/// opens are not free).
pub(crate) fn apply_v1(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let mut allow: Option<File> = None;
    let mut deny: Option<File> = None;
    for r in rules {
        let (name, slot) = if r.allow {
            ("devices.allow", &mut allow)
        } else {
            ("devices.deny", &mut deny)
        };
        let path = dir.join(name);
        let value = r.to_string();
        let failed = |source| CgroupError::Write {
            field: "linux.resources.devices".to_string(),
            path: path.clone(),
            value: value.clone(),
            source,
        };
        let file = match slot {
            Some(f) => f,
            None => slot.insert(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(failed)?,
            ),
        };
        // One write(2) per rule: write_all could split a rule over two writes.
        match file.write(value.as_bytes()) {
            Ok(n) if n == value.len() => {}
            Ok(_) => return Err(failed(io::ErrorKind::WriteZero.into())),
            Err(e) => return Err(failed(e)),
        }
    }
    Ok(())
}

/// One eBPF instruction (struct bpf_insn in include/uapi/linux/bpf.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

// Opcodes used (Documentation/bpf/standardization/instruction-set.rst).
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // dst &= imm
const ALU32_RSH_K: u8 = 0x74; // dst >>= imm
const ALU32_MOV_X: u8 = 0xbc; // dst = src
const ALU64_MOV_K: u8 = 0xb7; // dst = imm
const JMP_JNE_K: u8 = 0x55; // if dst != imm goto +off
const JMP_JNE_X: u8 = 0x5d; // if dst != src goto +off
const EXIT: u8 = 0x95;

/// The device filter. The context (struct bpf_cgroup_dev_ctx) is `u32 access_type` (type in
/// the low 16 bits, access bits in the high 16), `u32 major`, `u32 minor`; returning 1 allows.
/// Rules are tested from the last to the first and the first match decides, which is
/// "later rules override earlier ones". Testing stops at a catch-all rule because the
/// verifier rejects unreachable instructions; without one the default is allow, as for a new
/// v1 cgroup, which inherits its parent's (allow-all) list.
fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut prog = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_MOV_X, 3, 2, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff), // r2 = type
        insn(ALU32_RSH_K, 3, 0, 0, 16),     // r3 = requested access
        insn(LDX_MEM_W, 4, 1, 4, 0),        // r4 = major
        insn(LDX_MEM_W, 5, 1, 8, 0),        // r5 = minor
    ];
    let mut default = true;
    for r in rules.iter().rev() {
        if r.is_catch_all() {
            default = r.allow;
            break;
        }
        // Each condition jumps past the rest of this rule's block when it does not hold.
        let mut conds: Vec<Insn> = Vec::new();
        match r.kind {
            Kind::Block => conds.push(insn(JMP_JNE_K, 2, 0, 0, 1)),
            Kind::Char => conds.push(insn(JMP_JNE_K, 2, 0, 0, 2)),
            Kind::All => {}
        }
        if r.access != ACC_ALL {
            // The request matches when all its access bits are in the rule's.
            conds.push(insn(ALU32_MOV_X, 1, 3, 0, 0));
            conds.push(insn(ALU32_AND_K, 1, 0, 0, i32::from(r.access)));
            conds.push(insn(JMP_JNE_X, 1, 3, 0, 0));
        }
        if let Some(m) = r.major {
            conds.push(insn(JMP_JNE_K, 4, 0, 0, m as i32));
        }
        if let Some(m) = r.minor {
            conds.push(insn(JMP_JNE_K, 5, 0, 0, m as i32));
        }
        let len = conds.len() + 2;
        for (i, c) in conds.iter_mut().enumerate() {
            if c.code == JMP_JNE_K || c.code == JMP_JNE_X {
                c.off = (len - i - 1) as i16;
            }
        }
        prog.extend(conds);
        prog.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(r.allow)));
        prog.push(insn(EXIT, 0, 0, 0, 0));
    }
    prog.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(default)));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    prog
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs of the parent cgroups keep running too; every one must allow an access.
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The leading fields of union bpf_attr used by BPF_PROG_LOAD; the kernel accepts a shorter
/// attr than its own and zero-fills the rest (bpf(2)).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, initialised repr(C) prefix of union bpf_attr for `cmd`, and
    // the size passed is its size; the pointers inside it outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn load(prog: &[Insn], log: Option<&mut Vec<u8>>) -> io::Result<OwnedFd> {
    const LICENSE: &[u8] = b"Apache-2.0\0";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        ..ProgLoadAttr::default()
    };
    if let Some(buf) = log {
        attr.log_level = 1;
        attr.log_size = buf.len() as u32;
        attr.log_buf = buf.as_mut_ptr() as u64;
    }
    let fd = bpf(BPF_PROG_LOAD, &mut attr)?;
    // SAFETY: BPF_PROG_LOAD returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// v2: loads the filter and attaches it to the container's cgroup. The program stays attached
/// for the cgroup's life, so its fd is closed right away.
pub(crate) fn apply_v2(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let prog = program(rules);
    let fd = match load(&prog, None) {
        Ok(fd) => fd,
        Err(source) => {
            // Load again with the verifier log, to say why.
            let mut buf = vec![0u8; 64 * 1024];
            let _ = load(&prog, Some(&mut buf));
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            return Err(CgroupError::BpfLoad {
                path: dir.to_path_buf(),
                log: String::from_utf8_lossy(&buf[..end]).trim().to_string(),
                source,
            });
        }
    };
    let cgroup = File::open(dir).map_err(|source| CgroupError::Io {
        action: "opening cgroup",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|source| CgroupError::BpfAttach {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny_all() -> LinuxDeviceCgroup {
        serde_json::from_str(r#"{"allow":false,"access":"rwm"}"#).unwrap()
    }

    #[test]
    fn defaults_follow_the_spec_rules_and_print_in_v1_form() {
        let r = rules(&[deny_all()]).unwrap();
        assert_eq!(r[0].to_string(), "a *:* rwm");
        assert!(!r[0].allow);
        assert!(r.iter().any(|d| d.to_string() == "c 1:3 rwm" && d.allow));
        assert!(r.iter().any(|d| d.to_string() == "c 136:* rwm"));
        assert!(rules(&[]).unwrap().is_empty());
    }

    #[test]
    fn program_stops_at_the_last_catch_all_and_jumps_stay_in_their_block() {
        let r = rules(&[deny_all()]).unwrap();
        let p = program(&r);
        // Ends with the deny-all default, and every jump lands inside the program.
        assert_eq!(p[p.len() - 2], insn(ALU64_MOV_K, 0, 0, 0, 0));
        for (i, ins) in p.iter().enumerate() {
            if ins.code == JMP_JNE_K || ins.code == JMP_JNE_X {
                let target = i as i64 + 1 + i64::from(ins.off);
                assert!(target < p.len() as i64 && target > i as i64);
            }
        }
    }

    #[test]
    fn unknown_access_letters_are_ignored_as_runc_does_but_not_all_of_them() {
        let typo: LinuxDeviceCgroup = serde_json::from_str(
            r#"{"allow":false,"type":"c","major":1,"minor":11,"access":"rwa"}"#,
        )
        .unwrap();
        let r = rules(&[typo]).expect("rwa is rw");
        assert_eq!(r[0].access, ACC_READ | ACC_WRITE);
        let bad: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":true,"access":"xyz"}"#).unwrap();
        let err = rules(&[bad]).unwrap_err().to_string();
        assert!(err.contains("linux.resources.devices[0].access"), "{err}");
    }
}
