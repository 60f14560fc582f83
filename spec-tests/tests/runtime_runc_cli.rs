//! The command line as runc's users (containerd, docker, runc's own integration suite) read
//! it: `-v` and `-h` output, exit codes, the texts they match, `--debug` lines. Every test
//! holds for Debian's runc too (`BERTH_TEST_RUNTIME=runc`).

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use spec_tests::runtime::{cgroups, read_pty_until_eof, Bundle, Container, RunOpts, Runtime};

const T: Duration = Duration::from_secs(20);

/// A running container whose process sleeps.
fn sleeper<'a>(rt: &'a Runtime, b: &mut Bundle) -> Result<Container<'a>> {
    b.config["process"]["args"] = json!(["sleep", "1000"]);
    let c = rt.create(b)?;
    c.start()?;
    Ok(c)
}

#[test]
fn version_is_runc_s_three_lines() -> Result<()> {
    let rt = Runtime::new()?;
    let out = rt.cmd(&["-v"])?.ok()?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    let numbered = |l: &str, prefix: &str| {
        l.find(prefix).is_some_and(|i| {
            let v = &l[i + prefix.len()..];
            let parts: Vec<&str> = v.split(|c: char| !c.is_ascii_digit()).take(3).collect();
            parts.len() == 3 && parts.iter().all(|p| !p.is_empty())
        })
    };
    assert!(numbered(lines[0], "runc version "), "{out}");
    assert!(lines[1].starts_with("commit:"), "{out}");
    assert!(numbered(lines[2], "spec: "), "{out}");
    Ok(())
}

#[test]
fn help_has_runc_s_name_section_for_every_command() -> Result<()> {
    let rt = Runtime::new()?;
    for args in [vec!["-h"], vec!["--help"]] {
        let out = rt.cmd(&args)?.ok()?;
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines[0], "NAME:", "{out}");
        assert!(
            lines[1].contains("runc - Open Container Initiative runtime"),
            "{out}"
        );
    }
    for verb in [
        "checkpoint",
        "create",
        "delete",
        "events",
        "exec",
        "kill",
        "list",
        "pause",
        "ps",
        "restore",
        "resume",
        "run",
        "spec",
        "start",
        "state",
        "update",
    ] {
        let out = rt.cmd(&[verb, "-h"])?.ok()?;
        let second = out.stdout.lines().nth(1).unwrap_or_default().to_string();
        assert!(second.contains(&format!("runc {verb}")), "{verb}: {out}");
    }
    let out = rt.cmd(&["foo", "-h"])?.failed()?;
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("No help topic for 'foo'"),
        "{out}"
    );
    Ok(())
}

/// runc exec exits with the process's status, and with 255 when the runtime itself fails,
/// so the two cannot be confused.
#[test]
fn exec_exits_with_the_process_status_or_255() -> Result<()> {
    let rt = Runtime::new()?;
    let mut b = rt.bundle()?;
    let c = sleeper(&rt, &mut b)?;
    let code = |args: &[&str]| -> Result<Option<i32>> {
        let mut all = vec!["exec", c.id.as_str()];
        all.extend_from_slice(args);
        Ok(rt.cmd(&all)?.code)
    };
    assert_eq!(code(&["false"])?, Some(1));
    assert_eq!(code(&["sh", "-c", "exit 42"])?, Some(42));
    assert_eq!(code(&["no-such-binary"])?, Some(255));
    let out = rt.cmd(&[
        "exec",
        "--pid-file",
        "/non-existent/directory",
        &c.id,
        "true",
    ])?;
    assert_eq!(out.code, Some(255), "{out}");
    assert_eq!(
        rt.cmd(&["exec", "no_such_container", "true"])?.code,
        Some(255)
    );
    c.delete_force()
}

#[test]
fn exec_into_a_paused_container_is_refused_unless_asked_to_wait() -> Result<()> {
    let rt = Runtime::new()?;
    if cgroups::hierarchy_of("freezer").is_none() && !cgroups::is_v2() {
        return Ok(());
    }
    let mut b = rt.bundle()?;
    let c = sleeper(&rt, &mut b)?;
    c.verb(&["pause"], &[])?.ok()?;
    let out = rt.cmd(&["exec", &c.id, "echo", "ok"])?;
    assert_eq!(out.code, Some(255), "{out}");
    assert!(
        out.stderr.contains("cannot exec in a paused container"),
        "{out}"
    );
    // --ignore-paused waits until the container is resumed.
    let waiting = rt.spawn(
        &["exec", "--ignore-paused", &c.id, "echo", "ok"],
        RunOpts::default(),
    )?;
    std::thread::sleep(Duration::from_millis(500));
    c.verb(&["resume"], &[])?.ok()?;
    let out = waiting.wait(T)?.ok()?;
    assert_eq!(out.stdout, "ok\n");
    c.delete_force()
}

/// containerd's shim recognises a dead container by "container not running" in kill's error;
/// `kill --all` of one that stopped succeeds.
#[test]
fn kill_of_a_stopped_container_says_container_not_running() -> Result<()> {
    let rt = Runtime::new()?;
    let b = rt.bundle()?;
    let c = rt.create(&b)?;
    c.start()?;
    c.wait_stopped(T)?;
    let out = c.kill(&["KILL"])?;
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("container not running"), "{out}");
    c.verb(&["kill", "--all"], &["KILL"])?.ok()?;
    c.verb(&["kill", "-a"], &["0"])?.ok()?;
    c.delete()
}

