//! dockerd 20.10 driving the runtime under test (`--add-runtime berth=<BERTH_TEST_RUNTIME>`):
//! foreground, detached and tty runs, exec, top, pause/unpause, stop/kill/rm, restart
//! policies, runtime errors in docker's message, and docker's generated bundle (libnetwork
//! prestart hook, default seccomp profile, sysctls). Each test has its own dockerd; its
//! `shutdown` fails the test if anything (process, mount, cgroup, shim socket) was left.

use std::time::Duration;

use spec_tests::engines::docker::Dockerd;
use spec_tests::runtime::{Bundle, Runtime};

#[test]
fn docker_run_foreground_with_default_seccomp_profile_sysctls_and_exit_status() {
    let d = Dockerd::start().unwrap();
    // Docker's default seccomp profile (no --security-opt): the process is filtered.
    let out = d
        .run_with(
            &["--rm", "--sysctl", "net.ipv4.ip_forward=1"],
            &[
                "sh",
                "-c",
                "echo out; echo err >&2; grep '^Seccomp:' /proc/self/status; \
                 cat /proc/sys/net/ipv4/ip_forward; exit 7",
            ],
        )
        .unwrap();
    assert_eq!(out.code, Some(7), "{out}");
    assert!(out.stdout.contains("out\n"), "{out}");
    assert!(out.stderr.contains("err\n"), "{out}");
    assert!(
        out.stdout.contains("Seccomp:\t2"),
        "seccomp filter mode: {out}"
    );
    assert!(out.stdout.ends_with("1\n"), "sysctl applied: {out}");
    // The profile blocks what it should: unshare(2) of a user namespace without caps.
    let blocked = d
        .run(&["sh", "-c", "unshare -U true && echo allowed || echo denied"])
        .unwrap();
    assert!(blocked.stdout.contains("denied"), "{blocked}");
    // And unconfined really is unconfined.
    let unconfined = d
        .run_with(
            &["--rm", "--security-opt", "seccomp=unconfined"],
            &["grep", "^Seccomp:", "/proc/self/status"],
        )
        .unwrap();
    assert!(unconfined.stdout.contains("Seccomp:\t0"), "{unconfined}");
    d.shutdown().unwrap();
}

