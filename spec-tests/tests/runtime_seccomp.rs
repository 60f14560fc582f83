//! `linux.seccomp`: every action (ALLOW, ERRNO with errnoRet, KILL, KILL_THREAD,
//! KILL_PROCESS, TRAP, TRACE, LOG, NOTIFY with a listener agent), every operator, flags, a
//! docker-default-like profile, filters installed late enough for the runtime's own setup, and
//! malformed profiles failing at create with the offending entry named.
//!
//! The syscalls under test are harmless ones the berth-probe helper calls directly:
//! getppid(2) (never fails by itself) and getpriority(2) (its `who` argument is ours to pick).

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use spec_tests::runtime::security::{default_seccomp_profile, install_host_program, NotifyAgent};
use spec_tests::runtime::{is_berth, Bundle, Runtime};

const GETPPID: i64 = libc::SYS_getppid;
const GETPRIORITY: i64 = libc::SYS_getpriority;
/// sched_get_priority_max(2): nothing but the probe calls it (busybox sh calls getppid).
const PRIOMAX: i64 = libc::SYS_sched_get_priority_max;
const EXDEV: i32 = libc::EXDEV;
const PROBE: &str = env!("CARGO_BIN_EXE_berth-probe");

fn probe_bundle(rt: &Runtime) -> Bundle {
    let b = rt.bundle().unwrap();
    install_host_program(&b.rootfs(), Path::new(PROBE), "/bin/berth-probe").unwrap();
    b
}

/// Runs `script` under `seccomp`; returns (stdout, stderr).
fn run(seccomp: Value, script: &str) -> (String, String) {
    let rt = Runtime::new().unwrap();
    let mut b = probe_bundle(&rt);
    b.sh(script);
    b.config["linux"]["seccomp"] = seccomp;
    let fin = rt.run_to_exit(&b).unwrap();
    (fin.stdout, fin.stderr)
}

/// A default-ALLOW profile with one rule.
fn one_rule(rule: Value) -> Value {
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule] })
}

/// The default profile with `name` taken out of its allowlist, plus `extra` rules.
fn default_without(name: &str, extra: Vec<Value>) -> Value {
    let mut p = default_seccomp_profile();
    let names = p["syscalls"][0]["names"].as_array_mut().unwrap();
    names.retain(|n| n != name);
    p["syscalls"].as_array_mut().unwrap().extend(extra);
    p
}

#[test]
fn errno_returns_errno_ret_or_eperm() {
    let p = json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        { "names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": EXDEV },
        { "names": ["getppid"], "action": "SCMP_ACT_ERRNO" }
    ]});
    let (out, _) = run(
        p,
        &format!("berth-probe syscall {GETPRIORITY} 0 0; berth-probe syscall {GETPPID}"),
    );
    assert_eq!(out, format!("err {EXDEV}\nerr {}\n", libc::EPERM));
}

#[test]
fn allow_passes_listed_syscalls_and_default_errno_ret_answers_the_rest() {
    let mut p = default_without("getpriority", vec![]);
    p["defaultErrnoRet"] = json!(EXDEV);
    let (out, _) = run(
        p,
        &format!("berth-probe syscall {GETPRIORITY} 0 0; berth-probe syscall {GETPPID}"),
    );
    assert_eq!(
        out,
        format!("err {EXDEV}\nok 0\n"),
        "getppid is 0 in a new pid ns"
    );
}

#[test]
fn kill_and_kill_thread_end_only_the_calling_thread() {
    for action in ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"] {
        let p = one_rule(json!({ "names": ["sched_get_priority_max"], "action": action }));
        let (out, err) = run(p, &format!("berth-probe thread {PRIOMAX}; echo rc=$?"));
        assert_eq!(out, "main survived\nrc=0\n", "{action}: {err}");
    }
}

#[test]
fn kill_process_ends_the_whole_process_with_sigsys() {
    let p =
        one_rule(json!({ "names": ["sched_get_priority_max"], "action": "SCMP_ACT_KILL_PROCESS" }));
    let (out, _) = run(p, &format!("berth-probe thread {PRIOMAX}; echo rc=$?"));
    assert_eq!(out, format!("rc={}\n", 128 + libc::SIGSYS));
}

#[test]
fn trap_delivers_a_catchable_sigsys_naming_the_syscall() {
    let p = one_rule(json!({ "names": ["sched_get_priority_max"], "action": "SCMP_ACT_TRAP" }));
    let (out, _) = run(p, &format!("berth-probe trap {PRIOMAX}"));
    assert_eq!(out, format!("trapped {PRIOMAX}\n"));
}

