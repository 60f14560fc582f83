//! OCI bundles with a busybox root filesystem and a default `config.json` close to what
//! `runc spec` writes, kept as a `serde_json::Value` for tests to edit before writing.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::runner::Runtime;
use super::CGROUP_PARENT;

const BUSYBOX: &str = "/bin/busybox";

/// A bundle directory `<tmp>/<id>/` with `rootfs/` and, once written, `config.json`.
pub struct Bundle {
    /// The container id the bundle is meant for (its cgroupsPath uses it).
    pub id: String,
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// Writes `config` to `config.json`.
    pub fn write_config(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.config)?;
        fs::write(self.config_path(), text)
            .with_context(|| format!("writing {}", self.config_path().display()))
    }

    /// Sets `process.args` to `sh -c <script>`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.config["process"]["args"] = json!(["sh", "-c", script]);
        self
    }

    /// Appends a mount to `mounts`.
    pub fn add_mount(&mut self, mount: Value) -> &mut Self {
        self.config["mounts"]
            .as_array_mut()
            .expect("mounts is an array")
            .push(mount);
        self
    }

    /// Appends a namespace entry to `linux.namespaces`.
    pub fn add_namespace(&mut self, ns: Value) -> &mut Self {
        self.namespaces_mut().push(ns);
        self
    }

    /// Removes the namespace of `kind` from `linux.namespaces`.
    pub fn remove_namespace(&mut self, kind: &str) -> &mut Self {
        self.namespaces_mut().retain(|n| n["type"] != kind);
        self
    }

    fn namespaces_mut(&mut self) -> &mut Vec<Value> {
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("linux.namespaces is an array")
    }

    /// Writes a file inside the rootfs (creating parent dirs).
    pub fn write_rootfs_file(&self, rel: &str, content: &str) -> Result<PathBuf> {
        let path = self.rootfs().join(rel.trim_start_matches('/'));
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

fn applets() -> &'static [String] {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = std::process::Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .expect("running /bin/busybox --list (install busybox-static)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|a| !a.is_empty() && *a != "busybox")
            .map(str::to_string)
            .collect()
    })
}

/// Makes a busybox root filesystem in `rootfs`: /bin/busybox and one symlink per applet,
/// /etc/passwd and /etc/group (root, a test user 1000, nobody), and the usual empty dirs.
pub(crate) fn make_rootfs(rootfs: &Path) -> Result<()> {
    let bin = rootfs.join("bin");
    fs::create_dir_all(&bin)?;
    for d in ["proc", "dev", "sys", "tmp", "etc", "root", "home/tester"] {
        fs::create_dir_all(rootfs.join(d))?;
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::copy(BUSYBOX, bin.join("busybox")).context("copying /bin/busybox into the rootfs")?;
    for a in applets() {
        symlink("busybox", bin.join(a))?;
    }
    symlink("bin", rootfs.join("sbin"))?;
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         tester:x:1000:1000:tester:/home/tester:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\nwheel:x:10:\nusers:x:100:\ntester:x:1000:\nnogroup:x:65534:\n",
    )?;
    Ok(())
}

impl Runtime {
    /// A new bundle for a fresh unique container id.
    pub fn bundle(&self) -> Result<Bundle> {
        let id = self.unique_id();
        self.bundle_for(&id)
    }

    /// A new bundle meant for container `id`.
    pub fn bundle_for(&self, id: &str) -> Result<Bundle> {
        let dir = self.tmp().join(format!("bundle-{id}"));
        fs::create_dir_all(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        make_rootfs(&dir.join("rootfs"))?;
        Ok(Bundle {
            id: id.to_string(),
            dir,
            config: default_config(id),
        })
    }
}

/// The harness's default config for container `id`: like `runc spec` (pid, network, ipc, uts
/// and mount namespaces; proc, /dev tmpfs, devpts, shm, mqueue, sysfs and cgroup mounts; a
/// small capability set; masked and read-only /proc paths) but without a terminal, with
/// `cgroupsPath = /berth-test/<id>` so leak checks know where the cgroup is.
pub fn default_config(id: &str) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh", "-c", "true"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps
            },
            "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": "berth",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "cgroupsPath": format!("/{CGROUP_PARENT}/{id}"),
            "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}
