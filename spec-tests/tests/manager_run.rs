//! `berth run` and the container lifecycle, black-box: exit statuses, streams, signals and
//! stop timeouts, logs, restart policies, health checks, `--runtime runc`, terminals and bad
//! input leaving nothing behind. Every test removes its containers on drop, even after a
//! failure, and checks that no mount, monitor or cgroup is left.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;
use spec_tests::manager::containers::{Env, Guard};
use spec_tests::manager::network::BUSYBOX;

#[test]
fn run_returns_the_containers_exit_status_and_keeps_its_streams_apart() -> Result<()> {
    let env = Env::new()?;
    let (code, out, err) = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ])?;
    assert_eq!(code, 3, "stderr: {err}");
    assert_eq!(out, "out\n");
    assert_eq!(err, "err\n");
    env.assert_clean(&[]);
    Ok(())
}

#[test]
fn a_missing_command_exits_127_and_a_non_executable_one_126() -> Result<()> {
    let env = Env::new()?;
    let (code, _, err) = env.run(&["run", "--rm", "--network", "none", BUSYBOX, "nosuchcmd"])?;
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("nosuchcmd"), "{err}");
    let (code, _, err) = env.run(&["run", "--rm", "--network", "none", BUSYBOX, "/etc/passwd"])?;
    assert_eq!(code, 126, "{err}");
    env.assert_clean(&[]);
    Ok(())
}

#[test]
fn bad_flag_values_fail_with_125_naming_the_flag_and_leave_nothing() -> Result<()> {
    let env = Env::new()?;
    for (flag, value) in [
        ("--memory", "abc"),
        ("--restart", "bogus"),
        ("--cpus", "x"),
        ("--pids-limit", "many"),
        ("--ulimit", "nofile"),
        ("--stop-signal", "SIGNOPE"),
        ("-p", "notaport"),
        ("--mount", "type=bind,target=/x"),
        ("--platform", "bogus"),
        ("--log-driver", "syslog"),
        ("--userns", "private"),
        ("-a", "stdnothing"),
    ] {
        let (code, _, err) = env.run(&["run", "--rm", flag, value, BUSYBOX, "true"])?;
        assert_eq!(code, 125, "{flag} {value}: {err}");
        let named = flag.trim_start_matches('-');
        assert!(
            err.contains(named) || err.contains(value),
            "{flag} {value}: the error does not name the flag: {err}"
        );
    }
    let (code, _, err) = env.run(&["run", "--rm", "--network", "nosuchnet", BUSYBOX, "true"])?;
    assert_ne!(code, 0);
    assert!(err.contains("nosuchnet"), "{err}");
    // docker: an unknown flag is 125, a missing image argument 1, -a with -d a conflict (1).
    let (code, _, err) = env.run(&["run", "--no-such-flag", BUSYBOX, "true"])?;
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("--no-such-flag"), "{err}");
    let (code, _, _) = env.run(&["run"])?;
    assert_eq!(code, 1);
    let (code, _, err) = env.run(&["run", "-d", "-a", "stdout", BUSYBOX, "true"])?;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Conflicting options: -a and -d"), "{err}");
    env.assert_clean(&[]);
    Ok(())
}

#[test]
fn an_unknown_image_is_a_clear_error_without_garbage() -> Result<()> {
    let env = Env::new()?;
    let (code, _, err) = env.run(&["run", "--pull", "never", "nosuch/image:1", "true"])?;
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("nosuch/image"), "{err}");
    // A registry that does not answer: the pull fails, nothing is recorded.
    let (code, _, err) = env.run(&["run", "127.0.0.1:9/none/such:1", "true"])?;
    assert_eq!(code, 125, "{err}");
    env.assert_clean(&[]);
    Ok(())
}

#[test]
fn a_taken_name_and_a_published_port_in_use_are_refused() -> Result<()> {
    let env = Env::new()?;
    let port = spec_tests::manager::free_port()?.to_string();
    let publish = format!("127.0.0.1:{port}:80");
    let id = env.ok(&[
        "run", "-d", "--name", "first", "-p", &publish, BUSYBOX, "sleep", "30",
    ])?;
    let (code, _, err) = env.run(&["create", "--name", "first", BUSYBOX])?;
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("Conflict") && err.contains("\"/first\""),
        "{err}"
    );
    let (code, _, err) = env.run(&[
        "run", "-d", "--name", "second", "-p", &publish, BUSYBOX, "sleep", "30",
    ])?;
    assert_ne!(code, 0);
    assert!(err.contains("port is already allocated"), "{err}");
    let names = env.ok(&["ps", "-a", "--format", "{{.Names}}"])?;
    assert_eq!(
        names.trim(),
        "first",
        "the refused containers stay behind: {names}"
    );
    env.ok(&["rm", "-f", "first"])?;
    env.assert_clean(&[id.trim().to_string()]);
    Ok(())
}