#[test]
fn trace_hands_errno_ret_to_the_tracer_and_fails_with_enosys_untraced() {
    let p = one_rule(
        json!({ "names": ["sched_get_priority_max"], "action": "SCMP_ACT_TRACE", "errnoRet": 42 }),
    );
    let (out, _) = run(
        p,
        &format!("berth-probe trace {PRIOMAX}; berth-probe syscall {PRIOMAX}"),
    );
    assert_eq!(out, format!("seccomp event 42\nerr {}\n", libc::ENOSYS));
}

#[test]
fn log_allows_the_syscall_under_a_default_errno() {
    let p = default_without(
        "sched_get_priority_max",
        vec![json!({ "names": ["sched_get_priority_max"], "action": "SCMP_ACT_LOG" })],
    );
    let (out, _) = run(
        p,
        &format!("berth-probe syscall {PRIOMAX}; grep ^Seccomp: /proc/self/status"),
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["ok", "0", "Seccomp:", "2"]
    );
}

#[test]
fn notify_hands_the_listener_fd_and_state_to_the_agent() {
    let rt = Runtime::new().unwrap();
    let agent = NotifyAgent::start(rt.tmp().join("agent.sock"), EXDEV).unwrap();
    let mut b = probe_bundle(&rt);
    b.sh(&format!(
        "berth-probe syscall {PRIOMAX}; berth-probe syscall {GETPRIORITY} 0 0"
    ));
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": agent.path,
        "listenerMetadata": "berth-test-metadata",
        "syscalls": [{ "names": ["sched_get_priority_max"], "action": "SCMP_ACT_NOTIFY" }]
    });
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(
        fin.stdout,
        format!("err {EXDEV}\nok 20\n"),
        "{}",
        fin.stderr
    );
    let log = agent.finish(Duration::from_secs(10)).unwrap();
    assert_eq!(log.fds, 1, "{log:?}");
    assert_eq!(log.notified, [PRIOMAX as i32], "{log:?}");
    let state = log.state.unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "berth-test-metadata", "{state}");
    assert!(state["pid"].as_i64().unwrap_or(0) > 0, "{state}");
    assert_eq!(state["state"]["id"], b.id.as_str(), "{state}");
    assert_eq!(
        state["state"]["bundle"],
        b.dir.display().to_string(),
        "{state}"
    );
}

/// getpriority(PRIO_PROCESS, who) for each `who`: true where the rule's ERRNO(EXDEV) hit.
fn matches(arg: Value, whos: &[u64]) -> Vec<bool> {
    let p = one_rule(json!({
        "names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": EXDEV, "args": [arg]
    }));
    let script: Vec<String> = whos
        .iter()
        .map(|w| format!("berth-probe syscall {GETPRIORITY} 0 {w}"))
        .collect();
    let (out, _) = run(p, &script.join("; "));
    let hit = format!("err {EXDEV}");
    out.lines().map(|l| l == hit).collect()
}

fn op(name: &str, value: u64) -> Value {
    json!({ "index": 1, "value": value, "op": name })
}

#[test]
fn operator_eq_compares_all_64_bits() {
    assert_eq!(
        matches(op("SCMP_CMP_EQ", 100), &[99, 100, 101, 0x1_0000_0064]),
        [false, true, false, false]
    );
}

#[test]
fn operator_ne() {
    assert_eq!(
        matches(op("SCMP_CMP_NE", 100), &[99, 100, 101]),
        [true, false, true]
    );
}

#[test]
fn operator_lt() {
    assert_eq!(
        matches(op("SCMP_CMP_LT", 100), &[99, 100, 101]),
        [true, false, false]
    );
}

#[test]
fn operator_le() {
    assert_eq!(
        matches(op("SCMP_CMP_LE", 100), &[99, 100, 101]),
        [true, true, false]
    );
}

#[test]
fn operator_ge() {
    assert_eq!(
        matches(op("SCMP_CMP_GE", 100), &[99, 100, 101]),
        [false, true, true]
    );
}

#[test]
fn operator_gt() {
    assert_eq!(
        matches(op("SCMP_CMP_GT", 100), &[99, 100, 101]),
        [false, false, true]
    );
}

