//! Behaviours runc's integration suite expects of a runtime, each one fixed in berth-runtime
//! after that suite found it different: mounts (read-only /dev, rro, tmpfs modes, masks, the
//! host's /proc under --no-pivot), seccomp (-ENOSYS, hooks under the filter, listener paths),
//! the process (HOME, groups, cwd, exec permission), devices, user namespaces and hooks.
//! Every test holds for Debian's runc too (`BERTH_TEST_RUNTIME=runc`), except where marked.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use spec_tests::runtime::security::{default_seccomp_profile, install_host_program};
use spec_tests::runtime::{is_berth, Bundle, CreateOpts, RunOpts, Runtime};

const T: Duration = Duration::from_secs(20);
const PROBE: &str = env!("CARGO_BIN_EXE_berth-probe");

/// Runs the bundle to its end; (status, stdout + stderr) of the whole `run`.
fn run(rt: &Runtime, b: &Bundle) -> Result<(Option<i32>, String)> {
    b.write_config()?;
    let dir = b.dir.display().to_string();
    let out = rt.cmd(&["run", "--bundle", &dir, &b.id])?;
    rt.assert_no_leaks(&b.id, &b.dir, &[])?;
    Ok((out.code, format!("{}{}", out.stdout, out.stderr)))
}

fn run_ok(rt: &Runtime, b: &Bundle) -> Result<String> {
    match run(rt, b)? {
        (Some(0), out) => Ok(out),
        (code, out) => anyhow::bail!("run exited {code:?}: {out}"),
    }
}

/// A host tmpfs mounted at `path` for the test's length (unmounted on drop).
struct HostMount(PathBuf);

impl HostMount {
    fn tmpfs(path: &Path) -> Result<HostMount> {
        fs::create_dir_all(path)?;
        nix::mount::mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .with_context(|| format!("mounting a tmpfs on {}", path.display()))?;
        Ok(HostMount(path.to_path_buf()))
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn a_read_only_dev_is_populated_first() -> Result<()> {
    let rt = Runtime::new()?;
    let mut b = rt.bundle()?;
    for m in b.config["mounts"].as_array_mut().expect("mounts") {
        if m["destination"] == "/dev" {
            m["options"]
                .as_array_mut()
                .expect("options")
                .push(json!("ro"));
        }
    }
    b.sh("grep '^tmpfs /dev ' /proc/mounts; ls /dev/null /dev/zero /dev/ptmx; touch /dev/x || echo refused");
    let out = run_ok(&rt, &b)?;
    assert!(
        out.lines().next().is_some_and(|l| l.contains(" ro,")),
        "{out}"
    );
    assert!(
        out.contains("/dev/null") && out.contains("/dev/ptmx"),
        "{out}"
    );
    assert!(out.contains("refused"), "{out}");
    Ok(())
}

/// `rro` makes the mounts below a bind read-only too (mount_setattr AT_RECURSIVE); plain
/// `ro` only the top one.
#[test]
fn rro_makes_every_mount_below_read_only() -> Result<()> {
    let rt = Runtime::new()?;
    let src = rt.tmp().join("vol");
    fs::create_dir_all(&src)?;
    let _sub = HostMount::tmpfs(&src.join("sub"))?;
    let mut results = Vec::new();
    for opts in [json!(["rbind", "ro"]), json!(["rbind", "rro"])] {
        let mut b = rt.bundle()?;
        b.add_mount(json!({ "source": src, "destination": "/mnt", "options": opts }));
        b.sh("touch /mnt/top 2>/dev/null && echo top-rw || echo top-ro; \
              touch /mnt/sub/x 2>/dev/null && echo sub-rw || echo sub-ro");
        results.push(run_ok(&rt, &b)?);
    }
    assert_eq!(results[0], "top-ro\nsub-rw\n");
    assert_eq!(results[1], "top-ro\nsub-ro\n");
    Ok(())
}

/// A tmpfs over an existing directory takes that directory's mode (set-id and sticky bits
/// included) unless the mount sets one. runc 1.1 applies the directory's mode even over an
/// explicit mode=, hence berth only for that half.
#[test]
fn a_tmpfs_keeps_the_mode_of_the_directory_it_covers() -> Result<()> {
    let rt = Runtime::new()?;
    let mut b = rt.bundle()?;
    let tmp = b.rootfs().join("tmp");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o7777))?;
    fs::create_dir_all(b.rootfs().join("opt/m"))?;
    b.add_mount(
        json!({ "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
        "options": ["noexec", "nosuid", "nodev", "rprivate"] }),
    );
    b.add_mount(
        json!({ "destination": "/opt/m", "type": "tmpfs", "source": "tmpfs",
        "options": ["mode=0444"] }),
    );
    b.sh("stat -c %a /tmp /opt/m");
    let out = run_ok(&rt, &b)?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "7777", "{out}");
    if is_berth() {
        assert_eq!(lines[1], "444", "{out}");
    }
    Ok(())
}

