//! The runtime's command line beyond the lifecycle: `spec`, `features`, `--pid-file`,
//! `--log`/`--log-format`, global flags, file descriptors, and concurrency. Run against runc
//! with `BERTH_TEST_RUNTIME=runc`.

use std::fs;
use std::os::fd::OwnedFd;
use std::time::Duration;

use serde_json::{json, Value};
use spec_tests::runtime::{is_berth, RunOpts, Runtime};

const T: Duration = Duration::from_secs(10);

#[test]
fn spec_writes_a_default_config_that_runs() {
    let rt = Runtime::new().unwrap();
    let b = rt.bundle().unwrap();
    let out = rt
        .cmd_opts(
            &["spec"],
            RunOpts {
                cwd: Some(b.dir.clone()),
                ..RunOpts::default()
            },
        )
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(out.stdout, "");
    let mut spec: Value = serde_json::from_slice(&fs::read(b.config_path()).unwrap()).unwrap();
    assert!(spec["ociVersion"].as_str().unwrap().starts_with("1."));
    assert_eq!(spec["root"]["path"], "rootfs");
    assert_eq!(spec["process"]["args"], json!(["sh"]));
    assert_eq!(spec["process"]["cwd"], "/");
    let ns: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    for want in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(ns.contains(&want), "default namespaces {ns:?} lack {want}");
    }
    let dests: Vec<&str> = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    for want in ["/proc", "/dev", "/dev/pts", "/dev/shm", "/sys"] {
        assert!(
            dests.contains(&want),
            "default mounts {dests:?} lack {want}"
        );
    }
    // The default config must be usable as is, apart from the terminal and a known cgroup.
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(["sh", "-c", "echo from-spec"]);
    spec["linux"]["cgroupsPath"] = json!(format!("/berth-test/{}", b.id));
    let mut b = b;
    b.config = spec;
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(fin.stdout, "from-spec\n", "{fin:?}");
}

#[test]
fn spec_refuses_to_overwrite_an_existing_config() {
    let rt = Runtime::new().unwrap();
    let dir = rt.tmp().join("spec-exists");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("config.json"), "keep me").unwrap();
    let out = rt
        .cmd_opts(
            &["spec"],
            RunOpts {
                cwd: Some(dir.clone()),
                ..RunOpts::default()
            },
        )
        .unwrap();
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("config.json"), "{out}");
    assert_eq!(
        fs::read_to_string(dir.join("config.json")).unwrap(),
        "keep me"
    );
}

#[test]
fn spec_bundle_flag_writes_into_that_directory() {
    let rt = Runtime::new().unwrap();
    let dir = rt.tmp().join("spec-bundle");
    fs::create_dir_all(&dir).unwrap();
    rt.cmd(&["spec", "--bundle", dir.to_str().unwrap()])
        .unwrap()
        .ok()
        .unwrap();
    let v: Value = serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert!(v["process"].is_object());
}

#[test]
fn features_describes_what_is_supported() {
    let rt = Runtime::new().unwrap();
    let out = rt.cmd(&["features"]).unwrap().ok().unwrap();
    let f: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(f["ociVersionMin"].as_str().unwrap().starts_with("1."));
    assert!(f["ociVersionMax"].as_str().unwrap().starts_with("1."));
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("not an array: {v}"))
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let hooks = list(&f["hooks"]);
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(hooks.iter().any(|x| x == h), "hooks {hooks:?} lack {h}");
    }
    let opts = list(&f["mountOptions"]);
    for o in [
        "ro",
        "rw",
        "bind",
        "rbind",
        "nosuid",
        "nodev",
        "noexec",
        "relatime",
        "rro",
        "rnosuid",
        "tmpcopyup",
    ] {
        assert!(opts.iter().any(|x| x == o), "mountOptions lack {o}");
    }
    let ns = list(&f["linux"]["namespaces"]);
    for n in ["pid", "mount", "network", "uts", "ipc", "user", "cgroup"] {
        assert!(ns.iter().any(|x| x == n), "namespaces {ns:?} lack {n}");
    }
    let caps = list(&f["linux"]["capabilities"]);
    assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"), "{caps:?}");
    assert!(caps.iter().any(|c| c == "CAP_CHOWN"), "{caps:?}");
    if is_berth() {
        // The time namespace is promised where the kernel has it.
        if std::path::Path::new("/proc/self/ns/time").exists() {
            assert!(
                ns.iter().any(|x| x == "time"),
                "namespaces {ns:?} lack time"
            );
        }
    }
}

