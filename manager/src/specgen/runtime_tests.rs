//! Runs a generated spec with the workspace's `berth-runtime` (or `$BERTH_TEST_RUNTIME`) and a
//! busybox rootfs, proving the spec is one a runtime accepts and that the container sees what
//! the options asked for.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::flags::{parse_bytes, parse_env, parse_tmpfs, parse_ulimit, parse_volume};
use super::*;

const BUSYBOX: &str = "/bin/busybox";
/// cgroup parent of this test's containers, removed again when empty.
const CGROUP_PARENT: &str = "berth-specgen-test";

fn runtime_binary() -> PathBuf {
    match std::env::var_os("BERTH_TEST_RUNTIME") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/berth-runtime"),
    }
}

fn busybox_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    fs::create_dir_all(&bin).unwrap();
    for d in [
        "proc", "dev", "sys", "tmp", "etc", "root", "home/app", "data", "scratch",
    ] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    fs::copy(BUSYBOX, bin.join("busybox")).expect("copying /bin/busybox (install busybox-static)");
    for applet in [
        "sh", "id", "cat", "echo", "grep", "hostname", "touch", "pwd",
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

/// Force-deletes the container and removes the empty cgroup parents, even when the test fails.
struct Cleanup {
    runtime: PathBuf,
    state: PathBuf,
    id: String,
    child: Option<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new(&self.runtime)
            .arg("--root")
            .arg(&self.state)
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
    let runtime = runtime_binary();
    assert!(
        runtime.exists(),
        "{} is missing: build it with `cargo build -p berth-runtime` or set BERTH_TEST_RUNTIME",
        runtime.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    busybox_rootfs(&rootfs);
    let host_data = tmp.path().join("data");
    fs::create_dir_all(&host_data).unwrap();
    fs::write(host_data.join("msg"), "from-the-host\n").unwrap();
    let hosts = tmp.path().join("hosts");
    fs::write(&hosts, "127.0.0.1 localhost\n10.1.2.3 db\n").unwrap();

    let id = format!("specgen-{}", std::process::id());
    let volume = parse_volume(&format!("{}:/data:ro", host_data.display())).unwrap();
    let tmpfs = parse_tmpfs("/scratch:size=1m").unwrap();
    let mut opts = Options {
        rootfs: rootfs.clone(),
        hostname: Some("specgen".to_string()),
        cgroups_path: Some(format!("/{CGROUP_PARENT}/{id}").into()),
        etc_files: vec![("/etc/hosts".into(), hosts)],
        ulimits: vec![parse_ulimit("nofile=100:200").unwrap()],
        ..Default::default()
    };
    for m in [volume, tmpfs] {
        opts.mounts.push(
            m.resolve(|_, _| Err::<PathBuf, _>("no volumes here"))
                .unwrap(),
        );
    }
    opts.process.user = Some("app".to_string());
    opts.process.workdir = Some("/home/app".to_string());
    opts.process.env = vec![parse_env("GREETING=hello", |_| None).unwrap().unwrap()];
    opts.security.read_only = true;
    opts.resources.memory = Some(parse_bytes("--memory", "64m").unwrap());
    opts.resources.pids_limit = Some(50);

    let script = "id -u; id -g; id -G; pwd; echo $GREETING $HOME; hostname; cat /data/msg; \
        touch /rootfile 2>/dev/null && echo root-rw || echo root-ro; \
        touch /scratch/f && echo scratch-rw; ulimit -n; ulimit -Hn; \
        grep -E '^(CapBnd|Seccomp):' /proc/self/status; grep db /etc/hosts";
    let img = ImageConfig {
        cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
        ..Default::default()
    };
    let spec = generate(&img, &opts).unwrap();
    fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&spec).unwrap(),
    )
    .unwrap();

    let state = tmp.path().join("state");
    let mut guard = Cleanup {
        runtime: runtime.clone(),
        state: state.clone(),
        id: id.clone(),
        child: None,
    };
    let child = Command::new(&runtime)
        .arg("--root")
        .arg(&state)
        .arg("run")
        .arg("--bundle")
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    guard.child = Some(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let child = guard.child.as_mut().unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "berth-runtime run timed out");
        std::thread::sleep(Duration::from_millis(20));
    };
    // The output is a few lines, well under a pipe buffer, so reading after exit cannot block.
    let out = guard.child.take().unwrap().wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        status.success(),
        "status {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let lines: Vec<&str> = stdout.lines().collect();
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
    assert_eq!(lines, expected, "stderr:\n{stderr}");
}
