//! Root filesystem construction: mounts and their flags, propagation, devices, pivot_root and
//! --no-pivot, readonly root, masked and read-only paths, sysctl.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::json;
use spec_tests::runtime::{is_berth, CreateOpts, Runtime};

const T: Duration = Duration::from_secs(10);

/// The mountinfo line of the mount at `target`, from the container's output of
/// `cat /proc/self/mountinfo`.
fn mountinfo_line<'a>(mountinfo: &'a str, target: &str) -> &'a str {
    mountinfo
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some(target))
        .unwrap_or_else(|| panic!("no mount at {target} in:\n{mountinfo}"))
}

/// A host directory outside the bundle with one file in it.
fn host_dir(rt: &Runtime, name: &str) -> PathBuf {
    let d = rt.tmp().join(name);
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("file"), "from-host\n").unwrap();
    d
}

/// A mount the test makes in the host's mount namespace; detached on drop.
struct HostMount(PathBuf);

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

#[test]
fn tmpfs_mount_applies_size_and_mode() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.add_mount(
        json!({ "destination": "/data", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "size=1m", "mode=1770"] }),
    );
    b.sh("stat -c %a /data; cat /proc/self/mountinfo");
    let fin = rt.run_to_exit(&b).unwrap();
    let (mode, mountinfo) = fin.stdout.split_once('\n').unwrap();
    assert_eq!(mode, "1770", "{fin:?}");
    let line = mountinfo_line(mountinfo, "/data");
    assert!(line.contains(" - tmpfs "), "{line}");
    assert!(line.contains("size=1024k"), "{line}");
    assert!(line.contains("mode=1770"), "{line}");
    assert!(line.contains("nosuid"), "{line}");
}

#[test]
fn read_only_bind_mount_refuses_writes() {
    let rt = Runtime::new().unwrap();
    let src = host_dir(&rt, "ro-src");
    let mut b = rt.bundle().unwrap();
    b.add_mount(json!({ "destination": "/ro", "type": "bind", "source": src,
                        "options": ["bind", "ro"] }));
    b.sh("cat /ro/file; if touch /ro/new 2>/dev/null; then echo writable; else echo refused; fi");
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(fin.stdout, "from-host\nrefused\n", "{fin:?}");
    assert!(!src.join("new").exists());
}

#[test]
fn read_write_bind_mount_writes_reach_the_host() {
    let rt = Runtime::new().unwrap();
    let src = host_dir(&rt, "rw-src");
    let mut b = rt.bundle().unwrap();
    b.add_mount(json!({ "destination": "/rw", "type": "bind", "source": src,
                        "options": ["rbind", "rw"] }));
    b.sh("cat /rw/file; echo from-container > /rw/new");
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(fin.stdout, "from-host\n", "{fin:?}");
    assert_eq!(
        fs::read_to_string(src.join("new")).unwrap(),
        "from-container\n"
    );
}

#[test]
fn bind_mount_flags_nosuid_nodev_noexec_noatime_are_applied() {
    let rt = Runtime::new().unwrap();
    let src = host_dir(&rt, "flags-src");
    fs::copy("/bin/busybox", src.join("busybox")).unwrap();
    let mut b = rt.bundle().unwrap();
    b.add_mount(
        json!({ "destination": "/flags", "type": "bind", "source": src,
                        "options": ["bind", "nosuid", "nodev", "noexec", "noatime"] }),
    );
    b.sh("if /flags/busybox true 2>/dev/null; then echo ran; else echo noexec; fi; cat /proc/self/mountinfo");
    let fin = rt.run_to_exit(&b).unwrap();
    let (exec, mountinfo) = fin.stdout.split_once('\n').unwrap();
    assert_eq!(exec, "noexec", "{fin:?}");
    let line = mountinfo_line(mountinfo, "/flags");
    let opts: Vec<&str> = line.split(' ').nth(5).unwrap().split(',').collect();
    for o in ["nosuid", "nodev", "noexec", "noatime"] {
        assert!(opts.contains(&o), "{o} missing in {line}");
    }
}