#[test]
fn operator_masked_eq_compares_the_masked_argument_with_value_two() {
    let arg = json!({ "index": 1, "value": 0xf0, "valueTwo": 0x60, "op": "SCMP_CMP_MASKED_EQ" });
    assert_eq!(matches(arg, &[0x60, 0x65, 0x70]), [true, true, false]);
}

#[test]
fn default_profile_refuses_unshare_mount_keyctl_and_runs_ordinary_programs() {
    let rt = Runtime::new().unwrap();
    let mut b = probe_bundle(&rt);
    // CAP_SYS_ADMIN so that only seccomp stands between the container and these syscalls.
    let caps = json!([
        "CAP_SYS_ADMIN",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
        "CAP_NET_BIND_SERVICE"
    ]);
    b.config["process"]["capabilities"] =
        json!({ "bounding": caps, "effective": caps, "permitted": caps });
    b.config["linux"]["seccomp"] = default_seccomp_profile();
    b.sh(&format!(
        "unshare -m true 2>/dev/null; echo unshare=$?; \
         mount -t tmpfs none /mnt 2>/dev/null; echo mount=$?; \
         berth-probe syscall {} 0 -3 0; \
         berth-probe syscall {}; \
         ls / | grep -c etc; echo hello | tr a-z A-Z; sort /etc/group | head -n 1; \
         sleep 0.01 & wait; echo background=$?; grep ^Seccomp: /proc/self/status",
        libc::SYS_keyctl,
        libc::SYS_clone3,
    ));
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(
        fin.stdout,
        format!(
            "unshare=1\nmount=1\nerr {}\nerr {}\n1\nHELLO\nnogroup:x:65534:\nbackground=0\nSeccomp:\t2\n",
            libc::EPERM,
            libc::ENOSYS
        ),
        "stderr: {}",
        fin.stderr
    );
}

#[test]
fn filter_flags_load() {
    if !is_berth() {
        return; // runc 1.1: "seccomp flags are not yet supported by runc"
    }
    let mut p =
        one_rule(json!({ "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": EXDEV }));
    p["flags"] = json!([
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_TSYNC"
    ]);
    let (out, _) = run(p, &format!("berth-probe syscall {GETPPID}"));
    assert_eq!(out, format!("err {EXDEV}\n"));
}

/// With noNewPrivileges the filter goes on right before execve: a profile refusing what the
/// runtime needs to build the container (mounts, pivot_root, hostname, credentials and
/// capabilities) still starts it, as a non-root user.
#[test]
fn filter_comes_after_the_runtime_setup_it_would_block() {
    let blocked = [
        "mount",
        "umount2",
        "pivot_root",
        "sethostname",
        "setresuid",
        "setresgid",
        "setgroups",
        "capset",
        "keyctl",
        "chdir",
        "prctl",
        "setns",
        "unshare",
    ];
    let p = one_rule(json!({ "names": blocked, "action": "SCMP_ACT_ERRNO" }));
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    b.config["linux"]["seccomp"] = p;
    b.sh("hostname; grep -E '^(Uid|Seccomp):' /proc/self/status | tr -s '\\t ' ' '");
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(
        fin.stdout, "berth\nUid: 1000 1000 1000 1000\nSeccomp: 2\n",
        "{}",
        fin.stderr
    );
}

/// Without noNewPrivileges the filter must go on while the init still has CAP_SYS_ADMIN.
#[test]
fn without_no_new_privileges_a_non_root_user_still_gets_the_filter() {
    if !is_berth() {
        return; // runc 1.1 crashes (nil pointer) on this bundle
    }
    let rt = Runtime::new().unwrap();
    let mut b = probe_bundle(&rt);
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    b.config["linux"]["seccomp"] = default_without(
        "getppid",
        vec![json!({ "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": EXDEV })],
    );
    b.sh(&format!(
        "berth-probe syscall {GETPPID}; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status | tr -d ' \\t'"
    ));
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(
        fin.stdout,
        format!("err {EXDEV}\nNoNewPrivs:0\nSeccomp:2\n"),
        "{}",
        fin.stderr
    );
}

/// `create` with a bad profile fails before anything exists, naming the entry.
fn create_fails_naming(seccomp: Value, needles: &[&str]) {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.config["linux"]["seccomp"] = seccomp;
    b.write_config().unwrap();
    let dir = b.dir.display().to_string();
    let out = rt.cmd(&["create", "--bundle", &dir, &b.id]).unwrap();
    let out = out.failed().unwrap();
    for n in needles {
        assert!(out.stderr.contains(n), "{n:?} not in: {}", out.stderr);
    }
    if is_berth() {
        rt.assert_no_leaks(&b.id, &b.dir, &[]).unwrap();
    } else {
        let _ = rt.cmd(&["delete", "--force", &b.id]);
    }
}

