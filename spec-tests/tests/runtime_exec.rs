//! `exec` and `ps`: a new process in a running container joins every namespace of the init,
//! its cgroup and its security settings (or those of `--process`/the flags); its exit status
//! is the runtime's; `ps` lists the container's processes as a table or JSON.

use std::os::fd::OwnedFd;
use std::time::Duration;

use serde_json::json;
use spec_tests::runtime::{
    cap_mask, cgroup_dirs, read_pty_until, status_field, Bundle, ConsoleSocket, Container, RunOpts,
    Runtime,
};

const T: Duration = Duration::from_secs(10);

/// A started container whose init sleeps, with the config edited by `edit`.
fn running<'a>(rt: &'a Runtime, edit: impl FnOnce(&mut Bundle)) -> (Bundle, Container<'a>) {
    let mut b = rt.bundle().unwrap();
    b.config["process"]["args"] = json!(["sleep", "1000"]);
    edit(&mut b);
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    // `start` may return before the init has exec'd (runc): wait until it is the sleep.
    let comm = format!("/proc/{}/comm", c.init.pid);
    spec_tests::engines::wait_for(T, "the init to exec sleep", || {
        (std::fs::read_to_string(&comm).ok()? == "sleep\n").then_some(())
    })
    .unwrap();
    (b, c)
}

/// `exec [flags] ID cmd...`, to completion.
fn exec(c: &Container, flags: &[&str], cmd: &[&str]) -> spec_tests::runtime::Outcome {
    let mut before = vec!["exec"];
    before.extend_from_slice(flags);
    c.verb(&before, cmd).unwrap()
}

/// Kills and reaps a detached exec'd process. The test process is a subreaper, so the process
/// is its child once the runtime's exec has exited: until reaped it would hold up the exit of
/// the container's pid-namespace init (see pid_namespaces(7)), which runc's delete waits for.
fn kill_and_reap(pid: i32) {
    let p = spec_tests::runtime::ProcessId::of(pid).unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    spec_tests::runtime::reap(p, T);
}

fn host_readlink(pid: i32, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn exec_joins_every_namespace_of_the_init() {
    let rt = Runtime::new().unwrap();
    let (_b, c) = running(&rt, |b| {
        b.add_namespace(json!({ "type": "cgroup" }));
    });
    let kinds = ["pid", "net", "ipc", "uts", "mnt", "cgroup"];
    let script = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}"))
        .collect::<Vec<_>>()
        .join("; ");
    let out = exec(&c, &[], &["sh", "-c", &script]).ok().unwrap();
    let inside: Vec<&str> = out.stdout.lines().collect();
    let init: Vec<String> = kinds.iter().map(|k| host_readlink(c.init.pid, k)).collect();
    assert_eq!(inside, init, "exec'd process's namespaces vs the init's");
    // And they are not ours (the test would prove nothing otherwise).
    let me = std::process::id() as i32;
    for k in kinds {
        assert_ne!(host_readlink(c.init.pid, k), host_readlink(me, k), "{k}");
    }
    // In the container's pid namespace, the init is pid 1.
    let comm = exec(&c, &[], &["cat", "/proc/1/comm"]).ok().unwrap();
    assert_eq!(comm.stdout, "sleep\n");
    c.delete_force().unwrap();
}

#[test]
fn exec_joins_the_user_namespace_and_its_mappings() {
    let rt = Runtime::new().unwrap();
    let (_b, c) = running(&rt, |b| {
        b.add_namespace(json!({ "type": "user" }));
        b.config["linux"]["uidMappings"] =
            json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
        b.config["linux"]["gidMappings"] =
            json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    });
    let out = exec(
        &c,
        &["--user", "1000:1000"],
        &["sh", "-c", "readlink /proc/self/ns/user; id -u; id -g"],
    )
    .ok()
    .unwrap();
    assert_eq!(
        out.stdout,
        format!("{}\n1000\n1000\n", host_readlink(c.init.pid, "user"))
    );
    // Seen from the host, the process runs as the mapped ids.
    let pid_file = rt.fresh_path("pid");
    let pf = pid_file.display().to_string();
    exec(
        &c,
        &["--user", "1000:1000", "--detach", "--pid-file", &pf],
        &["sleep", "100"],
    )
    .ok()
    .unwrap();
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status_field(&status, "Uid").unwrap().to_string();
    let gid = status_field(&status, "Gid").unwrap().to_string();
    kill_and_reap(pid);
    assert!(uid.starts_with("101000"), "host uid: {uid}");
    assert!(gid.starts_with("201000"), "host gid: {gid}");
    c.delete_force().unwrap();
}