#[test]
fn relatime_and_strictatime_options_are_applied() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.add_mount(
        json!({ "destination": "/rel", "type": "tmpfs", "source": "tmpfs",
                        "options": ["relatime"] }),
    );
    b.add_mount(
        json!({ "destination": "/strict", "type": "tmpfs", "source": "tmpfs",
                        "options": ["strictatime"] }),
    );
    b.sh("cat /proc/self/mountinfo");
    let fin = rt.run_to_exit(&b).unwrap();
    let rel = mountinfo_line(&fin.stdout, "/rel");
    assert!(rel.split(' ').nth(5).unwrap().contains("relatime"), "{rel}");
    let strict = mountinfo_line(&fin.stdout, "/strict");
    let opts = strict.split(' ').nth(5).unwrap();
    assert!(
        !opts.contains("relatime") && !opts.contains("noatime"),
        "{strict}"
    );
}

#[test]
fn rbind_brings_submounts_and_bind_does_not() {
    let rt = Runtime::new().unwrap();
    let src = host_dir(&rt, "rbind-src");
    let sub = src.join("sub");
    fs::create_dir_all(&sub).unwrap();
    mount(
        Some("tmpfs"),
        &sub,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    let _guard = HostMount(sub.clone());
    fs::write(sub.join("inner"), "submount\n").unwrap();

    let mut b = rt.bundle().unwrap();
    b.add_mount(json!({ "destination": "/r", "type": "bind", "source": src,
                        "options": ["rbind"] }));
    b.add_mount(json!({ "destination": "/nr", "type": "bind", "source": src,
                        "options": ["bind"] }));
    b.sh("cat /r/sub/inner; ls /nr/sub | wc -l");
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(fin.stdout, "submount\n0\n", "{fin:?}");
}

#[test]
fn proc_sysfs_devpts_mqueue_shm_and_cgroup_are_mounted() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("cat /proc/self/mountinfo");
    let fin = rt.run_to_exit(&b).unwrap();
    for (target, fstype) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
    ] {
        let line = mountinfo_line(&fin.stdout, target);
        assert!(line.contains(&format!(" - {fstype} ")), "{line}");
    }
    let sys = mountinfo_line(&fin.stdout, "/sys");
    assert!(sys.split(' ').nth(5).unwrap().starts_with("ro"), "{sys}");
    // A cgroup mount shows the container's cgroups under /sys/fs/cgroup (v1: one per
    // controller, v2: the unified hierarchy).
    assert!(
        fin.stdout.lines().any(|l| l
            .split(' ')
            .nth(4)
            .is_some_and(|t| t.starts_with("/sys/fs/cgroup"))
            && (l.contains(" - cgroup ") || l.contains(" - cgroup2 "))),
        "{fin:?}"
    );
}

