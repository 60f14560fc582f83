//! `berth` run by an ordinary user: the store, configuration and run-time state in the
//! user's XDG directories, containers in a user namespace mapping root to the user and
//! ids 1.. to its subordinate range, `--network none` and `host`, and a clear refusal of
//! what needs root. Each test creates its own unprivileged user (removed afterwards, even on
//! failure).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;
use spec_tests::manager::berth::berth_bin;
use spec_tests::manager::network::{berth_with_busybox, BUSYBOX};
use spec_tests::rootless::{Out, TestUser, SUB_COUNT};

/// A test user with the busybox test image loaded into its own (rootless) berth store.
fn user_with_busybox() -> Result<(TestUser, String)> {
    let u = TestUser::create()?;
    let root_berth = berth_with_busybox()?;
    let tar = root_berth
        .root()
        .parent()
        .context("root")?
        .join("image/busybox.tar");
    let mine = u.dir.join("busybox.tar");
    fs::copy(&tar, &mine)?;
    u.chown(&mine)?;
    let berth = berth_bin()?.to_string_lossy().into_owned();
    u.run(&[&berth, "load", "-i", &mine.to_string_lossy()], None)?
        .ok()?;
    Ok((u, berth))
}

fn b(u: &TestUser, berth: &str, args: &[&str]) -> Result<Out> {
    let mut all = vec![berth];
    all.extend_from_slice(args);
    u.run(&all, None)
}

fn table(s: &str) -> Vec<String> {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn rootless_berth_runs_containers_from_the_user_s_own_store() -> Result<()> {
    let (u, berth) = user_with_busybox()?;
    // The store is the user's: ~/.local/share/berth, owned by it.
    let store = u.dir.join(".local/share/berth");
    assert_eq!(fs::metadata(&store)?.uid(), u.uid);

    // A run: root in the container is the user; ids 1.. are its subordinate range.
    let out = b(
        &u,
        &berth,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            BUSYBOX,
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; echo err >&2; exit 3",
        ],
    )?;
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(out.stderr, "err\n");
    let maps = table(&out.stdout);
    let own = format!("0 {} 1", u.uid);
    let sub = format!("1 {} {SUB_COUNT}", u.sub_first);
    assert_eq!(maps[0], own);
    assert_eq!(maps[1], sub);
    assert_eq!(maps[2], format!("0 {} 1", u.gid));

    // A detached one: exec, logs, stop, rm; a bind volume's files belong to the user.
    let data = u.mkdir("data")?;
    let vol = format!("{}:/data", data.display());
    b(
        &u,
        &berth,
        &[
            "run",
            "-d",
            "--name",
            "s1",
            "--network",
            "none",
            "-v",
            &vol,
            BUSYBOX,
            "sh",
            "-c",
            "echo started; echo hi > /data/f; sleep 60",
        ],
    )?
    .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !data.join("f").exists() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the container never wrote /data/f"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fs::metadata(data.join("f"))?.uid(), u.uid);
    let exec = b(
        &u,
        &berth,
        &["exec", "s1", "sh", "-c", "cat /proc/self/uid_map; exit 4"],
    )?;
    assert_eq!(exec.code, Some(4), "{exec:?}");
    assert_eq!(table(&exec.stdout)[0], own);
    assert_eq!(b(&u, &berth, &["logs", "s1"])?.ok()?.stdout, "started\n");
    let started = Instant::now();
    b(&u, &berth, &["stop", "-t", "1", "s1"])?.ok()?;
    assert!(started.elapsed() < Duration::from_secs(10));
    b(&u, &berth, &["rm", "s1"])?.ok()?;

    // Limits without a delegated cgroup: discarded, with docker's kind of warning.
    let limited = b(
        &u,
        &berth,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--memory",
            "64m",
            BUSYBOX,
            "echo",
            "ran",
        ],
    )?
    .ok()?;
    assert_eq!(limited.stdout, "ran\n");
    assert!(
        limited
            .stderr
            .contains("WARNING: Resource limits are discarded"),
        "{}",
        limited.stderr
    );

    // The host network: the host's hostname, no namespace of its own.
    let host = b(
        &u,
        &berth,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            BUSYBOX,
            "cat",
            "/proc/sys/kernel/hostname",
        ],
    )?
    .ok()?;
    let want = fs::read_to_string("/proc/sys/kernel/hostname")?;
    assert_eq!(host.stdout, want);

    // Nothing is left: no container record, no process of the user's.
    let ps = b(&u, &berth, &["ps", "-a", "-q"])?.ok()?;
    assert_eq!(ps.stdout, "");
    // (A monitor may still be on its way out.)
    let deadline = Instant::now() + Duration::from_secs(5);
    while !u.pids().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(u.pids().is_empty(), "processes left: {:?}", u.pids());
    Ok(())
}