/// Masked files are bind mounts of the container's own /dev/null (as runc makes them), not
/// of the host's devtmpfs node.
#[test]
fn masked_files_are_the_container_s_own_dev_null() -> Result<()> {
    let rt = Runtime::new()?;
    let mut b = rt.bundle()?;
    // The first masked file this kernel has (not every kernel has /proc/kcore).
    b.sh(
        "stat -c '%d:%i' /dev/null; for f in /proc/kcore /proc/keys /proc/timer_list \
          /proc/sched_debug; do [ -e $f ] && stat -c '%d:%i' $f && break; done",
    );
    let out = run_ok(&rt, &b)?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], lines[1], "{out}");
    Ok(())
}

/// Without pivot_root the host's mounts stay in the container's mount namespace; the host's
/// procfs must not be among them, or a new user namespace could mount a fresh, unmasked
/// procfs (the kernel allows that when a full one is visible).
#[test]
fn no_pivot_does_not_let_the_container_mount_a_bare_proc() -> Result<()> {
    let rt = Runtime::new()?;
    let mut b = rt.bundle()?;
    b.sh("unshare -mrpf sh -c 'mount -t proc none /proc && echo mounted'");
    for set in ["bounding", "permitted", "effective"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .expect("caps")
            .extend([json!("CAP_SETFCAP"), json!("CAP_SYS_ADMIN")]);
    }
    b.write_config()?;
    let dir = b.dir.display().to_string();
    let out = rt.cmd(&["run", "--no-pivot", "--bundle", &dir, &b.id])?;
    rt.assert_no_leaks(&b.id, &b.dir, &[])?;
    assert_ne!(out.code, Some(0), "{out}");
    assert!(!out.stdout.contains("mounted"), "{out}");
    assert!(out.stderr.contains("ermission denied"), "{out}");
    Ok(())
}

fn probe_bundle(rt: &Runtime) -> Result<Bundle> {
    let b = rt.bundle()?;
    install_host_program(&b.rootfs(), Path::new(PROBE), "/bin/berth-probe")?;
    Ok(b)
}

/// Under a refusing default, a syscall newer than every syscall the profile names gets
/// ENOSYS (so programs fall back to older calls), an older one the default's errno.
#[test]
fn syscalls_past_the_profile_get_enosys() -> Result<()> {
    let rt = Runtime::new()?;
    let mut b = probe_bundle(&rt)?;
    let mut p = default_seccomp_profile();
    p["syscalls"][0]["names"]
        .as_array_mut()
        .expect("names")
        .retain(|n| n != "getpriority");
    b.config["linux"]["seccomp"] = p;
    b.sh(&format!(
        "berth-probe syscall 1000; berth-probe syscall {} 0 0",
        libc::SYS_getpriority
    ));
    let out = run_ok(&rt, &b)?;
    assert_eq!(out, format!("err {}\nerr {}\n", libc::ENOSYS, libc::EPERM));
    Ok(())
}

/// startContainer hooks run in the container after the filter is installed (with
/// noNewPrivileges too, as under runc), and their failure reaches `run` in runc's words.
#[test]
fn start_container_hooks_run_under_the_seccomp_filter() -> Result<()> {
    let rt = Runtime::new()?;
    let mut b = rt.bundle()?;
    b.config["linux"]["seccomp"] = json!({ "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL" }] });
    b.config["hooks"] = json!({ "startContainer": [
        { "path": "/bin/sh", "args": ["sh", "-c", "mkdir /dev/shm/foo"] } ] });
    b.sh("true");
    let (code, out) = run(&rt, &b)?;
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("error running hook"), "{out}");
    assert!(out.contains("bad system call"), "{out}");
    Ok(())
}

/// A listenerPath with no NOTIFY rule is ignored (no fd to hand over); NOTIFY on write is
/// refused with runc's words; an agent that is not there fails clearly.
#[test]
fn seccomp_listener_paths_are_read_as_runc_reads_them() -> Result<()> {
    let rt = Runtime::new()?;
    let sock = rt.tmp().join("no-agent.sock");
    let mut b = rt.bundle()?;
    b.config["linux"]["seccomp"] =
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock });
    run_ok(&rt, &b)?;
    let notify = |names: Value| {
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock,
                "syscalls": [{ "names": names, "action": "SCMP_ACT_NOTIFY" }] })
    };
    let mut b = rt.bundle()?;
    b.config["linux"]["seccomp"] = notify(json!(["write"]));
    let (code, out) = run(&rt, &b)?;
    assert_ne!(code, Some(0));
    assert!(
        out.contains("SCMP_ACT_NOTIFY cannot be used for the write syscall"),
        "{out}"
    );
    let mut b = rt.bundle()?;
    b.config["linux"]["seccomp"] = notify(json!(["mkdir"]));
    let (code, out) = run(&rt, &b)?;
    assert_ne!(code, Some(0));
    assert!(
        out.contains("failed to connect with seccomp agent"),
        "{out}"
    );
    Ok(())
}