/// Runs a container whose rootfs is a shared mount on the host, mounts a tmpfs at
/// rootfs/mnt on the host once the container runs, and reports whether the container saw it.
fn host_mount_reaches_container(propagation: &str) -> bool {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    let rootfs = b.rootfs();
    fs::create_dir_all(rootfs.join("mnt")).unwrap();
    mount(
        Some(&rootfs),
        &rootfs,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let root_guard = HostMount(rootfs.clone());
    mount(
        None::<&str>,
        &rootfs,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .unwrap();
    b.config["linux"]["rootfsPropagation"] = json!(propagation);
    b.sh("echo waiting; for i in $(seq 1 100); do if [ -e /mnt/marker ]; then echo seen; exit 0; fi; sleep 0.01; done; echo unseen");
    let c = rt.create(&b).unwrap();
    c.start().unwrap();
    c.wait_for_stdout("waiting", T).unwrap();
    let mnt = rootfs.join("mnt");
    mount(
        Some("tmpfs"),
        &mnt,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    let mnt_guard = HostMount(mnt.clone());
    fs::write(mnt.join("marker"), "").unwrap();
    c.wait_stopped(T).unwrap();
    let seen = c.stdout().contains("seen\n") && !c.stdout().contains("unseen");
    // Host mounts under the bundle go before the leak check.
    drop(mnt_guard);
    drop(root_guard);
    c.delete().unwrap();
    seen
}

#[test]
fn rootfs_propagation_rslave_receives_host_mounts() {
    assert!(host_mount_reaches_container("rslave"));
}

#[test]
fn rootfs_propagation_private_receives_no_host_mounts() {
    assert!(!host_mount_reaches_container("private"));
}

/// runc 1.1 makes a rootfs that is itself a shared mount point private ("shared" has no
/// visible effect there), so the spec-correct check runs for berth only.
#[test]
fn rootfs_propagation_shared_makes_the_root_mount_shared() {
    if !is_berth() {
        eprintln!("runc 1.1 does not make the root mount shared: checked for berth only");
        return;
    }
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.config["linux"]["rootfsPropagation"] = json!("shared");
    b.sh("cat /proc/self/mountinfo");
    let fin = rt.run_to_exit(&b).unwrap();
    let root = mountinfo_line(&fin.stdout, "/");
    assert!(root.contains(" shared:"), "{root}");
}

#[test]
fn dev_has_the_default_devices_and_symlinks() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh(
        "for d in null zero full random urandom tty; do stat -c '%n %F %t %T' /dev/$d; done; \
          for l in fd stdin stdout stderr ptmx; do echo /dev/$l $(readlink /dev/$l); done; \
          echo hi > /dev/null && head -c 3 /dev/zero | wc -c",
    );
    let fin = rt.run_to_exit(&b).unwrap();
    let want = "/dev/null character special file 1 3\n\
                /dev/zero character special file 1 5\n\
                /dev/full character special file 1 7\n\
                /dev/random character special file 1 8\n\
                /dev/urandom character special file 1 9\n\
                /dev/tty character special file 5 0\n\
                /dev/fd /proc/self/fd\n\
                /dev/stdin /proc/self/fd/0\n\
                /dev/stdout /proc/self/fd/1\n\
                /dev/stderr /proc/self/fd/2\n\
                /dev/ptmx pts/ptmx\n\
                3\n";
    assert_eq!(fin.stdout, want, "{fin:?}");
}

#[test]
fn linux_devices_creates_nodes_with_the_given_numbers_mode_and_owner() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.config["linux"]["devices"] = json!([
        { "path": "/dev/berth-null", "type": "c", "major": 1, "minor": 3,
          "fileMode": 0o640, "uid": 1000, "gid": 100 },
        { "path": "/dev/sub/berth-zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o666 }
    ]);
    b.config["linux"]["resources"]["devices"] = json!([
        { "allow": false, "access": "rwm" },
        { "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" },
        { "allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm" }
    ]);
    b.sh(
        "stat -c '%F %t %T %a %u %g' /dev/berth-null; stat -c '%F %t %T %a' /dev/sub/berth-zero; \
          head -c 2 /dev/sub/berth-zero | wc -c",
    );
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(
        fin.stdout, "character special file 1 3 640 1000 100\ncharacter special file 1 5 666\n2\n",
        "{fin:?}"
    );
}

#[test]
fn pivot_root_hides_the_host_filesystem() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.write_rootfs_file("/marker", "inside\n").unwrap();
    b.sh("cat /marker; ls /; awk '$5 == \"/\"' /proc/self/mountinfo | wc -l");
    let fin = rt.run_to_exit(&b).unwrap();
    let lines: Vec<&str> = fin.stdout.lines().collect();
    assert_eq!(lines[0], "inside");
    assert!(lines.contains(&"bin"), "{fin:?}");
    assert!(
        !lines.contains(&"usr"),
        "the host's /usr must not be visible: {fin:?}"
    );
    assert_eq!(
        *lines.last().unwrap(),
        "1",
        "exactly one root mount: {fin:?}"
    );
}

#[test]
fn no_pivot_runs_the_container_in_its_rootfs() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.write_rootfs_file("/marker", "inside\n").unwrap();
    b.sh("echo $$; cat /marker; ls / | grep -c '^usr$'");
    let c = rt
        .create_with(
            &b,
            CreateOpts {
                no_pivot: true,
                ..Default::default()
            },
        )
        .unwrap();
    c.start().unwrap();
    c.wait_stopped(T).unwrap();
    assert_eq!(c.stdout(), "1\ninside\n0\n", "stderr: {}", c.stderr());
    c.delete().unwrap();
}

#[test]
fn no_new_keyring_flag_is_accepted() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.sh("echo ok");
    let c = rt
        .create_with(
            &b,
            CreateOpts {
                no_new_keyring: true,
                ..Default::default()
            },
        )
        .unwrap();
    c.start().unwrap();
    c.wait_stopped(T).unwrap();
    assert_eq!(c.stdout(), "ok\n");
    c.delete().unwrap();
}

