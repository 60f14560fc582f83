//! Escapes that hit runc and others, each tried for real, plus the process hardening settings
//! (capabilities of a non-root user, personality, ioPriority, scheduler, LSM labels).
//!
//! - CVE-2019-5736: overwriting the runtime binary through /proc/<pid>/exe.
//! - CVE-2024-21626: host fds and a host working directory reaching the container.
//! - CVE-2021-30465 / CVE-2023-27561 class: mount, device, masked and read-only paths that
//!   are symlinks out of the rootfs.
//! - CVE-2019-16884 class: /proc replaced by a bundle mount before the runtime writes to it.

use std::fs::{self, File};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};
use spec_tests::runtime::security::install_host_program;
use spec_tests::runtime::{
    cap_mask, is_berth, runtime_binary, status_field, Bundle, CreateOpts, Runtime,
};

const T: Duration = Duration::from_secs(15);
const PROBE: &str = env!("CARGO_BIN_EXE_berth-probe");

fn probe_bundle(rt: &Runtime) -> Bundle {
    let b = rt.bundle().unwrap();
    install_host_program(&b.rootfs(), Path::new(PROBE), "/bin/berth-probe").unwrap();
    b
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(fs::read(path).unwrap()))
}

/// Runs `script` with the config edited by `edit`; returns (stdout, stderr).
fn run_sh(edit: impl FnOnce(&mut Bundle), script: &str) -> (String, String) {
    let rt = Runtime::new().unwrap();
    let mut b = probe_bundle(&rt);
    b.sh(script);
    edit(&mut b);
    let fin = rt.run_to_exit(&b).unwrap();
    (fin.stdout, fin.stderr)
}

/// The resolved absolute path of a host directory, without its leading '/'.
fn rel(p: &Path) -> String {
    p.to_string_lossy().trim_start_matches('/').to_string()
}

