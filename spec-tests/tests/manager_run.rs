//! `berth run` and the container lifecycle, black-box: exit statuses, streams, signals and
//! stop timeouts, logs, restart policies, health checks, volumes, read-only roots, resource
//! flags reaching the cgroups, overlay whiteouts, `--runtime runc`, an image pulled from a
//! real registry, and bad input leaving nothing behind. Every test removes its containers on
//! drop, even after a failure, and then checks that no mount, monitor or cgroup is left.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use spec_tests::manager::berth::Berth;
use spec_tests::manager::images::{busybox_image, Compression, Layout};
use spec_tests::manager::network::{berth_with_busybox, mounts_under, BUSYBOX};
use spec_tests::manager::registry::Registry;

/// A berth root with the busybox image; on drop every container is force-removed.
struct Env {
    berth: Berth,
}

impl Env {
    fn new() -> Result<Self> {
        Ok(Self {
            berth: berth_with_busybox()?,
        })
    }

    /// `berth ARGS` → (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> Result<(i32, String, String)> {
        let out = self.berth.run(args)?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    fn ok(&self, args: &[&str]) -> Result<String> {
        self.berth.ok(args)
    }

    fn inspect(&self, name: &str) -> Result<Value> {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", name])?)?;
        Ok(v[0].clone())
    }

    fn status(&self, name: &str) -> Result<String> {
        Ok(self.inspect(name)?["State"]["Status"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Waits until `f` holds (polling), failing with `what` after `limit`.
    fn until(
        &self,
        limit: Duration,
        what: &str,
        mut f: impl FnMut() -> Result<bool>,
    ) -> Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if f()? {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("timed out waiting for {what}")
    }

    /// Container directories (records) left in the store.
    fn records(&self) -> Vec<String> {
        std::fs::read_dir(self.berth.root().join("containers"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What a removed container could leave behind: records, mounts under the root,
    /// monitors of this root, cgroups of its ids.
    fn leftovers(&self, ids: &[String]) -> Vec<String> {
        let mut out: Vec<String> = self
            .records()
            .into_iter()
            .map(|r| format!("record {r}"))
            .collect();
        out.extend(
            mounts_under(&self.berth.root())
                .into_iter()
                .map(|m| format!("mount {m}")),
        );
        out.extend(
            monitors_of(&self.berth.root())
                .into_iter()
                .map(|p| format!("monitor pid {p}")),
        );
        for id in ids {
            for c in ["memory", "pids", "cpu", "freezer"] {
                let p = Path::new("/sys/fs/cgroup").join(c).join("berth").join(id);
                if p.exists() {
                    out.push(format!("cgroup {}", p.display()));
                }
            }
        }
        out
    }

    fn assert_clean(&self, ids: &[String]) {
        let left = self.leftovers(ids);
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(out) = self.berth.run(&["ps", "-aq", "--no-trunc"]) {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f", "-v"];
                args.extend(ids.iter().map(String::as_str));
                let _ = self.berth.run(&args);
            }
        }
    }
}

/// `berth __monitor` processes whose command line names this root.
fn monitors_of(root: &Path) -> Vec<i32> {
    let root = root.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("__monitor") && cmd.contains(&root) {
            out.push(pid);
        }
    }
    out
}

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
fn logs_follow_streams_until_the_container_exits() -> Result<()> {
    let env = Env::new()?;
    let id = env.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; sleep 0.2; done",
    ])?;
    let t = Instant::now();
    let out = env.ok(&["logs", "-f", id.trim()])?;
    assert_eq!(out, "line1\nline2\nline3\n");
    assert!(t.elapsed() < Duration::from_secs(10));
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
fn named_volumes_outlive_containers_and_anonymous_ones_go_with_rm_v() -> Result<()> {
    let env = Env::new()?;
    env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "keep:/data",
        BUSYBOX,
        "sh",
        "-c",
        "echo persisted > /data/f",
    ])?;
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "keep:/data",
        BUSYBOX,
        "cat",
        "/data/f",
    ])?;
    assert_eq!(out, "persisted\n");
    let (code, _, err) = env.run(&["volume", "rm", "keep"])?;
    assert_eq!(code, 0, "{err}");
    // An anonymous volume: kept by rm, removed by rm -v and by --rm.
    let id = env.ok(&[
        "create",
        "--network",
        "none",
        "-v",
        "/scratch",
        BUSYBOX,
        "true",
    ])?;
    let vols: Vec<Value> = env.inspect(id.trim())?["Mounts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let name = vols[0]["Name"].as_str().context("volume name")?.to_string();
    assert!(env.ok(&["volume", "ls", "-q"])?.contains(&name));
    let (code, _, err) = env.run(&["volume", "rm", &name])?;
    assert_ne!(code, 0, "a volume in use must not be removable");
    assert!(err.contains("in use"), "{err}");
    env.ok(&["rm", "-v", id.trim()])?;
    assert!(!env.ok(&["volume", "ls", "-q"])?.contains(&name));
    env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/scratch2",
        BUSYBOX,
        "sh",
        "-c",
        "exit 0",
    ])?;
    assert_eq!(env.ok(&["volume", "ls", "-q"])?.trim(), "");
    // A read-only bind mount.
    let host = tempfile::tempdir()?;
    std::fs::write(host.path().join("in"), "from host")?;
    let spec = format!("{}:/mnt:ro", host.path().display());
    let (code, out, _) = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &spec,
        BUSYBOX,
        "sh",
        "-c",
        "cat /mnt/in; echo x > /mnt/new",
    ])?;
    assert_eq!(out, "from host");
    assert_ne!(code, 0, "writing a read-only bind mount must fail");
    assert!(!host.path().join("new").exists());
    env.assert_clean(&[]);
    Ok(())
}