/// HOME comes from the container's /etc/passwd when the spec's env lacks it ("/" for a uid
/// without an entry); /etc/group adds no supplementary group (runc passes the user as
/// uid:gid, an explicit group: only additionalGids count); a cwd the image lacks is created.
#[test]
fn home_groups_and_cwd_come_from_the_container_s_files() -> Result<()> {
    let rt = Runtime::new()?;
    let mut b = rt.bundle()?;
    b.write_rootfs_file(
        "etc/group",
        "root:x:0:\nwheel:x:10:tester\nusers:x:100:\ntester:x:1000:\n",
    )?;
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    b.config["process"]["cwd"] = json!("/made/by/runtime");
    b.sh("echo $HOME; id -G; pwd");
    assert_eq!(run_ok(&rt, &b)?, "/home/tester\n1000\n/made/by/runtime\n");
    let mut b = rt.bundle()?;
    b.config["process"]["user"] = json!({ "uid": 4242, "gid": 4242 });
    b.sh("echo $HOME");
    assert_eq!(run_ok(&rt, &b)?, "/\n");
    let mut b = rt.bundle()?;
    b.config["process"]["env"]
        .as_array_mut()
        .expect("env")
        .push(json!("HOME=/elsewhere"));
    b.sh("echo $HOME");
    assert_eq!(run_ok(&rt, &b)?, "/elsewhere\n");
    Ok(())
}

/// The exec trampoline (CVE-2019-5736 defence) must not change what can be executed: a
/// user with CAP_DAC_OVERRIDE runs a file only root may execute, a user without cannot.
#[test]
fn cap_dac_override_runs_a_file_without_the_exec_bit_for_the_user() -> Result<()> {
    let rt = Runtime::new()?;
    let mut outcomes = Vec::new();
    for with_cap in [false, true] {
        let mut b = rt.bundle()?;
        // A copy named busybox (the name picks the applet), mode 0744, owned by root.
        let prog = b.rootfs().join("opt/rootonly/busybox");
        fs::create_dir_all(prog.parent().expect("parent"))?;
        fs::copy("/bin/busybox", &prog)?;
        fs::set_permissions(&prog, fs::Permissions::from_mode(0o744))?;
        b.config["process"]["user"] = json!({ "uid": 1000, "gid": 100 });
        b.config["process"]["args"] = json!(["/opt/rootonly/busybox", "echo", "ran"]);
        if with_cap {
            for set in ["bounding", "permitted", "effective"] {
                b.config["process"]["capabilities"][set]
                    .as_array_mut()
                    .expect("caps")
                    .push(json!("CAP_DAC_OVERRIDE"));
            }
        }
        outcomes.push(run(&rt, &b)?);
    }
    assert_ne!(outcomes[0].0, Some(0), "{:?}", outcomes[0]);
    assert!(!outcomes[0].1.contains("ran"), "{:?}", outcomes[0]);
    assert_eq!(outcomes[1].0, Some(0), "{:?}", outcomes[1]);
    assert!(outcomes[1].1.contains("ran"), "{:?}", outcomes[1]);
    Ok(())
}