#[test]
fn stop_sends_sigterm_then_sigkill_after_the_timeout() -> Result<()> {
    let env = Env::new()?;
    // A shell as pid 1 without a TERM handler ignores TERM: stop has to kill it.
    let id = env.ok(&["run", "-d", "--network", "none", BUSYBOX, "sleep", "60"])?;
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert!(env.ok(&["ps"])?.contains(&id[..12]));
    let t = Instant::now();
    env.ok(&["stop", "-t", "1", &id])?;
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "{took:?}"
    );
    let c = env.inspect(&id)?;
    assert_eq!(c["State"]["Status"], "exited");
    assert_eq!(c["State"]["ExitCode"], 137);
    assert!(env.ok(&["ps", "-a"])?.contains("Exited (137)"));
    assert_eq!(env.ok(&["wait", &id])?.trim(), "137");
    // A TERM handler gets to run and its exit status is recorded.
    let t2 = env.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "trap 'echo bye; exit 0' TERM; while true; do sleep 0.05; done",
    ])?;
    let t2 = t2.trim();
    let t = Instant::now();
    env.ok(&["stop", "-t", "10", t2])?;
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(env.inspect(t2)?["State"]["ExitCode"], 0);
    assert_eq!(env.ok(&["logs", t2])?, "bye\n");
    // --stop-signal is what stop sends.
    let t3 = env.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--stop-signal",
        "USR1",
        BUSYBOX,
        "sh",
        "-c",
        "trap 'exit 7' USR1; while true; do sleep 0.05; done",
    ])?;
    env.ok(&["stop", t3.trim()])?;
    assert_eq!(env.inspect(t3.trim())?["State"]["ExitCode"], 7);
    env.ok(&["rm", &id, t2, t3.trim()])?;
    env.assert_clean(&[id]);
    Ok(())
}

#[test]
fn kill_delivers_the_signal_and_logs_keep_both_streams() -> Result<()> {
    let env = Env::new()?;
    let id = env.ok(&[
        "run", "-d", "--network", "none", BUSYBOX, "sh", "-c",
        "trap 'echo usr1; exit 0' USR1; echo one; echo two >&2; echo three; while true; do sleep 0.05; done",
    ])?;
    let id = id.trim();
    env.until(Duration::from_secs(10), "three in the log", || {
        Ok(env.ok(&["logs", id])?.contains("three"))
    })?;
    env.ok(&["kill", "-s", "USR1", id])?;
    assert_eq!(env.ok(&["wait", id])?.trim(), "0");
    let (_, out, err) = env.run(&["logs", id])?;
    assert_eq!(out, "one\nthree\nusr1\n");
    assert_eq!(err, "two\n");
    assert_eq!(env.ok(&["logs", "--tail", "1", id])?, "usr1\n");
    let stamped = env.ok(&["logs", "-t", "--tail", "1", id])?;
    let (time, rest) = stamped.split_once(' ').context("timestamp prefix")?;
    assert!(time.ends_with('Z') && time.contains('T'), "{stamped}");
    assert_eq!(rest, "usr1\n");
    // The file is docker's json-file format.
    let c = env.inspect(id)?;
    let log = std::fs::read_to_string(c["LogPath"].as_str().context("LogPath")?)?;
    for line in log.lines() {
        let v: Value = serde_json::from_str(line)?;
        assert!(v["log"].is_string() && v["time"].is_string(), "{line}");
        assert!(v["stream"] == "stdout" || v["stream"] == "stderr", "{line}");
    }
    let (code, _, err) = env.run(&["kill", id])?;
    assert_ne!(code, 0, "killing a stopped container must fail");
    assert!(err.contains("is not running"), "{err}");
    Ok(())
}