#[test]
fn pid_file_holds_the_init_pid() {
    let rt = Runtime::new().unwrap();
    let b = rt.bundle().unwrap();
    let pid_file = rt.tmp().join("init.pid");
    let c = rt
        .create_with(
            &b,
            spec_tests::runtime::CreateOpts {
                pid_file: Some(pid_file.clone()),
                ..Default::default()
            },
        )
        .unwrap();
    let text = fs::read_to_string(&pid_file).unwrap();
    assert_eq!(text.trim().parse::<i32>().unwrap(), c.init.pid, "{text:?}");
    c.delete_force().unwrap();
}

#[test]
fn log_format_json_writes_level_msg_time_lines_on_error() {
    let rt = Runtime::new().unwrap();
    let dir = rt.tmp().join("no-config");
    fs::create_dir_all(&dir).unwrap();
    let log = rt.tmp().join("runtime.log");
    let id = rt.unique_id();
    let out = rt
        .cmd(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "create",
            "--bundle",
            dir.to_str().unwrap(),
            &id,
        ])
        .unwrap();
    assert!(!out.success(), "{out}");
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect();
    let last = lines.last().expect("the log has at least one line");
    assert_eq!(last["level"], "error", "{text}");
    assert!(last["time"].is_string(), "{text}");
    assert!(
        last["msg"].as_str().unwrap().contains("config.json"),
        "the last message must name the problem: {text}"
    );
    rt.assert_no_leaks(&id, &dir, &[]).unwrap();
}

#[test]
fn log_in_text_format_writes_level_and_msg_on_error() {
    let rt = Runtime::new().unwrap();
    let dir = rt.tmp().join("no-config-text");
    fs::create_dir_all(&dir).unwrap();
    let log = rt.tmp().join("runtime-text.log");
    let id = rt.unique_id();
    let out = rt
        .cmd(&[
            "--log",
            log.to_str().unwrap(),
            "create",
            "--bundle",
            dir.to_str().unwrap(),
            &id,
        ])
        .unwrap();
    assert!(!out.success(), "{out}");
    let text = fs::read_to_string(&log).unwrap();
    let last = text.lines().rfind(|l| !l.trim().is_empty()).unwrap();
    // logrus text format, as runc writes it: time="..." level=error msg="..."
    assert!(last.starts_with("time=\""), "{text}");
    assert!(last.contains(" level=error "), "{text}");
    assert!(
        last.contains("msg=\"") && last.contains("config.json"),
        "{text}"
    );
    // The error also reaches stderr for the user.
    assert!(out.stderr.contains("config.json"), "{out}");
}

#[test]
fn version_and_help_succeed() {
    let rt = Runtime::new().unwrap();
    let v = rt.cmd(&["--version"]).unwrap().ok().unwrap();
    assert!(
        v.stdout.contains("spec"),
        "version names the spec version: {v}"
    );
    let h = rt.cmd(&["--help"]).unwrap().ok().unwrap();
    for verb in [
        "create", "start", "run", "state", "kill", "delete", "list", "spec", "features",
    ] {
        assert!(h.stdout.contains(verb), "help lacks {verb}: {h}");
    }
}