#[test]
fn exec_joins_the_cgroup_of_the_init() {
    let rt = Runtime::new().unwrap();
    let (_b, c) = running(&rt, |_| {});
    let out = exec(&c, &[], &["cat", "/proc/self/cgroup"]).ok().unwrap();
    let init = std::fs::read_to_string(format!("/proc/{}/cgroup", c.init.pid)).unwrap();
    // Without a cgroup namespace the paths are the host's, so they compare directly.
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&out.stdout), sorted(&init));
    assert!(
        init.contains(&c.id),
        "the init is in the container's cgroup: {init}"
    );
    c.delete_force().unwrap();
}

#[test]
fn exec_exit_status_is_the_exec_d_process_s() {
    let rt = Runtime::new().unwrap();
    let (_b, c) = running(&rt, |_| {});
    let out = exec(&c, &[], &["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(out.code, Some(7), "{out}");
    assert_eq!(out.stdout, "out\n");
    assert!(out.stderr.contains("err\n"), "{out}");
    let killed = exec(&c, &[], &["sh", "-c", "kill -9 $$"]);
    assert_eq!(killed.code, Some(137), "128 + SIGKILL: {killed}");
    c.delete_force().unwrap();
}

#[test]
fn exec_has_the_container_capabilities_or_those_asked_for() {
    let rt = Runtime::new().unwrap();
    let (b, c) = running(&rt, |_| {});
    let configured = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let status = exec(&c, &[], &["cat", "/proc/self/status"]).ok().unwrap();
    for f in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(
            status_field(&status.stdout, f),
            Some(cap_mask(&configured).as_str()),
            "{f}"
        );
    }
    // --cap adds to the bounding, effective and permitted sets.
    let with = exec(
        &c,
        &["--cap", "CAP_SYS_ADMIN"],
        &["cat", "/proc/self/status"],
    )
    .ok()
    .unwrap();
    let mut more = configured.to_vec();
    more.push("CAP_SYS_ADMIN");
    for f in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(
            status_field(&with.stdout, f),
            Some(cap_mask(&more).as_str()),
            "{f} with --cap"
        );
    }
    // --process: the process.json's sets, not the container's.
    let process = json!({
        "args": ["cat", "/proc/self/status"],
        "cwd": "/",
        "env": ["PATH=/bin"],
        "user": { "uid": 0, "gid": 0 },
        "capabilities": { "bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"] }
    });
    let path = b.dir.join("process.json");
    std::fs::write(&path, process.to_string()).unwrap();
    let own = exec(&c, &["--process", &path.display().to_string()], &[])
        .ok()
        .unwrap();
    for f in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(
            status_field(&own.stdout, f),
            Some(cap_mask(&["CAP_CHOWN"]).as_str()),
            "{f} from --process"
        );
    }
    c.delete_force().unwrap();
}

#[test]
fn exec_is_filtered_by_the_container_seccomp_profile() {
    let rt = Runtime::new().unwrap();
    let (_b, c) = running(&rt, |b| {
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }
            ]
        });
    });
    let out = exec(
        &c,
        &[],
        &[
            "sh",
            "-c",
            "grep '^Seccomp:' /proc/self/status; mkdir /tmp/d 2>/dev/null && echo made || echo refused",
        ],
    )
    .ok()
    .unwrap();
    assert_eq!(out.stdout, "Seccomp:\t2\nrefused\n", "{out}");
    // Also with no_new_privs set by the flag (the filter then goes on last).
    let nnp = exec(
        &c,
        &["--no-new-privs"],
        &[
            "sh",
            "-c",
            "mkdir /tmp/d 2>/dev/null && echo made || echo refused",
        ],
    )
    .ok()
    .unwrap();
    assert_eq!(nnp.stdout, "refused\n", "{nnp}");
    c.delete_force().unwrap();
}

#[test]
fn exec_env_cwd_user_and_additional_gids() {
    let rt = Runtime::new().unwrap();
    let (_b, c) = running(&rt, |_| {});
    let out = exec(
        &c,
        &[
            "--env",
            "FOO=bar baz",
            "--cwd",
            "/home/tester",
            "--user",
            "1000:1000",
            "--additional-gids",
            "10",
            "--additional-gids",
            "100",
        ],
        &[
            "sh",
            "-c",
            "echo \"$FOO|$TERM\"; pwd; grep -E '^(Uid|Gid|Groups):' /proc/self/status",
        ],
    )
    .ok()
    .unwrap();
    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    // The container's environment (TERM) stays; --env adds to it.
    assert_eq!(lines[0], "bar baz|xterm");
    assert_eq!(lines[1], "/home/tester");
    assert_eq!(lines[2], "Uid: 1000 1000 1000 1000");
    assert_eq!(lines[3], "Gid: 1000 1000 1000 1000");
    assert_eq!(lines[4], "Groups: 10 100");
    c.delete_force().unwrap();
}