#[test]
fn docker_detached_container_with_exec_top_pause_stop_kill_and_rm() {
    let d = Dockerd::start().unwrap();
    let id = d
        .run_detached(&[], &["sh", "-c", "echo started; exec sleep 1000"])
        .unwrap();
    d.wait_inspect(&id, "{{.State.Status}}", "running").unwrap();
    // Docker's bundle carries libnetwork's prestart hook; the runtime ran it (create succeeded).
    let config = std::fs::read_to_string(d.bundle_dir(&id).join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let prestart = config["hooks"]["prestart"].to_string();
    assert!(prestart.contains("libnetwork-setkey"), "hooks: {prestart}");
    let logs = d.docker(&["logs", &id]).unwrap().ok().unwrap();
    assert_eq!(logs.stdout, "started\n");

    // exec without a tty: output and exit status are the exec'd process's.
    let exec = d
        .docker(&["exec", &id, "sh", "-c", "cat /proc/1/comm; exit 5"])
        .unwrap();
    assert_eq!(exec.code, Some(5), "{exec}");
    assert_eq!(exec.stdout, "sleep\n", "{exec}");
    // The exec'd process is under the container's (docker's default) seccomp profile.
    let filtered = d
        .docker(&["exec", &id, "grep", "^Seccomp:", "/proc/self/status"])
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(filtered.stdout, "Seccomp:\t2\n", "{filtered}");
    // exec -t: a pty inside the container.
    let exec_t = d.docker(&["exec", "-t", &id, "tty"]).unwrap().ok().unwrap();
    assert!(exec_t.stdout.starts_with("/dev/pts/"), "{exec_t}");
    // exec -it on a real terminal: the process reads what we type.
    let pty = d
        .on_pty(&[
            "exec",
            "-it",
            &id,
            "sh",
            "-c",
            "read x; echo got-$x; exit 4",
        ])
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    pty.write("hello\r").unwrap();
    pty.read_until("got-hello", Duration::from_secs(20))
        .unwrap();
    assert_eq!(pty.wait(Duration::from_secs(20)).unwrap(), Some(4));

    // top goes through the runtime's `ps --format json`.
    let top = d.docker(&["top", &id]).unwrap().ok().unwrap();
    assert!(top.stdout.contains("sleep 1000"), "{top}");

    d.docker(&["pause", &id]).unwrap().ok().unwrap();
    d.wait_inspect(&id, "{{.State.Status}}", "paused").unwrap();
    d.docker(&["unpause", &id]).unwrap().ok().unwrap();
    d.wait_inspect(&id, "{{.State.Status}}", "running").unwrap();
    let after = d.docker(&["exec", &id, "true"]).unwrap();
    assert!(after.success(), "exec after unpause: {after}");

    // stop: SIGTERM (ignored by a pid 1 without a handler), then SIGKILL after 1 s.
    d.docker(&["stop", "-t", "1", &id]).unwrap().ok().unwrap();
    d.wait_inspect(&id, "{{.State.Status}}", "exited").unwrap();
    assert_eq!(d.inspect(&id, "{{.State.ExitCode}}").unwrap(), "137");
    d.docker(&["rm", &id]).unwrap().ok().unwrap();

    // kill with a signal the process handles: it exits on its own terms.
    let id = d
        .run_detached(
            &[],
            &[
                "sh",
                "-c",
                "trap 'exit 42' USR1; echo ready; while :; do sleep 0.1; done",
            ],
        )
        .unwrap();
    wait_logs(&d, &id, "ready");
    d.docker(&["kill", "-s", "USR1", &id])
        .unwrap()
        .ok()
        .unwrap();
    d.wait_inspect(&id, "{{.State.Status}}", "exited").unwrap();
    assert_eq!(d.inspect(&id, "{{.State.ExitCode}}").unwrap(), "42");
    // rm -f of a running container kills it.
    let id2 = d.run_detached(&[], &["sleep", "1000"]).unwrap();
    d.docker(&["rm", "-f", &id, &id2]).unwrap().ok().unwrap();
    d.shutdown().unwrap();
}

fn wait_logs(d: &Dockerd, id: &str, needle: &str) {
    spec_tests::engines::wait_for(Duration::from_secs(20), needle, || {
        let logs = d.docker(&["logs", id]).ok()?;
        logs.stdout.contains(needle).then_some(())
    })
    .unwrap();
}

#[test]
fn docker_run_it_gives_the_process_a_terminal() {
    let d = Dockerd::start().unwrap();
    let pty = d
        .on_pty(&[
            "run",
            "--rm",
            "-it",
            "--runtime",
            "berth",
            "--network",
            "none",
            spec_tests::engines::docker::IMAGE,
            "sh",
            "-c",
            "tty; read line; echo you-said-$line; exit 3",
        ])
        .unwrap();
    pty.read_until("/dev/pts/", Duration::from_secs(30))
        .unwrap();
    pty.write("hi\r").unwrap();
    pty.read_until("you-said-hi", Duration::from_secs(20))
        .unwrap();
    assert_eq!(pty.wait(Duration::from_secs(20)).unwrap(), Some(3));
    d.shutdown().unwrap();
}

#[test]
fn docker_restart_policy_restarts_a_failing_container() {
    let d = Dockerd::start().unwrap();
    let id = d
        .run_detached(
            &["--restart", "on-failure:2"],
            &["sh", "-c", "echo run; exit 3"],
        )
        .unwrap();
    d.wait_inspect(&id, "{{.RestartCount}} {{.State.Status}}", "2 exited")
        .unwrap();
    assert_eq!(d.inspect(&id, "{{.State.ExitCode}}").unwrap(), "3");
    let logs = d.docker(&["logs", &id]).unwrap().ok().unwrap();
    assert_eq!(logs.stdout, "run\nrun\nrun\n", "first run and two restarts");
    d.docker(&["rm", &id]).unwrap().ok().unwrap();

    // `always` brings back a container whose process exits successfully.
    let id = d
        .run_detached(&["--restart", "always"], &["sh", "-c", "sleep 0.2"])
        .unwrap();
    spec_tests::engines::wait_for(Duration::from_secs(30), "two restarts", || {
        let n: u32 = d.inspect(&id, "{{.RestartCount}}").ok()?.parse().ok()?;
        (n >= 2).then_some(())
    })
    .unwrap();
    d.docker(&["rm", "-f", &id]).unwrap().ok().unwrap();
    d.shutdown().unwrap();
}

#[test]
fn docker_default_bridge_network_is_set_up_by_the_libnetwork_prestart_hook() {
    let d = Dockerd::start_with_bridge().unwrap();
    let gateway = d.bridge.as_ref().unwrap().gateway.clone();
    // libnetwork-setkey (the prestart hook) hands the container's netns to dockerd, which
    // moves a veth into it and configures it: without the hook there is no eth0.
    let out = d
        .run(&[
            "sh",
            "-c",
            &format!(
                "ip -4 -o addr show eth0; ping -c 1 -W 5 {gateway} >/dev/null && echo reached"
            ),
        ])
        .unwrap();
    assert!(out.success(), "{out}");
    let prefix = gateway.trim_end_matches(".1");
    assert!(out.stdout.contains(&format!("inet {prefix}.")), "{out}");
    assert!(out.stdout.contains("reached"), "{out}");
    d.shutdown().unwrap();
}

/// The runtime's own error for a missing entrypoint, as it prints it when run directly.
fn runtime_message_for_missing_binary() -> String {
    let rt = Runtime::new().unwrap();
    let mut b: Bundle = rt.bundle().unwrap();
    b.config["process"]["args"] = serde_json::json!(["/nonexistent"]);
    b.write_config().unwrap();
    let out = rt
        .cmd(&["run", "--bundle", &b.dir.display().to_string(), &b.id])
        .unwrap();
    let _ = rt.cmd(&["delete", "--force", &b.id]);
    // runc and berth-runtime log in logrus's text form, where quotes are escaped.
    let text = format!("{}{}", out.stderr, out.stdout).replace("\\\"", "\"");
    let start = text
        .find("exec: \"/nonexistent\"")
        .unwrap_or_else(|| panic!("runtime message names the binary: {out}"));
    let line = &text[start..];
    line.lines()
        .next()
        .unwrap()
        .trim_end_matches('"')
        .to_string()
}

#[test]
fn docker_shows_the_runtime_error_for_a_bad_entrypoint() {
    let expected = runtime_message_for_missing_binary();
    let d = Dockerd::start().unwrap();
    let out = d.run(&["/nonexistent"]).unwrap();
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr.contains("OCI runtime create failed"),
        "docker blames the runtime: {out}"
    );
    assert!(
        out.stderr.contains(&expected),
        "docker's message carries the runtime's {expected:?}: {out}"
    );
    d.shutdown().unwrap();
}