#[test]
fn restart_policies_restart_failures_and_a_stop_keeps_them_down() -> Result<()> {
    let env = Env::new()?;
    let id = env.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--restart",
        "on-failure:2",
        BUSYBOX,
        "sh",
        "-c",
        "exit 1",
    ])?;
    let id = id.trim();
    env.until(Duration::from_secs(20), "two restarts then exited", || {
        let c = env.inspect(id)?;
        Ok(c["RestartCount"] == 2 && c["State"]["Status"] == "exited")
    })?;
    std::thread::sleep(Duration::from_millis(500));
    let c = env.inspect(id)?;
    assert_eq!(c["RestartCount"], 2);
    assert_eq!(c["State"]["ExitCode"], 1);
    assert_eq!(c["HostConfig"]["RestartPolicy"]["Name"], "on-failure");

    let always = env.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--restart",
        "always",
        BUSYBOX,
        "sh",
        "-c",
        "sleep 0.1",
    ])?;
    let always = always.trim();
    env.until(Duration::from_secs(20), "a restart", || {
        Ok(env.inspect(always)?["RestartCount"].as_u64().unwrap_or(0) >= 1)
    })?;
    env.ok(&["stop", "-t", "1", always])?;
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(env.status(always)?, "exited", "stop must keep it down");
    Ok(())
}

#[test]
fn health_checks_report_unhealthy_then_healthy() -> Result<()> {
    let env = Env::new()?;
    let id = env.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--health-cmd",
        "test -e /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        BUSYBOX,
        "sleep",
        "60",
    ])?;
    let id = id.trim();
    let health = |env: &Env| -> Result<String> {
        Ok(env.inspect(id)?["State"]["Health"]["Status"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    };
    env.until(Duration::from_secs(15), "unhealthy", || {
        Ok(health(&env)? == "unhealthy")
    })?;
    assert!(env.ok(&["ps"])?.contains("(unhealthy)"));
    env.ok(&["exec", id, "sh", "-c", "echo > /tmp/ok"])?;
    env.until(Duration::from_secs(15), "healthy", || {
        Ok(health(&env)? == "healthy")
    })?;
    let c = env.inspect(id)?;
    assert_eq!(c["State"]["Health"]["FailingStreak"], 0);
    assert!(!c["State"]["Health"]["Log"]
        .as_array()
        .context("log")?
        .is_empty());
    Ok(())
}

#[test]
fn runc_drives_the_same_lifecycle_through_its_cli() -> Result<()> {
    let env = Env::new()?;
    let (code, out, err) = env.run(&[
        "run",
        "--rm",
        "--runtime",
        "runc",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "echo hi; exit 4",
    ])?;
    assert_eq!((code, out.as_str()), (4, "hi\n"), "{err}");
    let id = env.ok(&[
        "run",
        "-d",
        "--runtime",
        "runc",
        "--network",
        "none",
        BUSYBOX,
        "sleep",
        "60",
    ])?;
    let id = id.trim();
    assert_eq!(env.inspect(id)?["HostConfig"]["Runtime"], "runc");
    assert_eq!(env.ok(&["exec", id, "echo", "inside"])?, "inside\n");
    env.ok(&["stop", "-t", "1", id])?;
    assert_eq!(env.status(id)?, "exited");
    env.ok(&["rm", id])?;
    env.assert_clean(&[id.to_string()]);
    Ok(())
}

#[test]
fn create_start_pause_rename_and_exec_follow_docker() -> Result<()> {
    spec_tests::skip_rootless!("pause needs a freezer cgroup, which a rootless berth lacks here; manager_rootless's create_start_exec_rename_and_restart_as_the_user covers the rest");
    let env = Env::new()?;
    let id = env.ok(&[
        "create",
        "--name",
        "c1",
        "--network",
        "none",
        "-e",
        "FOO=bar",
        BUSYBOX,
        "sleep",
        "60",
    ])?;
    let id = id.trim();
    assert_eq!(env.status("c1")?, "created");
    assert!(env
        .ok(&["ps", "-a", "--filter", "status=created", "-q"])?
        .contains(&id[..12]));
    env.ok(&["start", "c1"])?;
    assert_eq!(env.status("c1")?, "running");
    assert_eq!(env.ok(&["exec", "c1", "sh", "-c", "echo $FOO"])?, "bar\n");
    assert_eq!(
        env.ok(&["exec", "-w", "/etc", "c1", "sh", "-c", "pwd"])?,
        "/etc\n"
    );
    let (code, _, _) = env.run(&["exec", "c1", "sh", "-c", "exit 9"])?;
    assert_eq!(code, 9);
    // docker: 126 for a command that cannot start; the command's own 255 stays 255.
    let (code, _, err) = env.run(&["exec", "c1", "nosuchcmd"])?;
    assert_eq!(code, 126, "{err}");
    assert!(err.contains("nosuchcmd"), "{err}");
    let (code, _, err) = env.run(&["exec", "c1", "/etc/passwd"])?;
    assert_eq!(code, 126, "{err}");
    let (code, _, _) = env.run(&["exec", "c1", "sh", "-c", "exit 255"])?;
    assert_eq!(code, 255);
    let left: Vec<_> = std::fs::read_dir(env.berth.root().join("containers").join(id))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("exec-"))
        .collect();
    assert!(left.is_empty(), "exec pid files left: {left:?}");
    env.ok(&["pause", "c1"])?;
    assert_eq!(env.status("c1")?, "paused");
    let freezer = Path::new("/sys/fs/cgroup/freezer/berth")
        .join(id)
        .join("freezer.state");
    if freezer.exists() {
        assert_eq!(std::fs::read_to_string(&freezer)?.trim(), "FROZEN");
    }
    env.ok(&["unpause", "c1"])?;
    assert_eq!(env.status("c1")?, "running");
    env.ok(&["rename", "c1", "c2"])?;
    assert_eq!(env.inspect("c2")?["Name"], "/c2");
    let top = env.ok(&["top", "c2"])?;
    assert!(top.contains("sleep 60"), "{top}");
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.State.Status}} {{.Config.Cmd}}", "c2"])?,
        "running [sleep 60]\n"
    );
    let (code, _, err) = env.run(&["rm", "c2"])?;
    assert_ne!(code, 0);
    assert!(err.contains("Stop the container"), "{err}");
    env.ok(&["restart", "-t", "1", "c2"])?;
    assert_eq!(env.status("c2")?, "running");
    env.ok(&["rm", "-f", "c2"])?;
    env.assert_clean(&[id.to_string()]);
    Ok(())
}

