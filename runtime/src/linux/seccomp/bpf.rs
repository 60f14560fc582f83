//! The hand-written parts of the BPF programs: what seccompiler cannot express.

use seccompiler::{sock_filter, BpfProgram};

use super::{
    Abi, AUDIT_ARCH_X86_64, BPF_JEQ_K, BPF_JMP_JA, BPF_JSET_K, BPF_LD_W_ABS, BPF_RET_K,
    X32_SYSCALL_BIT,
};

const BPF_JGT_K: u16 = 0x25;

fn ins(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The gate: syscalls of an ABI outside `abis` (and x32 ones unless `x32`) kill the thread,
/// libseccomp's default for a bad architecture.
pub(super) fn gate(abis: &[Abi], x32: bool) -> BpfProgram {
    // Jump targets are resolved at the end: the last instruction allows, the one before kills.
    enum To {
        Next,
        Allow,
        Kill,
    }
    let mut code: Vec<(u16, u32, To, To)> = vec![(BPF_LD_W_ABS, 4, To::Next, To::Next)];
    for abi in abis.iter().filter(|a| **a != Abi::X86_64) {
        code.push((BPF_JEQ_K, abi.audit(), To::Allow, To::Next));
    }
    if abis.contains(&Abi::X86_64) {
        code.push((BPF_JEQ_K, AUDIT_ARCH_X86_64, To::Next, To::Kill));
        code.push((BPF_LD_W_ABS, 0, To::Next, To::Next));
        let x32_to = if x32 { To::Allow } else { To::Kill };
        code.push((BPF_JSET_K, X32_SYSCALL_BIT as u32, x32_to, To::Allow));
    } else {
        code.push((BPF_JMP_JA, 0, To::Kill, To::Kill));
    }
    let kill = code.len();
    let allow = kill + 1;
    let offset = |i: usize, to: &To| -> u8 {
        match to {
            To::Next => 0,
            To::Kill => (kill - i - 1) as u8,
            To::Allow => (allow - i - 1) as u8,
        }
    };
    let mut prog: BpfProgram = code
        .iter()
        .enumerate()
        .map(|(i, (op, k, jt, jf))| {
            if *op == BPF_JMP_JA {
                sock_filter {
                    code: *op,
                    jt: 0,
                    jf: 0,
                    k: u32::from(offset(i, jt)),
                }
            } else {
                sock_filter {
                    code: *op,
                    jt: offset(i, jt),
                    jf: offset(i, jf),
                    k: *k,
                }
            }
        })
        .collect();
    prog.push(sock_filter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_KILL_THREAD,
    });
    prog.push(sock_filter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ALLOW,
    });
    prog
}

/// Makes `prog` (a default-action filter built by seccompiler for one ABI) answer ENOSYS for
/// every syscall numbered above `max`, the highest the profile names, before anything else:
/// a syscall newer than the profile must look unimplemented, so that programs fall back to
/// older ones (glibc's clone3 → clone), rather than get the default action's EPERM. This is
/// runc's -ENOSYS stub (libcontainer/seccomp/patchbpf), placed after the program's ABI check.
/// `max_x32`: the same bound for x32 syscalls (they carry X32_SYSCALL_BIT), if they are allowed.
pub(super) fn insert_enosys_stub(prog: &mut BpfProgram, max: u32, max_x32: Option<u32>) {
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    // seccompiler's prologue is: ld arch; jeq <abi>, +1; ret; the stub goes right after it
    // and ends by loading the syscall number, which the rest reloads anyway.
    let stub = match max_x32 {
        Some(max_x32) => vec![
            ins(BPF_LD_W_ABS, 0, 0, 0),
            ins(BPF_JSET_K, X32_SYSCALL_BIT as u32, 0, 1),
            ins(BPF_JGT_K, max_x32, 1, 2),
            ins(BPF_JGT_K, max, 0, 1),
            ins(BPF_RET_K, enosys, 0, 0),
        ],
        None => vec![
            ins(BPF_LD_W_ABS, 0, 0, 0),
            ins(BPF_JGT_K, max, 0, 1),
            ins(BPF_RET_K, enosys, 0, 0),
        ],
    };
    prog.splice(3..3, stub);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a classic BPF program the way the kernel does for seccomp_data{nr, arch}.
    fn eval(prog: &[sock_filter], nr: u32, arch: u32) -> u32 {
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let i = &prog[pc];
            pc += 1;
            match i.code {
                BPF_LD_W_ABS => acc = if i.k == 0 { nr } else { arch },
                BPF_RET_K => return i.k,
                BPF_JMP_JA => pc += i.k as usize,
                op => {
                    let hit = match op {
                        BPF_JEQ_K => acc == i.k,
                        BPF_JGT_K => acc > i.k,
                        BPF_JSET_K => acc & i.k != 0,
                        _ => panic!("opcode {op:#x}"),
                    };
                    pc += usize::from(if hit { i.jt } else { i.jf });
                }
            }
        }
    }

    fn default_filter() -> BpfProgram {
        // The shape seccompiler emits: arch check, then "everything gets EPERM".
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        vec![
            ins(BPF_LD_W_ABS, 4, 0, 0),
            ins(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
            ins(BPF_RET_K, libc::SECCOMP_RET_ALLOW, 0, 0),
            ins(BPF_LD_W_ABS, 0, 0, 0),
            ins(BPF_RET_K, eperm, 0, 0),
        ]
    }

    #[test]
    fn syscalls_beyond_the_profile_get_enosys_the_others_the_default() {
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let mut prog = default_filter();
        insert_enosys_stub(&mut prog, 435, None);
        assert_eq!(eval(&prog, 1000, AUDIT_ARCH_X86_64), enosys);
        assert_eq!(eval(&prog, 272, AUDIT_ARCH_X86_64), eperm);
        assert_eq!(eval(&prog, 435, AUDIT_ARCH_X86_64), eperm);
        let mut prog = default_filter();
        let x32 = X32_SYSCALL_BIT as u32;
        insert_enosys_stub(&mut prog, 435, Some(x32 | 300));
        assert_eq!(eval(&prog, x32 | 301, AUDIT_ARCH_X86_64), enosys);
        assert_eq!(eval(&prog, x32 | 12, AUDIT_ARCH_X86_64), eperm);
        assert_eq!(eval(&prog, 436, AUDIT_ARCH_X86_64), enosys);
    }

    #[test]
    fn the_gate_kills_other_abis() {
        let prog = gate(&[Abi::X86_64], false);
        assert_eq!(eval(&prog, 1, AUDIT_ARCH_X86_64), libc::SECCOMP_RET_ALLOW);
        assert_eq!(eval(&prog, 1, 0x4000_0003), libc::SECCOMP_RET_KILL_THREAD);
        assert_eq!(
            eval(&prog, X32_SYSCALL_BIT as u32 | 1, AUDIT_ARCH_X86_64),
            libc::SECCOMP_RET_KILL_THREAD
        );
    }
}