#[test]
fn exec_no_new_privs_flag_sets_it_for_the_process_only() {
    let rt = Runtime::new().unwrap();
    let (_b, c) = running(&rt, |b| {
        b.config["process"]["noNewPrivileges"] = json!(false);
    });
    let grep = ["grep", "^NoNewPrivs:", "/proc/self/status"];
    let without = exec(&c, &[], &grep).ok().unwrap();
    assert_eq!(without.stdout.split_whitespace().nth(1), Some("0"));
    let with = exec(&c, &["--no-new-privs"], &grep).ok().unwrap();
    assert_eq!(with.stdout.split_whitespace().nth(1), Some("1"));
    c.delete_force().unwrap();
}

#[test]
fn exec_tty_sends_the_pty_master_to_the_console_socket() {
    let rt = Runtime::new().unwrap();
    let (_b, mut c) = running(&rt, |_| {});
    let console = ConsoleSocket::new(rt.tmp()).unwrap();
    let pid_file = rt.fresh_path("pid");
    let sock = console.path.display().to_string();
    let pf = pid_file.display().to_string();
    let out = exec(
        &c,
        &[
            "--tty",
            "--console-socket",
            &sock,
            "--detach",
            "--pid-file",
            &pf,
        ],
        &["sh", "-c", "tty; read line; echo got-$line"],
    )
    .ok()
    .unwrap();
    assert!(out.stdout.is_empty(), "{out}");
    let master = console.receive(T).unwrap();
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    c.track(&[pid]);
    read_pty_until(&master, "/dev/pts/", T).unwrap();
    nix::unistd::write(&master, b"x\n").unwrap();
    read_pty_until(&master, "got-x", T).unwrap();
    kill_and_reap(pid);
    c.delete_force().unwrap();
}

#[test]
fn exec_detach_returns_at_once_and_writes_the_pid_file() {
    let rt = Runtime::new().unwrap();
    let (_b, mut c) = running(&rt, |_| {});
    let pid_file = rt.fresh_path("pid");
    let pf = pid_file.display().to_string();
    let start = std::time::Instant::now();
    exec(&c, &["--detach", "--pid-file", &pf], &["sleep", "100"])
        .ok()
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    c.track(&[pid]);
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm, "sleep\n");
    assert_eq!(host_readlink(pid, "pid"), host_readlink(c.init.pid, "pid"));
    // The runtime's `ps --format json` lists it beside the init.
    let ps = c
        .verb(&["ps", "--format", "json"], &[])
        .unwrap()
        .ok()
        .unwrap();
    let pids: Vec<i32> = serde_json::from_str(ps.stdout.trim()).unwrap();
    assert!(
        pids.contains(&pid) && pids.contains(&c.init.pid),
        "{pids:?}"
    );
    kill_and_reap(pid);
    c.delete_force().unwrap();
}