#[test]
fn what_needs_root_is_refused_naming_the_flag() -> Result<()> {
    let (u, berth) = user_with_busybox()?;
    for args in [
        vec![
            "run",
            "--rm",
            "--network",
            "container:other",
            BUSYBOX,
            "true",
        ],
        vec![
            "run",
            "--rm",
            "--snapshotter",
            "overlay",
            "--network",
            "none",
            BUSYBOX,
            "true",
        ],
    ] {
        let out = b(&u, &berth, &args)?;
        assert_eq!(out.code, Some(125), "{args:?}: {out:?}");
        let flag = if args.contains(&"--snapshotter") {
            "--snapshotter overlay"
        } else {
            "--network container:other"
        };
        assert!(out.stderr.contains(flag), "{args:?}: {}", out.stderr);
    }
    // User-defined networks are the user's own (manager_network.rs runs rootless), but not
    // with the CNI backend, whose plugins work on the host.
    let create = b(
        &u,
        &berth,
        &["network", "create", "--network-backend", "cni", "mynet"],
    )?;
    assert_ne!(create.code, Some(0), "{create:?}");
    assert!(
        create.stderr.contains("network create mynet")
            && create.stderr.contains("--network-backend cni"),
        "{}",
        create.stderr
    );
    let ps = b(&u, &berth, &["ps", "-a", "-q"])?.ok()?;
    assert_eq!(ps.stdout, "", "containers left");
    let containers = u.dir.join(".local/share/berth/containers");
    let left = fs::read_dir(&containers).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "container directories left");
    Ok(())
}

/// `GET /info` of a rootless berth says so, with its id ranges and what is off.
#[test]
fn info_reports_rootless_mode() -> Result<()> {
    let u = TestUser::create()?;
    let berth = berth_bin()?.to_string_lossy().into_owned();
    let sock = u.dir.join("berth.sock");
    let uri = format!("unix://{}", sock.display());
    let mut service = u
        .command(&[&berth, "system", "service", "-t", "20", &uri], None)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let info = (|| -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            anyhow::ensure!(Instant::now() < deadline, "the service never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = std::process::Command::new("curl")
            .args(["-sf", "--max-time", "10", "--unix-socket"])
            .arg(&sock)
            .arg("http://localhost/info")
            .output()?;
        Ok(serde_json::from_slice(&out.stdout)?)
    })();
    let _ = service.kill();
    let _ = service.wait();
    let info = info?;
    assert_eq!(info["Rootless"], Value::Bool(true), "{info:#}");
    let ranges = &info["RootlessIdRanges"];
    assert_eq!(ranges["UID"], serde_json::json!(u.uid));
    let want = format!("{}-{}", u.sub_first, u.sub_first + SUB_COUNT - 1);
    assert_eq!(ranges["SubUIDs"], Value::String(want));
    assert_eq!(info["Driver"], "copy");
    let disabled = info["RootlessDisabled"]
        .as_array()
        .context("RootlessDisabled")?;
    assert!(
        disabled
            .iter()
            .any(|d| d["Feature"] == "host bridge networks"),
        "{disabled:?}"
    );
    // Build works rootless (copy-snapshot layers): it is not listed as off.
    assert!(
        !disabled.iter().any(|d| d["Feature"] == "build"),
        "{disabled:?}"
    );
    let opts = info["SecurityOptions"]
        .as_array()
        .context("SecurityOptions")?;
    assert!(opts.iter().any(|o| o == "name=rootless"), "{opts:?}");
    assert_eq!(
        info["DockerRootDir"],
        Value::String(u.dir.join(".local/share/berth").display().to_string())
    );
    Ok(())
}

/// The host's first global IPv4 address (the container reaches the host there; slirp4netns
/// keeps it off the host's loopback).
fn host_address() -> Result<String> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .map(str::to_string)
        .context("no global IPv4 address on the host")
}