/// CVE-2019-5736. Container B's program is a script whose interpreter is `/proc/self/exe`:
/// with a runtime that execve's it from its own binary, the kernel resolves that to the host
/// runtime binary and runs it as B's process, which an attacker in a shared pid namespace
/// (container A) can open through /proc/<pid>/exe and overwrite once it exits. The runtime
/// here is a private copy of the binary under test, so the attack cannot damage the build.
#[test]
fn cve_2019_5736_the_runtime_binary_cannot_be_overwritten_through_proc_exe() {
    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join("berth-runtime-copy");
    fs::copy(runtime_binary(), &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    let before = sha256(&copy);
    let rt = Runtime::with_binary(copy.clone()).unwrap();

    let mut a = probe_bundle(&rt);
    a.config["process"]["args"] = json!(["berth-probe", "attack-exe", "5"]);
    let attacker = rt.create(&a).unwrap();
    attacker.start().unwrap();
    attacker.wait_for_stdout("attacker ready", T).unwrap();

    let mut b = rt.bundle().unwrap();
    let evil = b
        .write_rootfs_file("/evil", "#!/proc/self/exe --root\n")
        .unwrap();
    fs::set_permissions(&evil, fs::Permissions::from_mode(0o755)).unwrap();
    b.config["process"]["args"] = json!(["/evil", "state", "x"]);
    b.remove_namespace("pid");
    b.add_namespace(
        json!({ "type": "pid", "path": format!("/proc/{}/ns/pid", attacker.init.pid) }),
    );
    let victim = rt.create(&b).unwrap();
    victim.start().unwrap();
    victim.wait_stopped(T).unwrap();
    let victim_err = victim.stderr();
    victim.delete().unwrap();

    // Control: the attacker does succeed against a host binary that a container process
    // runs while dumpable (a decoy copy of the probe, bind-mounted in), so the result above
    // is the runtime's doing, not a toothless attacker.
    let decoys = scratch.path().join("decoys");
    fs::create_dir_all(&decoys).unwrap();
    fs::copy(PROBE, decoys.join("decoy")).unwrap();
    let decoy_before = sha256(&decoys.join("decoy"));
    let mut d = probe_bundle(&rt);
    d.add_mount(
        json!({ "destination": "/decoys", "type": "bind", "source": decoys, "options": ["rbind"] }),
    );
    d.config["process"]["args"] = json!(["sh", "-c", "/decoys/decoy sleep 400; sleep 1"]);
    d.remove_namespace("pid");
    d.add_namespace(
        json!({ "type": "pid", "path": format!("/proc/{}/ns/pid", attacker.init.pid) }),
    );
    let decoy = rt.create(&d).unwrap();
    decoy.start().unwrap();
    decoy.wait_stopped(T).unwrap();
    decoy.delete().unwrap();

    attacker.wait_stopped(T).unwrap();
    let seen = attacker.stdout();
    attacker.delete().unwrap();

    assert_eq!(
        sha256(&copy),
        before,
        "the runtime binary was modified; attacker: {seen}"
    );
    assert_ne!(
        sha256(&decoys.join("decoy")),
        decoy_before,
        "control failed: {seen}"
    );
    assert_eq!(seen.matches("overwrote").count(), 1, "{seen}");
    assert!(
        seen.contains("overwrote") && seen.contains("decoy"),
        "{seen}"
    );
    if is_berth() {
        // The interpreter resolved to the sealed trampoline, which refuses to run as one;
        // the runtime's own CLI never ran as the container's process.
        assert!(
            victim_err.contains("exec trampoline: not an interpreter")
                && !victim_err.contains("Usage"),
            "{victim_err}"
        );
    }
}

fn open_fd(path: &Path) -> OwnedFd {
    OwnedFd::from(File::open(path).unwrap())
}

/// CVE-2024-21626: descriptors the caller (or the runtime) holds must not reach the
/// container; only stdio and `--preserve-fds` do.
#[test]
fn cve_2024_21626_only_stdio_and_preserved_fds_reach_the_container() {
    let rt = Runtime::new().unwrap();
    for preserve in [None, Some(1)] {
        let mut b = probe_bundle(&rt);
        b.sh("berth-probe fds | cut -d' ' -f1 | tr '\\n' ' '");
        let c = rt
            .create_with(
                &b,
                CreateOpts {
                    preserve_fds: preserve,
                    extra_fds: vec![
                        (3, open_fd(Path::new("/"))),
                        (4, open_fd(rt.tmp())),
                        (9, open_fd(&runtime_binary())),
                    ],
                    ..CreateOpts::default()
                },
            )
            .unwrap();
        c.start().unwrap();
        c.wait_stopped(T).unwrap();
        let out = c.stdout();
        c.delete().unwrap();
        let want = if preserve.is_some() {
            "0 1 2 3 "
        } else {
            "0 1 2 "
        };
        assert_eq!(out, want, "--preserve-fds {preserve:?}");
    }
}

/// CVE-2024-21626: a cwd of /proc/self/fd/N must not land in a host directory, whatever
/// descriptor N is at that moment (one of the caller's, or one of the runtime's own).
#[test]
fn cve_2024_21626_a_cwd_through_a_leaked_fd_never_reaches_the_host() {
    let rt = Runtime::new().unwrap();
    let host = rt.tmp().join("host-side");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("HOST-MARKER"), "host").unwrap();
    for n in 3..=12 {
        let mut b = rt.bundle().unwrap();
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        b.sh("ls -a; ls -a ../../..; pwd");
        b.write_config().unwrap();
        let dir = b.dir.display().to_string();
        let spawned = rt
            .spawn(
                &["create", "--bundle", &dir, &b.id],
                spec_tests::runtime::RunOpts {
                    extra_fds: vec![(3, open_fd(&host))],
                    ..Default::default()
                },
            )
            .unwrap();
        let (out_path, err_path) = (spawned.stdout_path.clone(), spawned.stderr_path.clone());
        let created = spawned.wait(T).unwrap();
        if !created.success() {
            rt.assert_no_leaks(&b.id, &b.dir, &[]).unwrap();
            continue;
        }
        let c = rt.adopt(&b, out_path, err_path).unwrap();
        c.start().unwrap();
        c.wait_stopped(T).unwrap();
        let out = c.stdout();
        c.delete().unwrap();
        assert!(
            !out.contains("HOST-MARKER"),
            "cwd fd {n} reached the host: {out}"
        );
        assert!(
            !out.contains("berth-rt-"),
            "cwd fd {n} reached the host: {out}"
        );
    }
}