#[test]
fn a_read_only_root_still_gets_its_tmpfs() -> Result<()> {
    let env = Env::new()?;
    let (code, _, err) = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        BUSYBOX,
        "sh",
        "-c",
        "echo x > /x",
    ])?;
    assert_ne!(code, 0);
    assert!(err.contains("Read-only"), "{err}");
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--tmpfs",
        "/scratch",
        BUSYBOX,
        "sh",
        "-c",
        "echo ok > /scratch/f && cat /scratch/f",
    ])?;
    assert_eq!(out, "ok\n");
    Ok(())
}

#[test]
fn resource_flags_reach_the_containers_cgroups() -> Result<()> {
    let env = Env::new()?;
    let id = env.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--memory",
        "64m",
        "--pids-limit",
        "20",
        "--cpus",
        "0.5",
        BUSYBOX,
        "sleep",
        "60",
    ])?;
    let id = id.trim();
    // This host is hybrid (v1 controllers); the cgroup-v2 guest checks memory.max.
    let read = |c: &str, f: &str| -> Result<String> {
        let p = Path::new("/sys/fs/cgroup")
            .join(c)
            .join("berth")
            .join(id)
            .join(f);
        Ok(std::fs::read_to_string(&p)
            .with_context(|| format!("reading {}", p.display()))?
            .trim()
            .to_string())
    };
    if Path::new("/sys/fs/cgroup/memory").is_dir() {
        assert_eq!(
            read("memory", "memory.limit_in_bytes")?,
            (64u64 << 20).to_string()
        );
        assert_eq!(read("pids", "pids.max")?, "20");
        assert_eq!(read("cpu", "cpu.cfs_quota_us")?, "50000");
        assert_eq!(read("cpu", "cpu.cfs_period_us")?, "100000");
    }
    let c = env.inspect(id)?;
    assert_eq!(c["HostConfig"]["Memory"], 64u64 << 20);
    assert_eq!(c["HostConfig"]["NanoCpus"], 500_000_000u64);
    env.ok(&["rm", "-f", id])?;
    env.assert_clean(&[id.to_string()]);
    Ok(())
}

#[test]
fn overlay_whiteouts_hide_files_of_lower_layers() -> Result<()> {
    let env = Env::new()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let base = busybox_image(&mut layout, "base", Compression::Gzip)?;
    let _ = base;
    // Layer 3 deletes /etc/motd, which layer 2 added.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "etc/.wh.motd", &[][..])?;
    let whiteout = b.into_inner()?;
    let built = layout.image(
        "amd64",
        &[
            (
                spec_tests::manager::images::busybox_layer()?,
                Compression::Gzip,
            ),
            (
                spec_tests::manager::images::file_layer("etc/motd", b"hello\n")?,
                Compression::Gzip,
            ),
            (whiteout, Compression::Gzip),
        ],
    )?;
    layout.tag("wh", &built)?;
    let reg = Registry::plain()?;
    let image = format!("{}/test/whiteout:1", reg.host());
    layout.push("wh", &image, &[])?;
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "test -e /etc/motd && echo present || echo absent; cat /etc/passwd | head -c 4",
    ])?;
    assert_eq!(out, "absent\nroot");
    Ok(())
}

#[test]
fn an_image_from_a_registry_is_pulled_on_first_run() -> Result<()> {
    let env = Env::new()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let reg = Registry::plain()?;
    let image = format!("{}/test/busybox:v1", reg.host());
    layout.push("v1", &image, &[])?;
    let (code, out, err) = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "cat",
        "/etc/motd",
    ])?;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "hello from v1\n", "stdout is the container's alone");
    assert!(err.contains("Unable to find image"), "{err}");
    // The second run finds it locally.
    let (_, _, err) = env.run(&["run", "--rm", "--network", "none", &image, "true"])?;
    assert!(!err.contains("Unable to find image"), "{err}");
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
    let mut child = scopeguard(child);
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

/// Kills the child on drop unless it was waited for.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn scopeguard(c: std::process::Child) -> Guard {
    Guard(c)
}