/// The default network of a rootless container is slirp4netns's: outbound connections work
/// and `-p` publishes on the host's loopback.
#[test]
fn the_default_network_is_user_mode_with_published_ports() -> Result<()> {
    let (u, berth) = user_with_busybox()?;
    // Outbound: a listener on the host's address answers the container.
    let listener = std::net::TcpListener::bind("0.0.0.0:0")?;
    let port = listener.local_addr()?.port();
    let server = std::thread::spawn(move || -> Result<()> {
        use std::io::Write;
        let (mut conn, _) = listener.accept()?;
        conn.write_all(b"from-host\n")?;
        Ok(())
    });
    let script = format!(
        "busybox nc -w 5 {} {port}; cat /etc/resolv.conf",
        host_address()?
    );
    let out = b(&u, &berth, &["run", "--rm", BUSYBOX, "sh", "-c", &script])?.ok()?;
    assert!(out.stdout.starts_with("from-host\n"), "{out:?}");
    assert!(out.stdout.contains("nameserver 10.0.2.3"), "{out:?}");
    let _ = server.join();

    // Published: -p HOST:80 and -p 80 (a free host port, shown by `port`).
    let free = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let publish = format!("{free}:80");
    b(
        &u,
        &berth,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &publish,
            "-p",
            "80",
            BUSYBOX,
            "sh",
            "-c",
            "echo hello > /tmp/index.html; busybox httpd -f -p 80 -h /tmp",
        ],
    )?
    .ok()?;
    let ports = b(&u, &berth, &["port", "web"])?.ok()?.stdout;
    let other: u16 = ports
        .lines()
        .filter_map(|l| l.rsplit(':').next()?.trim().parse().ok())
        .find(|p| *p != free)
        .context(format!("no second port in {ports:?}"))?;
    for p in [free, other] {
        let deadline = Instant::now() + Duration::from_secs(10);
        let body = loop {
            let got = std::process::Command::new("curl")
                .args(["-sf", "--max-time", "2"])
                .arg(format!("http://127.0.0.1:{p}/index.html"))
                .output()?;
            if got.status.success() || Instant::now() > deadline {
                break String::from_utf8_lossy(&got.stdout).into_owned();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(body, "hello\n", "port {p}");
    }
    b(&u, &berth, &["rm", "-f", "web"])?.ok()?;
    // slirp4netns went with the container.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !u.pids().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(u.pids().is_empty(), "processes left: {:?}", u.pids());
    Ok(())
}

/// `compose up` and `down` as the user: the project's default network is a user network of
/// the user's (in berth's rootless network namespace), services find each other by name,
/// published ports answer on the host, named volumes are the user's; `down` leaves nothing.
#[test]
fn compose_up_and_down_work_on_the_project_network() -> Result<()> {
    let (u, berth) = user_with_busybox()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let project = u.mkdir("proj")?;
    let file = project.join("compose.yaml");
    fs::write(
        &file,
        format!(
            "services:\n  web:\n    image: {BUSYBOX}\n    command: [sh, -c, 'echo hello > /tmp/index.html; busybox httpd -f -p 80 -h /tmp']\n    ports: ['127.0.0.1:{port}:80']\n  worker:\n    image: {BUSYBOX}\n    command: [sh, -c, 'echo kept > /data/f; sleep 60']\n    volumes: [data:/data]\nvolumes:\n  data: {{}}\n"
        ),
    )?;
    u.chown(&file)?;
    let f = file.to_string_lossy().into_owned();
    let compose = |args: &[&str]| {
        let mut all = vec!["compose", "-p", "rl", "-f", &f];
        all.extend_from_slice(args);
        b(&u, &berth, &all)
    };
    compose(&["up", "-d"])?.ok()?;
    let result = (|| -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let body = loop {
            let got = std::process::Command::new("curl")
                .args(["-sf", "--max-time", "2"])
                .arg(format!("http://127.0.0.1:{port}/index.html"))
                .output()?;
            if got.status.success() || Instant::now() > deadline {
                break String::from_utf8_lossy(&got.stdout).into_owned();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(body, "hello\n");
        let ps = compose(&["ps", "--services"])?.ok()?;
        assert_eq!(table(&ps.stdout), ["web", "worker"], "{ps:?}");
        // The worker reaches the web service by its name (the network's embedded DNS).
        let got = compose(&[
            "exec",
            "-T",
            "worker",
            "busybox",
            "wget",
            "-q",
            "-O-",
            "http://web/index.html",
        ])?
        .ok()?;
        assert_eq!(got.stdout, "hello\n", "{got:?}");
        Ok(())
    })();
    let down = compose(&["down", "-v", "-t", "1"])?;
    result?;
    down.ok()?;
    assert_eq!(b(&u, &berth, &["ps", "-a", "-q"])?.ok()?.stdout, "");
    assert_eq!(b(&u, &berth, &["volume", "ls", "-q"])?.ok()?.stdout, "");
    let nets = b(&u, &berth, &["network", "ls", "-q", "--filter", "name=rl_"])?.ok()?;
    assert_eq!(nets.stdout, "", "project network left");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !u.pids().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(u.pids().is_empty(), "processes left: {:?}", u.pids());
    Ok(())
}

/// The create/start/exec/rename/restart lifecycle as the user (the root suite's version also
/// pauses, which needs a freezer cgroup a rootless berth lacks here).
#[test]
fn create_start_exec_rename_and_restart_as_the_user() -> Result<()> {
    let (u, berth) = user_with_busybox()?;
    let id = b(
        &u,
        &berth,
        &[
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
        ],
    )?
    .ok()?
    .stdout;
    let id = id.trim();
    let status = |name: &str| -> Result<String> {
        Ok(
            b(&u, &berth, &["inspect", "-f", "{{.State.Status}}", name])?
                .ok()?
                .stdout
                .trim()
                .to_string(),
        )
    };
    assert_eq!(status("c1")?, "created");
    b(&u, &berth, &["start", "c1"])?.ok()?;
    assert_eq!(status("c1")?, "running");
    let env = b(
        &u,
        &berth,
        &["exec", "-w", "/etc", "c1", "sh", "-c", "echo $FOO; pwd"],
    )?
    .ok()?;
    assert_eq!(env.stdout, "bar\n/etc\n");
    assert_eq!(
        b(&u, &berth, &["exec", "c1", "sh", "-c", "exit 9"])?.code,
        Some(9)
    );
    // cp both ways, without complaints (a rootless root is a link, not a mount).
    let inside = u.dir.join("in.txt");
    fs::write(&inside, "copied\n")?;
    u.chown(&inside)?;
    let cp_in = b(&u, &berth, &["cp", &inside.to_string_lossy(), "c1:/tmp/"])?.ok()?;
    assert_eq!(cp_in.stderr, "");
    let out = u.dir.join("out.txt");
    let cp_out = b(
        &u,
        &berth,
        &["cp", "c1:/tmp/in.txt", &out.to_string_lossy()],
    )?
    .ok()?;
    assert_eq!(cp_out.stderr, "");
    assert_eq!(fs::read_to_string(&out)?, "copied\n");
    b(&u, &berth, &["rename", "c1", "c2"])?.ok()?;
    let top = b(&u, &berth, &["top", "c2"])?.ok()?;
    assert!(top.stdout.contains("sleep 60"), "{top:?}");
    let rm = b(&u, &berth, &["rm", "c2"])?;
    assert_ne!(rm.code, Some(0));
    assert!(rm.stderr.contains("Stop the container"), "{rm:?}");
    b(&u, &berth, &["restart", "-t", "1", "c2"])?.ok()?;
    assert_eq!(status("c2")?, "running");
    b(&u, &berth, &["rm", "-f", "c2"])?.ok()?;
    assert_eq!(b(&u, &berth, &["ps", "-a", "-q"])?.ok()?.stdout, "");
    let containers = u.dir.join(".local/share/berth/containers");
    assert!(
        !containers.join(id).exists(),
        "the container's directory is left"
    );
    Ok(())
}

/// A start on a user network that fails in the rootless network namespace (the network's
/// only address is taken) fails naming the network and undoes its part; a missing network is
/// refused by name; once the other container is gone nothing is left: no process of the
/// user, no rootless network namespace, no lease or endpoint record.
#[test]
fn a_failed_start_on_a_user_network_leaves_nothing() -> Result<()> {
    let (u, berth) = user_with_busybox()?;
    // A /30: the gateway and one container address.
    b(
        &u,
        &berth,
        &["network", "create", "--subnet", "10.77.3.0/30", "tight"],
    )?
    .ok()?;
    b(
        &u,
        &berth,
        &[
            "run",
            "-d",
            "--name",
            "first",
            "--network",
            "tight",
            BUSYBOX,
            "sleep",
            "600",
        ],
    )?
    .ok()?;
    let out = b(
        &u,
        &berth,
        &[
            "run",
            "--rm",
            "--network",
            "tight",
            BUSYBOX,
            "busybox",
            "true",
        ],
    )?;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("network tight"), "{}", out.stderr);
    // The first one is still wired.
    let addrs = b(
        &u,
        &berth,
        &["exec", "first", "busybox", "ip", "-o", "-4", "addr"],
    )?
    .ok()?;
    assert!(addrs.stdout.contains("10.77.3.2"), "{addrs:?}");
    let missing = b(
        &u,
        &berth,
        &[
            "run",
            "--rm",
            "--network",
            "nosuchnet",
            BUSYBOX,
            "busybox",
            "true",
        ],
    )?;
    assert_ne!(missing.code, Some(0), "{missing:?}");
    assert!(missing.stderr.contains("nosuchnet"), "{}", missing.stderr);
    b(&u, &berth, &["rm", "-f", "first"])?.ok()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !u.pids().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(u.pids().is_empty(), "processes left: {:?}", u.pids());
    let ns = u.runtime_dir.join("berth/rootless-netns");
    assert!(!ns.exists(), "{} left", ns.display());
    // The lease bookkeeping goes with the network.
    b(&u, &berth, &["network", "rm", "tight"])?.ok()?;
    let store = u.dir.join(".local/share/berth/networks");
    for d in ["ipam", "endpoints"] {
        let left: Vec<_> = walk(&store.join(d))
            .into_iter()
            .filter(|p| !p.to_string_lossy().ends_with(".lock"))
            .collect();
        assert!(left.is_empty(), "{d} left: {left:?}");
    }
    Ok(())
}

/// The files under `dir` (none when it does not exist).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