/// CVE-2021-30465 class: mount and device destinations that go through symlinks to "/",
/// to ../../.. and to absolute host paths land inside the rootfs, and the host is untouched.
#[test]
fn symlinked_mount_and_device_destinations_resolve_inside_the_root() {
    let rt = Runtime::new().unwrap();
    let host = rt.tmp().join("host-target");
    fs::create_dir_all(&host).unwrap();
    let src = rt.tmp().join("bind-src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("from-bind"), "x").unwrap();
    let mut b = probe_bundle(&rt);
    let root = b.rootfs();
    // The host path also exists inside the rootfs: resolved in the root, the links end there.
    fs::create_dir_all(root.join(rel(&host))).unwrap();
    symlink("/", root.join("to-root")).unwrap();
    symlink(
        format!("../../../../../../../../../{}", rel(&host)),
        root.join("to-up"),
    )
    .unwrap();
    symlink(&host, root.join("to-host")).unwrap();
    let landed = format!("landed-{}", b.id);
    b.add_mount(
        json!({ "destination": format!("/to-root/{landed}"), "type": "tmpfs", "source": "tmpfs" }),
    );
    b.add_mount(json!({ "destination": "/to-up/up", "type": "tmpfs", "source": "tmpfs" }));
    b.add_mount(json!({ "destination": "/to-host/bound", "type": "bind", "source": src, "options": ["rbind"] }));
    b.config["linux"]["devices"] =
        json!([{ "path": "/to-host/devnode", "type": "c", "major": 1, "minor": 3 }]);
    let h = host.display();
    b.sh(&format!(
        "cut -d' ' -f5 /proc/self/mountinfo | grep -E 'landed-|/up$|/bound$' | sort; \
         ls {h}/bound; test -c {h}/devnode && echo devnode"
    ));
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(
        fin.stdout,
        format!("/{landed}\n{h}/bound\n{h}/up\nfrom-bind\ndevnode\n"),
        "stderr: {}",
        fin.stderr
    );
    assert!(!Path::new("/").join(&landed).exists(), "host / was touched");
    let left: Vec<_> = fs::read_dir(&host)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "the host directory got {left:?}");
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&landed) && !mountinfo.contains(&*host.to_string_lossy()));

    // A link whose target exists only on the host: refused, or created inside; never there.
    let mut b = rt.bundle().unwrap();
    symlink(&host, b.rootfs().join("dangling")).unwrap();
    b.add_mount(json!({ "destination": "/dangling/m", "type": "tmpfs", "source": "tmpfs" }));
    b.sh("true");
    if let Ok(c) = rt.create(&b) {
        c.delete_force().unwrap();
    }
    let left: Vec<_> = fs::read_dir(&host)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "the host directory got {left:?}");
}

/// CVE-2023-27561 class: masked and read-only paths that are symlinks out of the rootfs
/// apply to the path inside the root, never to the host file.
#[test]
fn symlinked_masked_and_readonly_paths_stay_inside_the_root() {
    let rt = Runtime::new().unwrap();
    let host = rt.tmp().join("host-secret-dir");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("secret"), "host-secret").unwrap();
    let mut b = probe_bundle(&rt);
    let root = b.rootfs();
    // The same path inside the rootfs, so the in-root resolution has something to act on.
    fs::create_dir_all(root.join(rel(&host))).unwrap();
    fs::write(root.join(rel(&host)).join("secret"), "inside").unwrap();
    symlink(host.join("secret"), root.join("mask-me")).unwrap();
    symlink(
        format!("../../../../../../../{}", rel(&host)),
        root.join("ro-me"),
    )
    .unwrap();
    b.config["linux"]["maskedPaths"] = json!(["/mask-me"]);
    b.config["linux"]["readonlyPaths"] = json!(["/ro-me"]);
    b.sh("echo \"[$(cat /mask-me)]\"; touch /ro-me/x 2>/dev/null || echo read-only");
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(fin.stdout, "[]\nread-only\n", "stderr: {}", fin.stderr);
    assert_eq!(
        fs::read_to_string(host.join("secret")).unwrap(),
        "host-secret"
    );
    fs::write(host.join("still-writable"), "y").unwrap();
}