#[test]
fn an_image_a_container_uses_is_kept_until_forced_and_its_snapshots_go_with_it() -> Result<()> {
    let env = Env::new()?;
    let snapshots = |env: &Env| -> usize {
        std::fs::read_dir(env.berth.root().join("snapshots/overlay/snapshots"))
            .map(|rd| rd.count())
            .unwrap_or(0)
    };
    let id = env.ok(&["create", "--network", "none", BUSYBOX, "sh", "-c", "exit 6"])?;
    let id = id.trim();
    let err = env.berth.fail(&["rmi", BUSYBOX])?;
    assert!(
        err.contains("conflict: unable to remove repository reference") && err.contains(&id[..12]),
        "{err}"
    );
    assert!(env
        .ok(&["images", "--format", "{{.Repository}}"])?
        .contains("busybox"));
    // -f untags; the container keeps its image and still starts.
    env.ok(&["rmi", "-f", BUSYBOX])?;
    env.ok(&["start", id])?;
    assert_eq!(env.ok(&["wait", id])?.trim(), "6");
    assert!(
        snapshots(&env) >= 2,
        "the image layer and the container's own"
    );
    env.ok(&["image", "prune", "-a"])?;
    assert_eq!(
        env.ok(&["images", "-q"])?.lines().count(),
        1,
        "in use: not pruned"
    );
    env.ok(&["rm", id])?;
    env.ok(&["image", "prune", "-a"])?;
    assert_eq!(env.ok(&["images", "-q"])?.trim(), "");
    assert_eq!(
        snapshots(&env),
        0,
        "every snapshot goes with the last image"
    );
    env.assert_clean(&[id.to_string()]);
    Ok(())
}

#[test]
fn pull_leaves_the_image_unpacked_and_ready_to_run() -> Result<()> {
    let env = Env::new()?;
    let committed = |env: &Env| -> usize {
        std::fs::read_dir(env.berth.root().join("snapshots/overlay/snapshots"))
            .map(|rd| rd.count())
            .unwrap_or(0)
    };
    let before = committed(&env);
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    busybox_image(&mut layout, "ready", Compression::Gzip)?;
    let reg = Registry::plain()?;
    let image = format!("{}/test/busybox:ready", reg.host());
    layout.push("ready", &image, &[])?;
    env.ok(&["pull", &image])?;
    // Two layers, two committed snapshots, made by the pull itself.
    assert_eq!(committed(&env), before + 2);
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "cat",
        "/etc/motd",
    ])?;
    assert_eq!(out, "hello from ready\n");
    assert_eq!(committed(&env), before + 2, "run unpacked nothing again");
    Ok(())
}

#[test]
fn pull_unpacks_a_layer_while_the_next_one_downloads() -> Result<()> {
    use spec_tests::manager::images::{file_layer, noise};
    let env = Env::new()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    // Layer 2 is 3 MB of noise: through the throttling proxy (~3 MB/s) it takes about a
    // second, long enough to see layer 1 committed while layer 2 is still an ingest.
    let built = layout.image(
        "amd64",
        &[
            (
                spec_tests::manager::images::busybox_layer()?,
                Compression::Gzip,
            ),
            (file_layer("big", &noise(3 << 20, 7))?, Compression::None),
        ],
    )?;
    layout.tag("slow", &built)?;
    let reg = Registry::plain()?;
    layout.push("slow", &format!("{}/test/slow:1", reg.host()), &[])?;
    let port: u16 = reg.host().rsplit(':').next().context("port")?.parse()?;
    let proxy = spec_tests::manager::proxy::Proxy::start(port)?;
    let image = format!("{}/test/slow:1", proxy.host());
    let mut child = scopeguard(
        env.berth
            .cmd(&["pull", "-q", "--max-concurrent-downloads", "1", &image])?
            .stdout(std::process::Stdio::null())
            .spawn()?,
    );
    let snapshots = env.berth.root().join("snapshots/overlay/snapshots");
    let ingest = env.berth.root().join("ingest");
    let count = |p: &Path| std::fs::read_dir(p).map(|rd| rd.count()).unwrap_or(0);
    let mut overlapped = false;
    while child.0.try_wait()?.is_none() {
        // A committed snapshot (not an extract in progress) while a blob is still downloading.
        let committed = std::fs::read_dir(env.berth.root().join("snapshots/overlay")).is_ok()
            && count(&snapshots) >= 1
            && std::fs::read_to_string(env.berth.root().join("snapshots/overlay/metadata.json"))
                .is_ok_and(|m| m.contains("committed"));
        if committed && count(&ingest) > 0 {
            overlapped = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(child.0.wait()?.success());
    assert!(
        overlapped,
        "layer 1 was not unpacked while layer 2 downloaded"
    );
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "echo $(wc -c < /big)",
    ])?;
    assert_eq!(out.trim(), (3u64 << 20).to_string());
    Ok(())
}
