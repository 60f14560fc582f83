//! Runs generated specs with the workspace's `berth-runtime` (or `$BERTH_TEST_RUNTIME`) and a
//! busybox rootfs, proving the specs are ones a runtime accepts and that the container sees
//! what the options asked for.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::flags::{
    parse_bytes, parse_capability, parse_device, parse_env, parse_tmpfs, parse_ulimit, parse_volume,
};
use super::*;

const BUSYBOX: &str = "/bin/busybox";
/// cgroup parent of these tests' containers, removed again when empty.
const CGROUP_PARENT: &str = "berth-specgen-test";

fn runtime_binary() -> PathBuf {
    match std::env::var_os("BERTH_TEST_RUNTIME") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/berth-runtime"),
    }
}

/// A temp dir with `bundle/rootfs` (busybox, passwd, group) and a unique container id; dropping
/// it force-deletes the container and removes the empty cgroup parents, even on failure.
struct Bundle {
    tmp: tempfile::TempDir,
    runtime: PathBuf,
    id: String,
}

impl Bundle {
    fn new() -> Self {
        let runtime = runtime_binary();
        assert!(
            runtime.exists(),
            "{} is missing: build it with `cargo build -p berth-runtime` or set \
             BERTH_TEST_RUNTIME",
            runtime.display()
        );
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "specgen-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let b = Bundle {
            tmp: tempfile::tempdir().unwrap(),
            runtime,
            id,
        };
        b.make_rootfs();
        b
    }

    fn rootfs(&self) -> PathBuf {
        self.tmp.path().join("bundle/rootfs")
    }

    fn make_rootfs(&self) {
        let rootfs = self.rootfs();
        let bin = rootfs.join("bin");
        fs::create_dir_all(&bin).unwrap();
        for d in [
            "proc", "dev", "sys", "tmp", "etc", "root", "home/app", "data", "scratch",
        ] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        fs::copy(BUSYBOX, bin.join("busybox"))
            .expect("copying /bin/busybox (install busybox-static)");
        for applet in [
            "sh", "id", "cat", "echo", "grep", "hostname", "touch", "pwd", "ls", "unshare", "tr",
        ] {
            symlink("busybox", bin.join(applet)).unwrap();
        }
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\naudio:x:29:app\napp:x:1000:\n",
        )
        .unwrap();
    }

    /// Options with this bundle's rootfs and a cgroup under the test parent.
    fn options(&self) -> Options {
        Options {
            rootfs: self.rootfs(),
            hostname: Some("specgen".to_string()),
            cgroups_path: Some(format!("/{CGROUP_PARENT}/{}", self.id).into()),
            ..Default::default()
        }
    }

    /// Generates the spec for `sh -c script`, runs it to completion and returns its stdout.
    fn run(&self, opts: &Options, script: &str) -> String {
        let img = ImageConfig {
            cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
            ..Default::default()
        };
        let spec = generate(&img, opts).unwrap();
        let bundle = self.tmp.path().join("bundle");
        fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&spec).unwrap(),
        )
        .unwrap();
        let mut child = Command::new(&self.runtime)
            .arg("--root")
            .arg(self.tmp.path().join("state"))
            .arg("run")
            .arg("--bundle")
            .arg(&bundle)
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("berth-runtime run timed out");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The output is a few lines, well under a pipe buffer, so reading after exit cannot
        // block.
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "status {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        );
        stdout
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = Command::new(&self.runtime)
            .arg("--root")
            .arg(self.tmp.path().join("state"))
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Ok(entries) = fs::read_dir("/sys/fs/cgroup") {
            for e in entries.flatten() {
                let _ = fs::remove_dir(e.path().join(CGROUP_PARENT));
            }
        }
        let _ = fs::remove_dir(Path::new("/sys/fs/cgroup").join(CGROUP_PARENT));
    }
}