/// A node of linux.devices exists in the container but gets no device-cgroup rule of its
/// own: under `deny all` it cannot be opened (runc; docker adds the allow rules it wants).
#[test]
fn linux_devices_get_no_implicit_cgroup_access() -> Result<()> {
    let rt = Runtime::new()?;
    let mut b = rt.bundle()?;
    b.config["linux"]["devices"] =
        json!([{ "path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11 }]);
    for set in ["bounding", "permitted", "effective"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .expect("caps")
            .push(json!("CAP_SYSLOG"));
    }
    b.sh("ls /dev/kmsg; head -c 1 /dev/kmsg >/dev/null");
    let (code, out) = run(&rt, &b)?;
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("/dev/kmsg"), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    Ok(())
}

/// In a new user namespace the init has no rights on host directories only host root may
/// enter; bind sources inside them still mount (the runtime takes hold of them first).
#[test]
fn userns_bind_sources_behind_a_root_only_directory_mount() -> Result<()> {
    let rt = Runtime::new()?;
    let locked = rt.tmp().join("locked");
    fs::create_dir_all(locked.join("dir"))?;
    fs::write(locked.join("dir/foo.txt"), "foo")?;
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o700))?;
    let mut b = rt.bundle()?;
    b.add_namespace(json!({ "type": "user" }));
    b.config["linux"]["uidMappings"] =
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    b.config["linux"]["gidMappings"] =
        json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    b.add_mount(
        json!({ "source": locked.join("dir"), "destination": "/tmp/m",
        "options": ["bind"] }),
    );
    b.sh("cat /tmp/m/foo.txt");
    assert_eq!(run_ok(&rt, &b)?, "foo");
    Ok(())
}

/// Hooks: createContainer ones start in the container's root directory (relative paths name
/// its files), and startContainer ones see no descriptor the runtime's caller left open.
#[test]
fn hooks_start_in_the_root_and_inherit_only_stdio() -> Result<()> {
    let rt = Runtime::new()?;
    let mut b = rt.bundle()?;
    // The createContainer hook runs before pivot_root, the startContainer one after it: both
    // write into the rootfs (relative to it, and from inside it).
    b.config["hooks"] = json!({
        "createContainer": [{ "path": "/bin/sh", "args": ["sh", "-c",
            "test -f ./etc/passwd && echo in-root >> ./hook-out"] }],
        "startContainer": [{ "path": "/bin/sh", "args": ["sh", "-c",
            "ls /proc/self/fd | wc -l >> /hook-out"] }]
    });
    let out = b.rootfs().join("hook-out");
    let extra = fs::File::open(rt.tmp())?;
    let c = rt.create_with(
        &b,
        CreateOpts {
            extra_fds: vec![(3, extra.into())],
            ..Default::default()
        },
    )?;
    c.start()?;
    c.wait_stopped(T)?;
    c.delete()?;
    let text = fs::read_to_string(&out)?;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines, ["in-root", "4"], "{text}");
    Ok(())
}

/// runc 1.1 shares a cgroup between containers with a warning (1.2 refuses): berth warns
/// in runc's words and goes on.
#[test]
fn a_container_in_a_non_empty_cgroup_is_warned_about() -> Result<()> {
    let rt = Runtime::new()?;
    let mut first = rt.bundle()?;
    first.config["process"]["args"] = json!(["sleep", "1000"]);
    let c1 = rt.create(&first)?;
    c1.start()?;
    let mut second = rt.bundle()?;
    second.config["linux"]["cgroupsPath"] = first.config["linux"]["cgroupsPath"].clone();
    second.write_config()?;
    let dir = second.dir.display().to_string();
    let out = rt.cmd_opts(
        &["create", "--bundle", &dir, &second.id],
        RunOpts::default(),
    )?;
    let _ = rt.cmd(&["delete", "--force", &second.id]);
    out.ok().map(|out| {
        assert!(
            out.stderr.contains("container's cgroup is not empty"),
            "{out}"
        )
    })?;
    c1.delete_force()
}

/// `tmpcopyup`: the tmpfs starts with a copy of the directory it covers (files, links,
/// directories with their modes and owners); writes stay in the tmpfs. runc 1.1.5 reduces the
/// copied modes by its umask (runc issue 3991), hence berth only for the mode.
#[test]
fn tmpcopyup_fills_the_tmpfs_with_what_it_covers() -> Result<()> {
    let rt = Runtime::new()?;
    let mut b = rt.bundle()?;
    let dir = b.rootfs().join("dir1");
    fs::create_dir_all(dir.join("dir2"))?;
    fs::set_permissions(dir.join("dir2"), fs::Permissions::from_mode(0o777))?;
    fs::write(dir.join("file"), "content")?;
    std::os::unix::fs::symlink("/etc/passwd", dir.join("link"))?;
    std::os::unix::fs::chown(dir.join("file"), Some(1000), Some(100))?;
    b.add_mount(
        json!({ "source": "tmpfs", "destination": "/dir1", "type": "tmpfs",
        "options": ["tmpcopyup"] }),
    );
    b.sh(
        "stat -c '%a' /dir1/dir2; cat /dir1/file; echo; stat -c '%u:%g' /dir1/file; \
          readlink /dir1/link; grep -q '^tmpfs /dir1 ' /proc/mounts && echo tmpfs; \
          touch /dir1/new",
    );
    let out = run_ok(&rt, &b)?;
    let lines: Vec<&str> = out.lines().collect();
    if is_berth() {
        assert_eq!(lines[0], "777", "{out}");
    }
    assert_eq!(
        lines[1..],
        ["content", "1000:100", "/etc/passwd", "tmpfs"],
        "{out}"
    );
    assert!(!dir.join("new").exists(), "a write reached the image");
    Ok(())
}