/// `--debug` writes debug lines (runc's format, to stderr or --log) that mark the setup
/// stages by runc's names for them.
#[test]
fn debug_lines_mark_the_setup_stages() -> Result<()> {
    let rt = Runtime::new()?;
    let mut b = rt.bundle()?;
    b.sh("echo hello");
    b.write_config()?;
    let dir = b.dir.display().to_string();
    let out = rt.cmd(&["--debug", "run", "--bundle", &dir, &b.id])?.ok()?;
    assert_eq!(out.stdout, "hello\n");
    for stage in [
        "level=debug",
        "nsexec container setup",
        "child process in init()",
        "init: closing the pipe to signal completion",
    ] {
        assert!(out.stderr.contains(stage), "no {stage:?}: {out}");
    }
    let log = rt.tmp().join("debug.json");
    let mut b = rt.bundle()?;
    let c = sleeper(&rt, &mut b)?;
    let log_s = log.display().to_string();
    let args = ["--debug", "--log", &log_s, "--log-format", "json"];
    let mut exec_args = args.to_vec();
    exec_args.extend(["exec", c.id.as_str(), "true"]);
    let out = rt.cmd(&exec_args)?.ok()?;
    assert!(!out.stderr.contains("debug"), "{out}");
    let text = std::fs::read_to_string(&log)?;
    assert!(text.contains(r#""level":"debug""#), "{text}");
    for stage in ["nsexec container setup", "setns_init: about to exec"] {
        assert!(text.contains(stage), "no {stage:?}: {text}");
    }
    c.delete_force()
}

/// `exec --cgroup`: runc's forms (path for all, controller[,controller]:path per controller)
/// and its refusals, on a host with v1 controllers.
#[test]
fn exec_cgroup_takes_runc_s_forms_and_refusals() -> Result<()> {
    if cgroups::is_v2() {
        return Ok(());
    }
    let rt = Runtime::new()?;
    let mut b = rt.bundle()?;
    b.config["mounts"]
        .as_array_mut()
        .expect("mounts")
        .iter_mut()
        .filter(|m| m["type"] == "cgroup")
        .for_each(|m| m["options"] = json!(["nosuid", "noexec", "nodev", "relatime"]));
    let c = sleeper(&rt, &mut b)?;
    let out = rt
        .cmd(&["exec", "--cgroup", "..", &c.id, "true"])?
        .failed()?;
    assert!(out.stderr.contains(" .. is not a sub cgroup path"), "{out}");
    let out = rt
        .cmd(&["exec", "--cgroup", "nonexistent", &c.id, "true"])?
        .failed()?;
    assert!(
        out.stderr.contains(" adding pid ")
            && out
                .stderr
                .contains("/nonexistent/cgroup.procs: no such file "),
        "{out}"
    );
    let out = rt
        .cmd(&["exec", "--cgroup", "whaaat:/", &c.id, "true"])?
        .failed()?;
    assert!(out.stderr.contains("unknown controller "), "{out}");
    rt.cmd(&["exec", &c.id, "mkdir", "/sys/fs/cgroup/memory/submem"])?
        .ok()?;
    let out = rt
        .cmd(&[
            "exec",
            "--cgroup",
            "memory:submem",
            &c.id,
            "cat",
            "/proc/self/cgroup",
        ])?
        .ok()?;
    let want = format!("/berth-test/{}/submem", c.id);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains(":memory:") && l.ends_with(&want)),
        "{out}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains(":pids:") && l.ends_with(&format!("/berth-test/{}", c.id))),
        "only memory moves: {out}"
    );
    let mut c = c;
    c.track(&spec_tests::runtime::cgroup_procs(&c.id));
    c.delete_force()
}

/// `run` in the foreground with a terminal relays the output as written: no "\r\n" from the
/// container pty's ONLCR (runc clears it), so scripts read the same lines as without a
/// terminal. `run` is given a terminal of its own (runc insists on one), without ONLCR too.
#[test]
fn foreground_run_with_a_terminal_relays_plain_newlines() -> Result<()> {
    let rt = Runtime::new()?;
    let mut b = rt.bundle()?;
    b.sh("printf 'a\\nb\\n'");
    b.config["process"]["terminal"] = json!(true);
    b.write_config()?;
    let pty = nix::pty::openpty(None, None)?;
    let mut t = nix::sys::termios::tcgetattr(&pty.slave)?;
    t.output_flags.remove(nix::sys::termios::OutputFlags::ONLCR);
    nix::sys::termios::tcsetattr(&pty.slave, nix::sys::termios::SetArg::TCSANOW, &t)?;
    let dir = b.dir.display().to_string();
    let run = rt.spawn(
        &["run", "--bundle", &dir, &b.id],
        RunOpts {
            stdio: Some(pty.slave),
            ..Default::default()
        },
    )?;
    let out = read_pty_until_eof(&pty.master, T)?;
    run.wait(T)?.ok()?;
    assert!(out.contains("a\nb\n"), "{out:?}");
    assert!(!out.contains('\r'), "{out:?}");
    rt.assert_no_leaks(&b.id, &b.dir, &[])
}

/// A process.json without `user` runs as root (runc reads the missing field as uid 0).
#[test]
fn exec_process_json_without_user_runs_as_root() -> Result<()> {
    let rt = Runtime::new()?;
    let mut b = rt.bundle()?;
    let c = sleeper(&rt, &mut b)?;
    let p = rt.tmp().join("process.json");
    std::fs::write(&p, r#"{"args":["/bin/id","-u"],"cwd":"/"}"#)?;
    let out = rt
        .cmd(&["exec", "--process", &p.display().to_string(), &c.id])?
        .ok()?;
    assert_eq!(out.stdout, "0\n");
    c.delete_force()
}