/// CVE-2019-16884 class: the bundle mounts a fake /proc/sys (a bind of a host directory
/// holding a fake `kernel/shmmax`) and could shadow /proc itself; sysctls and oomScoreAdj
/// must still reach the real procfs, and the fake files stay untouched.
#[test]
fn proc_shadowed_by_bundle_mounts_is_not_written_to() {
    let rt = Runtime::new().unwrap();
    let fake = rt.tmp().join("fake-proc-sys");
    fs::create_dir_all(fake.join("kernel")).unwrap();
    fs::write(fake.join("kernel/shmmax"), "fake").unwrap();
    for shadow_all_of_proc in [false, true] {
        let mut b = rt.bundle().unwrap();
        if shadow_all_of_proc {
            b.add_mount(json!({ "destination": "/proc", "type": "tmpfs", "source": "tmpfs" }));
        }
        b.add_mount(json!({ "destination": "/proc/sys", "type": "bind", "source": fake, "options": ["rbind"] }));
        b.config["linux"]["readonlyPaths"] = json!([]);
        b.config["linux"]["sysctl"] = json!({ "kernel.shmmax": "123456789" });
        b.config["process"]["oomScoreAdj"] = json!(611);
        let c = match rt.create(&b) {
            Ok(c) => c,
            // Refusing the bundle is an acceptable answer too.
            Err(_) => continue,
        };
        let pid = c.init.pid;
        let oom = fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
        let shmmax = std::process::Command::new("nsenter")
            .args([
                "-t",
                &pid.to_string(),
                "-i",
                "cat",
                "/proc/sys/kernel/shmmax",
            ])
            .output()
            .unwrap();
        c.delete_force().unwrap();
        assert_eq!(oom.trim(), "611");
        assert_eq!(String::from_utf8_lossy(&shmmax.stdout).trim(), "123456789");
        assert_eq!(
            fs::read_to_string(fake.join("kernel/shmmax")).unwrap(),
            "fake"
        );
    }
}

#[test]
fn a_non_root_user_keeps_exactly_its_configured_capabilities() {
    let set = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let (out, _) = run_sh(
        |b| {
            b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
            b.config["process"]["capabilities"] = json!({
                "bounding": set, "effective": set, "permitted": set,
                "inheritable": set, "ambient": set
            });
        },
        "grep ^Cap /proc/self/status; touch /tmp/f; chown 2000 /tmp/f && echo chowned",
    );
    for field in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(
            status_field(&out, field),
            Some(cap_mask(&set).as_str()),
            "{field}: {out}"
        );
    }
    assert!(out.ends_with("chowned\n"), "{out}");
}

#[test]
fn personality_linux32_reports_a_32_bit_machine() {
    if !is_berth() {
        return; // runc 1.1 predates linux.personality
    }
    let (out, _) = run_sh(
        |b| b.config["linux"]["personality"] = json!({ "domain": "LINUX32" }),
        "uname -m",
    );
    assert_eq!(out, "i686\n");
}

#[test]
fn io_priority_is_applied() {
    if !is_berth() {
        return; // runc 1.1 predates process.ioPriority
    }
    let (out, _) = run_sh(
        |b| {
            b.config["process"]["ioPriority"] = json!({ "class": "IOPRIO_CLASS_BE", "priority": 6 })
        },
        &format!("berth-probe syscall {} 1 0", libc::SYS_ioprio_get),
    );
    assert_eq!(out, format!("ok {}\n", (2 << 13) | 6));
}