#[test]
fn malformed_profiles_fail_at_create_naming_the_entry() {
    let ok = json!({ "names": ["getppid"], "action": "SCMP_ACT_ALLOW" });
    create_fails_naming(
        json!({ "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [ok, { "names": ["getpid"], "action": "SCMP_ACT_BOGUS" }] }),
        &["SCMP_ACT_BOGUS"],
    );
    create_fails_naming(
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["getpid"],
                "action": "SCMP_ACT_ERRNO", "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_BOGUS" }] }] }),
        &["SCMP_CMP_BOGUS"],
    );
    if !is_berth() {
        return; // runc reports the same problems in its own words
    }
    create_fails_naming(
        json!({ "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_BOGUS" }] }),
        &["linux.seccomp.syscalls[0].action"],
    );
    create_fails_naming(
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [ok, { "names": ["getpid"],
                "action": "SCMP_ACT_ERRNO", "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_BOGUS" }] }] }),
        &["linux.seccomp.syscalls[1].args[0].op"],
    );
    create_fails_naming(
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [ok, ok, { "names": ["personality"],
                "action": "SCMP_ACT_ERRNO", "args": [{ "index": 6, "value": 1, "op": "SCMP_CMP_EQ" }] }] }),
        &["linux.seccomp.syscalls[2]", "personality", "index 6"],
    );
    create_fails_naming(
        json!({ "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1 }] }),
        &["linux.seccomp.syscalls[0]", "mkdir", "errnoRet"],
    );
    create_fails_naming(
        json!({ "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }] }),
        &["listenerPath"],
    );
}

/// The final execve goes through a sealed trampoline with execveat(2) (CVE-2019-5736, see
/// runtime/src/linux/security.rs): a profile refusing execveat gets a clear error.
#[test]
fn a_profile_refusing_execveat_is_reported_clearly() {
    if !is_berth() {
        return;
    }
    let (out, err) = run(
        one_rule(json!({ "names": ["execveat"], "action": "SCMP_ACT_ERRNO" })),
        "echo ran",
    );
    assert_eq!(out, "");
    assert!(err.contains("must allow execveat"), "{err}");
}

/// i386 getpriority(2) and getpid(2) numbers, for syscalls made through `int 0x80`.
const I386_GETPRIORITY: i64 = 96;
const I386_GETPID: i64 = 20;

/// `architectures` decides which ABIs may make syscalls at all, and rules apply to each
/// listed ABI with that ABI's own syscall numbers.
#[cfg(target_arch = "x86_64")]
#[test]
fn architectures_admit_listed_abis_with_their_own_numbers_and_kill_the_others() {
    let rule = json!({ "names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": EXDEV });
    let script = format!(
        "berth-probe int80 {I386_GETPRIORITY} 0 0; berth-probe syscall {GETPRIORITY} 0 0; \
         berth-probe int80 {I386_GETPID} >/tmp/pid; echo rc=$?; cut -d' ' -f1 /tmp/pid"
    );
    let mut both = one_rule(rule.clone());
    both["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
    let (out, _) = run(both, &script);
    assert_eq!(out, format!("err {EXDEV}\nerr {EXDEV}\nrc=0\nok\n"));

    let mut native = one_rule(rule);
    native["architectures"] = json!(["SCMP_ARCH_X86_64"]);
    let (out, _) = run(native, &script);
    let killed = format!("rc={}", 128 + libc::SIGSYS);
    assert_eq!(
        out,
        format!("err {EXDEV}\n{killed}\n"),
        "i386 syscalls are killed"
    );
}

#[test]
fn default_action_kill_process_kills_unlisted_syscalls() {
    let mut p = default_without("sched_get_priority_max", vec![]);
    p["defaultAction"] = json!("SCMP_ACT_KILL_PROCESS");
    let (out, _) = run(
        p,
        &format!(
            "berth-probe syscall {GETPRIORITY} 0 0; berth-probe syscall {PRIOMAX} 0; echo rc=$?"
        ),
    );
    assert_eq!(out, format!("ok 20\nrc={}\n", 128 + libc::SIGSYS));
}