#[test]
fn readonly_root_refuses_writes_but_a_tmpfs_stays_writable() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.config["root"]["readonly"] = json!(true);
    b.add_mount(
        json!({ "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "nodev"] }),
    );
    b.sh(
        "if touch /newfile 2>/dev/null; then echo root-writable; else echo root-ro; fi; \
          touch /tmp/ok && echo tmp-writable",
    );
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(fin.stdout, "root-ro\ntmp-writable\n", "{fin:?}");
    assert!(!b.rootfs().join("newfile").exists());
}

#[test]
fn masked_paths_read_empty() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.write_rootfs_file("/secret/file", "top secret\n").unwrap();
    b.write_rootfs_file("/secretdir/a", "a\n").unwrap();
    b.write_rootfs_file("/secretdir/b", "b\n").unwrap();
    b.config["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .extend([
            json!("/secret/file"),
            json!("/secretdir"),
            json!("/does/not/exist"),
        ]);
    // One of the default masked /proc files that this kernel has.
    let proc_file = [
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/keys",
        "/proc/kcore",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .unwrap();
    b.sh(&format!(
        "echo \"[$(cat /secret/file)]\"; ls -A /secretdir | wc -l; cat {proc_file} | wc -c"
    ));
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(fin.stdout, "[]\n0\n0\n", "{fin:?}");
    // Masking hides, it does not change the rootfs.
    assert_eq!(
        fs::read_to_string(b.rootfs().join("secret/file")).unwrap(),
        "top secret\n"
    );
}

#[test]
fn readonly_paths_refuse_writes() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.write_rootfs_file("/rodir/file", "keep\n").unwrap();
    b.config["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/rodir"));
    b.sh("cat /rodir/file; if echo x > /rodir/file 2>/dev/null; then echo writable; else echo refused; fi; \
          if echo 1 > /proc/sys/kernel/domainname 2>/dev/null; then echo proc-writable; else echo proc-refused; fi; \
          touch /elsewhere && echo rest-writable");
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(
        fin.stdout, "keep\nrefused\nproc-refused\nrest-writable\n",
        "{fin:?}"
    );
    assert_eq!(
        fs::read_to_string(b.rootfs().join("rodir/file")).unwrap(),
        "keep\n"
    );
}

#[test]
fn sysctl_sets_values_in_the_container_namespaces() {
    let rt = Runtime::new().unwrap();
    let host_forward = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_shmmax = fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let mut b = rt.bundle().unwrap();
    let want_forward = if host_forward.trim() == "1" { "0" } else { "1" };
    b.config["linux"]["sysctl"] = json!({
        "net.ipv4.ip_forward": want_forward,
        "kernel.shmmax": "123456789"
    });
    b.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax");
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(
        fin.stdout,
        format!("{want_forward}\n123456789\n"),
        "{fin:?}"
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_forward
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        host_shmmax
    );
}

#[test]
fn mount_destination_is_created_when_missing() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.add_mount(json!({ "destination": "/deep/new/dir", "type": "tmpfs", "source": "tmpfs" }));
    b.sh("grep -c ' /deep/new/dir ' /proc/self/mountinfo");
    let fin = rt.run_to_exit(&b).unwrap();
    assert_eq!(fin.stdout, "1\n", "{fin:?}");
}

#[test]
fn mount_propagation_options_are_applied() {
    let rt = Runtime::new().unwrap();
    let mut b = rt.bundle().unwrap();
    b.add_mount(
        json!({ "destination": "/shared", "type": "tmpfs", "source": "tmpfs",
                        "options": ["rshared"] }),
    );
    b.add_mount(
        json!({ "destination": "/private", "type": "tmpfs", "source": "tmpfs",
                        "options": ["rprivate"] }),
    );
    b.add_mount(
        json!({ "destination": "/unbindable", "type": "tmpfs", "source": "tmpfs",
                        "options": ["runbindable"] }),
    );
    b.sh("cat /proc/self/mountinfo");
    let fin = rt.run_to_exit(&b).unwrap();
    // Optional fields sit between the mount options (field 6) and the " - " separator.
    let optional = |target: &str| -> String {
        let line = mountinfo_line(&fin.stdout, target);
        let before_sep = line.split(" - ").next().unwrap();
        before_sep.split(' ').skip(6).collect::<Vec<_>>().join(" ")
    };
    assert!(optional("/shared").contains("shared:"), "{fin:?}");
    assert_eq!(optional("/private"), "", "{fin:?}");
    assert_eq!(optional("/unbindable"), "unbindable", "{fin:?}");
}