#[test]
fn debug_flag_is_accepted() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("echo debug-ok");
    b.write_config().unwrap();
    let out = rt
        .cmd(&["--debug", "run", "--bundle", b.dir.to_str().unwrap(), &b.id])
        .unwrap();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("debug-ok"), "{out}");
    rt.assert_no_leaks(&b.id, &b.dir, &[]).unwrap();
}

#[test]
fn systemd_cgroup_without_systemd_fails_clearly() {
    if std::path::Path::new("/run/systemd/system").exists() {
        eprintln!("systemd is running here: this test needs a host without it");
        return;
    }
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.config["linux"]["cgroupsPath"] = json!(format!("system.slice:berth:{}", b.id));
    b.write_config().unwrap();
    let out = rt
        .cmd(&[
            "--systemd-cgroup",
            "create",
            "--bundle",
            b.dir.to_str().unwrap(),
            &b.id,
        ])
        .unwrap();
    assert!(!out.success(), "{out}");
    if is_berth() {
        assert!(out.stderr.contains("systemd"), "{out}");
    }
    rt.assert_no_leaks(&b.id, &b.dir, &[]).unwrap();
}

/// Opens a file with known content, for `--preserve-fds`.
fn fd_with(rt: &Runtime, content: &str) -> OwnedFd {
    let p = rt.fresh_path("fd");
    fs::write(&p, content).unwrap();
    fs::File::open(&p).unwrap().into()
}

#[test]
fn preserve_fds_passes_fd_3_and_nothing_else() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    // `ls` lists its own fds: the inherited ones plus the directory it is reading, which takes
    // the lowest free number (4 here).
    b.sh("cat <&3; exec ls /proc/self/fd");
    let c = rt
        .create_with(
            &b,
            spec_tests::runtime::CreateOpts {
                preserve_fds: Some(1),
                extra_fds: vec![(3, fd_with(&rt, "preserved\n"))],
                ..Default::default()
            },
        )
        .unwrap();
    c.start().unwrap();
    c.wait_stopped(T).unwrap();
    assert_eq!(
        c.stdout(),
        "preserved\n0\n1\n2\n3\n4\n",
        "stderr: {}",
        c.stderr()
    );
    c.delete().unwrap();
}

#[test]
fn fds_of_the_caller_do_not_leak_without_preserve_fds() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    // `ls` lists its own fds: the inherited ones plus the directory it is reading (3).
    b.config["process"]["args"] = json!(["ls", "/proc/self/fd"]);
    let c = rt
        .create_with(
            &b,
            spec_tests::runtime::CreateOpts {
                extra_fds: vec![(3, fd_with(&rt, "x")), (7, fd_with(&rt, "y"))],
                ..Default::default()
            },
        )
        .unwrap();
    c.start().unwrap();
    c.wait_stopped(T).unwrap();
    assert_eq!(c.stdout(), "0\n1\n2\n3\n", "stderr: {}", c.stderr());
    c.delete().unwrap();
}

#[test]
fn many_containers_can_be_created_at_once() {
    let rt = Runtime::new().unwrap();
    let bundles: Vec<_> = (0..10)
        .map(|_| {
            let mut b = rt.bundle().unwrap();
            b.sh("echo $$");
            b
        })
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = bundles
            .iter()
            .map(|b| {
                let rt = &rt;
                s.spawn(move || {
                    let c = rt.create(b).unwrap();
                    c.start().unwrap();
                    c.wait_stopped(T).unwrap();
                    assert_eq!(c.stdout(), "1\n");
                    c.delete().unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}

#[test]
fn concurrent_commands_on_one_container_are_safe() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("sleep 100");
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                for _ in 0..4 {
                    let st = c.state().unwrap();
                    assert_eq!(st["status"], "running", "{st}");
                    c.kill(&["0"]).unwrap().ok().unwrap();
                }
            });
        }
    });
    let listed = rt.cmd(&["list", "-q"]).unwrap().ok().unwrap();
    assert_eq!(listed.stdout.trim(), c.id);
    c.delete_force().unwrap();
}