#[test]
fn scheduler_policy_and_nice_are_applied() {
    if !is_berth() {
        return; // runc 1.1 predates process.scheduler
    }
    let (out, _) = run_sh(
        |b| b.config["process"]["scheduler"] = json!({ "policy": "SCHED_BATCH", "nice": 7 }),
        &format!(
            "berth-probe syscall {} 0; cut -d' ' -f19 /proc/self/stat",
            libc::SYS_sched_getscheduler
        ),
    );
    assert_eq!(out, "ok 3\n7\n");
}

/// Creates `b` expecting failure; returns stderr.
fn create_fails(rt: &Runtime, b: &Bundle) -> String {
    b.write_config().unwrap();
    let dir = b.dir.display().to_string();
    let out = rt.cmd(&["create", "--bundle", &dir, &b.id]).unwrap();
    let _ = rt.cmd(&["delete", "--force", &b.id]);
    out.failed().unwrap().stderr
}

#[test]
fn bad_scheduler_and_io_priority_fail_at_create_naming_the_field() {
    if !is_berth() {
        return;
    }
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.config["process"]["scheduler"] = json!({ "policy": "SCHED_FIFO", "priority": 0 });
    assert!(create_fails(&rt, &b).contains("process.scheduler.priority"));
    let mut b = rt.bundle().unwrap();
    b.config["process"]["ioPriority"] = json!({ "class": "IOPRIO_CLASS_BE", "priority": 9 });
    assert!(create_fails(&rt, &b).contains("process.ioPriority.priority"));
    rt.assert_no_leaks(&b.id, &b.dir, &[]).unwrap();
}

fn lsm_enabled(name: &str) -> bool {
    fs::read_to_string("/sys/kernel/security/lsm").is_ok_and(|l| l.split(',').any(|m| m == name))
        || (name == "apparmor" && Path::new("/sys/kernel/security/apparmor").exists())
        || (name == "selinux" && Path::new("/sys/fs/selinux/enforce").exists())
}

/// Like runc: a label for an LSM the host does not have is an error, not silently ignored.
#[test]
fn lsm_labels_without_the_lsm_fail_like_runc() {
    let rt = Runtime::new().unwrap();
    if !lsm_enabled("apparmor") {
        let mut b = rt.bundle().unwrap();
        b.config["process"]["apparmorProfile"] = json!("berth-test-profile");
        let err = create_fails(&rt, &b);
        if is_berth() {
            assert!(err.contains("process.apparmorProfile"), "{err}");
        }
    }
    if !lsm_enabled("selinux") {
        let mut b = rt.bundle().unwrap();
        b.config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
        let err = create_fails(&rt, &b);
        assert!(err.to_lowercase().contains("selinux"), "{err}");
    }
}

/// A program the kernel cannot execute is reported with its errno by the exec trampoline.
#[test]
fn a_program_that_cannot_be_executed_reports_its_errno() {
    if !is_berth() {
        return;
    }
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    let bad = b
        .write_rootfs_file("/bin/not-a-program", "garbage\n")
        .unwrap();
    fs::set_permissions(&bad, fs::Permissions::from_mode(0o755)).unwrap();
    b.config["process"]["args"] = json!(["/bin/not-a-program"]);
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(
        fin.stderr,
        format!("berth-runtime: exec failed: errno {}\n", libc::ENOEXEC)
    );
}

/// CVE-2019-5736 through `exec`: the process exec'd into a running container also reaches
/// its program through the sealed trampoline, never the runtime binary.
#[test]
fn cve_2019_5736_exec_into_a_container_goes_through_the_trampoline_too() {
    if !is_berth() {
        return;
    }
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    let evil = b
        .write_rootfs_file("/evil", "#!/proc/self/exe --root\n")
        .unwrap();
    fs::set_permissions(&evil, fs::Permissions::from_mode(0o755)).unwrap();
    b.sh("sleep 30");
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    let out = c.verb(&["exec"], &["/evil", "state", "x"]).unwrap();
    c.kill(&["KILL"]).unwrap();
    c.wait_stopped(T).unwrap();
    c.delete().unwrap();
    assert_eq!(out.code, Some(127), "{out}");
    assert!(
        out.stderr.contains("exec trampoline: not an interpreter") && !out.stderr.contains("Usage"),
        "{out}"
    );
}