#[test]
fn parallel_runs_share_one_store_safely() -> Result<()> {
    let env = Env::new()?;
    let handles: Vec<_> = (0..5)
        .map(|i| {
            let mut cmd = env
                .berth
                .cmd(&[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    BUSYBOX,
                    "sh",
                    "-c",
                    &format!("exit {i}"),
                ])
                .expect("command");
            std::thread::spawn(move || cmd.output().map(|o| o.status.code()))
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let code = h.join().map_err(|_| anyhow::anyhow!("thread panicked"))??;
        assert_eq!(code, Some(i as i32));
    }
    env.assert_clean(&[]);
    Ok(())
}

#[test]
fn signals_sent_to_a_foreground_run_reach_the_container() -> Result<()> {
    let env = Env::new()?;
    let child = env
        .berth
        .cmd(&[
            "run",
            "--rm",
            "--network",
            "none",
            BUSYBOX,
            "sh",
            "-c",
            "trap 'echo got-term; exit 5' TERM; echo ready; while true; do sleep 0.05; done",
        ])?
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let pid = child.id() as i32;
    let mut child = Guard(child);
    let mut stdout = child.0.stdout.take().context("stdout")?;
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut first)?;
    assert_eq!(&first, b"ready\n");
    // SAFETY: kill(2) on the berth process this test spawned.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = child.0.wait()?;
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest)?;
    assert_eq!(rest, "got-term\n");
    assert_eq!(status.code(), Some(5));
    env.assert_clean(&[]);
    Ok(())
}