#[test]
fn exec_preserve_fds_passes_extra_descriptors() {
    let rt = Runtime::new().unwrap();
    let (_b, c) = running(&rt, |_| {});
    let path = rt.fresh_path("fd3");
    let file = std::fs::File::create(&path).unwrap();
    let mut args = vec!["exec", "--preserve-fds", "1", c.id.as_str()];
    args.extend(["sh", "-c", "echo via-fd3 >&3"]);
    let out = rt
        .cmd_opts(
            &args,
            RunOpts {
                extra_fds: vec![(3, OwnedFd::from(file))],
                ..RunOpts::default()
            },
        )
        .unwrap();
    assert!(out.success(), "{out}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "via-fd3\n");
    // Without --preserve-fds, fd 3 is closed in the process.
    let file = std::fs::File::create(rt.fresh_path("fd3b")).unwrap();
    let mut args = vec!["exec", c.id.as_str()];
    args.extend(["sh", "-c", "echo x >&3"]);
    let out = rt
        .cmd_opts(
            &args,
            RunOpts {
                extra_fds: vec![(3, OwnedFd::from(file))],
                ..RunOpts::default()
            },
        )
        .unwrap();
    assert!(!out.success(), "fd 3 must not leak into the process: {out}");
    c.delete_force().unwrap();
}

#[test]
fn exec_process_file_sets_args_env_cwd_and_user() {
    let rt = Runtime::new().unwrap();
    let (b, c) = running(&rt, |_| {});
    let process = json!({
        "args": ["sh", "-c", "echo \"$ONLY\"; env | grep -c TERM; pwd; id -u; exit 3"],
        "cwd": "/tmp",
        "env": ["PATH=/bin", "ONLY=from-file"],
        "user": { "uid": 1000, "gid": 1000 }
    });
    let path = b.dir.join("p.json");
    std::fs::write(&path, process.to_string()).unwrap();
    let out = exec(&c, &["--process", &path.display().to_string()], &[]);
    assert_eq!(out.code, Some(3), "{out}");
    // Exactly the file's environment: not the container's TERM.
    assert_eq!(out.stdout, "from-file\n0\n/tmp\n1000\n");
    c.delete_force().unwrap();
}

#[test]
fn exec_cgroup_puts_the_process_in_a_sub_cgroup() {
    let rt = Runtime::new().unwrap();
    let (_b, c) = running(&rt, |_| {});
    let dirs = cgroup_dirs(&c.id);
    assert!(!dirs.is_empty());
    for d in &dirs {
        std::fs::create_dir(d.join("sub")).unwrap();
        // A v1 cpuset cgroup takes no process until it has cpus and mems.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = std::fs::read_to_string(d.join(f)) {
                std::fs::write(d.join("sub").join(f), v).unwrap();
            }
        }
    }
    let out = exec(&c, &["--cgroup", "sub"], &["cat", "/proc/self/cgroup"]);
    let memory_only = exec(
        &c,
        &["--cgroup", "memory:sub"],
        &["cat", "/proc/self/cgroup"],
    );
    for d in &dirs {
        let _ = std::fs::remove_dir(d.join("sub"));
    }
    let out = out.ok().unwrap();
    let want = format!("/{}/{}/sub", spec_tests::runtime::CGROUP_PARENT, c.id);
    let line = |text: &str, ctrl: &str| -> String {
        text.lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|x| x == ctrl))
            })
            .unwrap_or_else(|| panic!("no {ctrl} line in {text}"))
            .to_string()
    };
    assert!(line(&out.stdout, "memory").ends_with(&want), "{out}");
    assert!(line(&out.stdout, "pids").ends_with(&want), "{out}");
    let m = memory_only.ok().unwrap();
    assert!(line(&m.stdout, "memory").ends_with(&want), "{m}");
    assert!(!line(&m.stdout, "pids").ends_with("/sub"), "{m}");
    c.delete_force().unwrap();
}

/// True if the runtime under test has a `pause` command (it lands separately in berth).
fn has_pause(rt: &Runtime) -> bool {
    rt.cmd(&["pause", "--help"]).is_ok_and(|o| o.success())
}

#[test]
fn exec_in_a_paused_container_needs_ignore_paused() {
    let rt = Runtime::new().unwrap();
    if !has_pause(&rt) {
        eprintln!("skipped: the runtime under test has no `pause`");
        return;
    }
    let (b, c) = running(&rt, |_| {});
    c.verb(&["pause"], &[]).unwrap().ok().unwrap();
    let refused = exec(&c, &[], &["true"]);
    assert!(!refused.success(), "{refused}");
    assert!(
        refused.stderr.to_lowercase().contains("paused"),
        "the error says why: {refused}"
    );
    // The exec'd process starts frozen: a runtime may only return once it runs (runc waits
    // for it), so the exec is left running until the resume.
    let pid_file = rt.fresh_path("pid");
    let pf = pid_file.display().to_string();
    let pending = rt
        .spawn(
            &[
                "exec",
                "--ignore-paused",
                "--detach",
                "--pid-file",
                &pf,
                &c.id,
                "sh",
                "-c",
                "echo ran > /tmp/ran",
            ],
            RunOpts::default(),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    c.verb(&["resume"], &[]).unwrap().ok().unwrap();
    pending.wait(T).unwrap().ok().unwrap();
    let pid: Option<i32> = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let ran = b.rootfs().join("tmp/ran");
    spec_tests::engines::wait_for(T, "the exec'd process to run after resume", || {
        std::fs::read_to_string(&ran).ok().filter(|s| s == "ran\n")
    })
    .unwrap();
    if let Some(pid) = pid {
        kill_and_reap(pid);
    }
    c.delete_force().unwrap();
}

#[test]
fn ps_lists_the_container_processes_as_a_table_and_as_json() {
    let rt = Runtime::new().unwrap();
    let (_b, c) = running(&rt, |_| {});
    let json = c
        .verb(&["ps", "--format", "json"], &[])
        .unwrap()
        .ok()
        .unwrap();
    let pids: Vec<i32> = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(pids, vec![c.init.pid]);
    let table = c.verb(&["ps"], &[]).unwrap().ok().unwrap();
    let mut lines = table.stdout.lines();
    let header = lines.next().unwrap();
    assert!(header.contains("PID") && header.contains("CMD"), "{table}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{table}");
    assert!(rows[0].contains("sleep 1000"), "{table}");
    assert!(
        rows[0].split_whitespace().nth(1) == Some(&c.init.pid.to_string()),
        "{table}"
    );
    // ps options after the id replace -ef.
    let custom = c.verb(&["ps"], &["-o", "pid,comm"]).unwrap().ok().unwrap();
    let rows: Vec<Vec<&str>> = custom
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], vec!["PID", "COMMAND"], "{custom}");
    assert_eq!(
        rows[1..],
        [vec![c.init.pid.to_string().as_str(), "sleep"]],
        "{custom}"
    );
    c.delete_force().unwrap();
}