#[test]
fn generated_spec_runs_under_berth_runtime() {
    let b = Bundle::new();
    let host_data = b.tmp.path().join("data");
    fs::create_dir_all(&host_data).unwrap();
    fs::write(host_data.join("msg"), "from-the-host\n").unwrap();
    let hosts = b.tmp.path().join("hosts");
    fs::write(&hosts, "127.0.0.1 localhost\n10.1.2.3 db\n").unwrap();

    let volume = parse_volume(&format!("{}:/data:ro", host_data.display())).unwrap();
    // runc (and so docker) gives a tmpfs the mode of the directory it covers (0755 here) unless
    // `mode=` says otherwise: the unprivileged user needs 1777 to write.
    let tmpfs = parse_tmpfs("/scratch:size=1m,mode=1777").unwrap();
    let mut opts = b.options();
    opts.etc_files = vec![("/etc/hosts".into(), hosts)];
    opts.ulimits = vec![parse_ulimit("nofile=100:200").unwrap()];
    for m in [volume, tmpfs] {
        let resolved = m.resolve(|_, _| Err::<PathBuf, _>("no volumes here"));
        opts.mounts.push(resolved.unwrap());
    }
    opts.process.user = Some("app".to_string());
    opts.process.workdir = Some("/home/app".to_string());
    opts.process.env = vec![parse_env("GREETING=hello", |_| None).unwrap().unwrap()];
    opts.security.read_only = true;
    opts.resources.memory = Some(parse_bytes("--memory", "64m").unwrap());
    opts.resources.pids_limit = Some(50);

    let out = b.run(
        &opts,
        "id -u; id -g; id -G; pwd; echo $GREETING $HOME; hostname; cat /data/msg; \
         touch /rootfile 2>/dev/null && echo root-rw || echo root-ro; \
         touch /scratch/f && echo scratch-rw; ulimit -n; ulimit -Hn; \
         grep -E '^(CapBnd|Seccomp):' /proc/self/status; grep db /etc/hosts",
    );
    let expected = [
        "1000",
        "1000",
        "1000 29",
        "/home/app",
        "hello /home/app",
        "specgen",
        "from-the-host",
        "root-ro",
        "scratch-rw",
        "100",
        "200",
        // Docker's 14 default capabilities, as the bounding set.
        "CapBnd:\t00000000a80425fb",
        // 2 = SECCOMP_MODE_FILTER: the default profile is installed.
        "Seccomp:\t2",
        "10.1.2.3 db",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn default_profile_denies_namespace_creation_until_sys_admin_is_added() {
    let b = Bundle::new();
    let mut opts = b.options();
    let script = "unshare -n true 2>/dev/null && echo unshared || echo denied";
    assert_eq!(b.run(&opts, script), "denied\n");
    opts.security.cap_add = vec![parse_capability("--cap-add", "SYS_ADMIN").unwrap()];
    assert_eq!(b.run(&opts, script), "unshared\n");
}

#[test]
fn privileged_and_device_specs_run() {
    let b = Bundle::new();
    let mut opts = b.options();
    opts.devices = vec![parse_device("/dev/null:/dev/mynull:rw").unwrap()];
    let out = b.run(
        &opts,
        "echo x > /dev/mynull && echo wrote; grep -E '^Seccomp:' /proc/self/status",
    );
    assert_eq!(out, "wrote\nSeccomp:\t2\n");

    opts.security.privileged = true;
    let mask: u64 = caps::all_capabilities()
        .iter()
        .map(|c| 1u64 << caps::cap_number(c).unwrap())
        .sum();
    let all_caps = format!("{mask:016x}");
    let out = b.run(
        &opts,
        "grep -E '^(CapBnd|Seccomp):' /proc/self/status; ls /dev/mynull /dev/zero; \
         grep ' /sys ' /proc/self/mounts | grep -c rw,",
    );
    assert_eq!(
        out,
        format!("CapBnd:\t{all_caps}\nSeccomp:\t0\n/dev/mynull\n/dev/zero\n1\n")
    );
}

#[test]
fn init_runs_as_pid_one_and_execs_the_command() {
    const TINI: &str = "/usr/bin/tini-static";
    assert!(
        Path::new(TINI).exists(),
        "{TINI} is missing (apt-get install tini)"
    );
    let b = Bundle::new();
    let mut opts = b.options();
    opts.process.init = Some(TINI.into());
    let out = b.run(&opts, "tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with(INIT_PATH), "{out}");
    assert_ne!(lines[1], "1", "the command must not be pid 1 under --init");
}