#[test]
fn a_tty_run_gets_a_terminal_of_its_own() -> Result<()> {
    let env = Env::new()?;
    // script(1) gives berth a terminal, as an interactive user has.
    let cmd = env.berth.cmd(&[
        "run",
        "--rm",
        "-t",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "tty; exit 3",
    ])?;
    let line = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| format!("'{}'", a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("DOCKER_CONFIG", env.berth.docker_config())
        .stdin(std::process::Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert_eq!(out.status.code(), Some(3), "{text}");
    env.assert_clean(&[]);
    Ok(())
}

/// Reads what is available on a non-blocking pty master until `want` shows up in everything read
/// so far, or `deadline` passes (returns what was read either way).
fn read_master_until(master: &std::fs::File, seen: &mut String, want: &str, deadline: Instant) {
    let mut buf = [0u8; 4096];
    while !seen.contains(want) && Instant::now() < deadline {
        match std::io::Read::read(&mut &*master, &mut buf) {
            Ok(0) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(_) => break, // EIO: every slave end is closed
        }
    }
}

#[test]
fn an_interactive_tty_run_takes_the_terminal_size_and_follows_resizes() -> Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let env = Env::new()?;
    let size = |rows, cols| libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // berth gets a terminal of its own (24x80) as its controlling terminal, like a user's shell.
    let pty = nix::pty::openpty(Some(&size(24, 80)), None)?;
    let master = std::fs::File::from(pty.master);
    nix::fcntl::fcntl(
        &master,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )?;
    let mut cmd = env.berth.cmd(&[
        "run",
        "--rm",
        "-it",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "busybox stty size; while read line; do busybox stty size; done",
    ])?;
    cmd.stdin(pty.slave.try_clone()?)
        .stdout(pty.slave.try_clone()?)
        .stderr(pty.slave.try_clone()?);
    // SAFETY: between fork and exec only async-signal-safe calls: setsid(2) and ioctl(2) on fd 0
    // (the pty slave) to make it the new session's controlling terminal.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = Guard(cmd.spawn()?);
    drop(pty.slave);
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    read_master_until(&master, &mut seen, "24 80", deadline);
    assert!(
        seen.contains("24 80"),
        "the container's terminal did not start at 24x80: {seen:?}"
    );

    // Resize the outer terminal: the kernel sends berth SIGWINCH; the container's pty must
    // follow. Each newline makes the shell print its size again, until the new one shows.
    // SAFETY: TIOCSWINSZ on the pty master this test owns, with a valid winsize.
    assert_eq!(
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size(40, 132)) },
        0
    );
    while !seen.contains("40 132") && Instant::now() < deadline {
        std::io::Write::write_all(&mut &master, b"\n")?;
        read_master_until(
            &master,
            &mut seen,
            "40 132",
            Instant::now() + Duration::from_millis(300),
        );
    }
    assert!(
        seen.contains("40 132"),
        "the resize did not reach the container: {seen:?}"
    );

    // End of input (^D at the start of a line) ends the shell, and with it `run`.
    std::io::Write::write_all(&mut &master, b"\x04")?;
    let mut child = child;
    let status = loop {
        if let Some(status) = child.0.try_wait()? {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "run did not end after ^D: {seen:?}"
        );
        read_master_until(
            &master,
            &mut seen,
            "\u{0}",
            Instant::now() + Duration::from_millis(100),
        );
    };
    assert_eq!(status.code(), Some(0), "{seen:?}");
    env.assert_clean(&[]);
    Ok(())
}

#[test]
fn ps_size_shows_the_containers_own_layer_and_the_virtual_total() -> Result<()> {
    let env = Env::new()?;
    let id = env.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "head -c 50000 /dev/zero > /big && sleep 60",
    ])?;
    let id = id.trim().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let size = loop {
        let out = env.ok(&["ps", "--no-trunc", "--format", "{{.ID}} {{.Size}}"])?;
        let line = out
            .lines()
            .find(|l| l.starts_with(&id))
            .unwrap_or("")
            .to_string();
        if line.contains("50kB") || Instant::now() > deadline {
            break line;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(size.contains("50kB (virtual "), "{size}");
    let table = env.ok(&["ps", "-s"])?;
    assert!(
        table.lines().next().unwrap_or("").ends_with("SIZE"),
        "{table}"
    );
    env.ok(&["rm", "-f", &id])?;
    env.assert_clean(&[id]);
    Ok(())
}

#[test]
fn cidfile_and_platform_follow_docker() -> Result<()> {
    let env = Env::new()?;
    let dir = spec_tests::manager::berth::test_dir()?;
    let cid = dir.path().join("cid");
    let cid_s = cid.to_string_lossy().to_string();
    let id = env.ok(&[
        "run",
        "-d",
        "--cidfile",
        &cid_s,
        "--network",
        "none",
        BUSYBOX,
        "sleep",
        "60",
    ])?;
    assert_eq!(std::fs::read_to_string(&cid)?, id.trim());
    // A file already there is refused before anything is made.
    let (code, _, err) = env.run(&["create", "--cidfile", &cid_s, BUSYBOX, "true"])?;
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("Container ID file found"), "{err}");
    assert_eq!(env.ok(&["ps", "-aq"])?.lines().count(), 1);
    // The image's own platform runs; another is refused with docker's words.
    env.ok(&[
        "run",
        "--rm",
        "--platform",
        "linux/amd64",
        "--network",
        "none",
        BUSYBOX,
        "busybox",
        "true",
    ])?;
    let (code, _, err) = env.run(&["run", "--rm", "--platform", "linux/arm64", BUSYBOX, "true"])?;
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains(
            "does not match the specified platform: wanted linux/arm64, actual: linux/amd64"
        ),
        "{err}"
    );
    env.ok(&["rm", "-f", id.trim()])?;
    env.assert_clean(&[id.trim().to_string()]);
    Ok(())
}