#[test]
fn foreground_exec_exits_while_flooded_with_forwarded_signals() {
    let rt = Runtime::new().unwrap();
    let (_b, c) = running(&rt, |_| {});
    // Signals keep coming while the exec'd process ends and the runtime tears down its
    // signal forwarding: the runtime must still exit (berth once spun forever on a signal
    // arriving after its forwarder had closed).
    let spawned = rt
        .spawn(
            &[
                "exec",
                &c.id,
                "sh",
                "-c",
                "trap '' USR1; echo armed; sleep 0.3",
            ],
            RunOpts::default(),
        )
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(spawned.pid());
    // Only once the runtime handles SIGUSR1, with a handler (SigCgt bit 9) or by blocking it
    // to read it from a signalfd (SigBlk): before that the default action would kill it.
    let status = format!("/proc/{}/status", spawned.pid());
    spec_tests::engines::wait_for(T, "the runtime to catch SIGUSR1", || {
        let text = std::fs::read_to_string(&status).ok()?;
        let mask = |field| u64::from_str_radix(status_field(&text, field)?, 16).ok();
        let handled = mask("SigCgt")? | mask("SigBlk")?;
        (handled & (1 << 9) != 0).then_some(())
    })
    .unwrap();
    // And once the process ignores it (else a forwarded signal ends it, as it should).
    spec_tests::engines::wait_for(T, "the trap", || {
        spawned.stdout_now().contains("armed").then_some(())
    })
    .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_micros(50));
            }
        })
    };
    let out = spawned.wait(T);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flood.join().unwrap();
    let out = out.unwrap();
    assert_eq!(out.code, Some(0), "{out}");
    c.delete_force().unwrap();
}

#[test]
fn exec_bad_input_gives_clear_errors() {
    let rt = Runtime::new().unwrap();
    let (b, c) = running(&rt, |_| {});
    // No command.
    let none = c.verb(&["exec"], &[]).unwrap().failed().unwrap();
    assert!(!none.stderr.trim().is_empty(), "{none}");
    // A --process file that is not a process.
    let bad = b.dir.join("bad.json");
    std::fs::write(&bad, "{\"args\": 5}").unwrap();
    let out = exec(&c, &["--process", &bad.display().to_string()], &[])
        .failed()
        .unwrap();
    assert!(
        out.stderr.contains("args") || out.stderr.contains("json"),
        "{out}"
    );
    // A binary that does not exist: the error names it, the container keeps running.
    let missing = exec(&c, &[], &["/nonexistent"]).failed().unwrap();
    assert!(missing.stderr.contains("/nonexistent"), "{missing}");
    assert_eq!(c.status().unwrap(), "running");
    // An unknown container.
    let unknown = rt.cmd(&["exec", "no-such-container", "true"]).unwrap();
    let unknown = unknown.failed().unwrap();
    assert!(
        unknown.stderr.contains("no-such-container") || unknown.stderr.contains("does not exist"),
        "{unknown}"
    );
    // A stopped container.
    c.kill(&["KILL"]).unwrap().ok().unwrap();
    c.wait_stopped(T).unwrap();
    let stopped = exec(&c, &[], &["true"]).failed().unwrap();
    assert!(
        stopped.stderr.contains("stopped") || stopped.stderr.contains("not running"),
        "{stopped}"
    );
    c.delete().unwrap();
}
