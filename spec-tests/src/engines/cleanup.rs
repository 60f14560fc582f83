//! Tearing down what an engine left behind, and reporting it: processes (found by a path in
//! their command line or by their cgroup), mounts under a directory, a cgroup tree, shim
//! sockets. Every step collects what it found instead of stopping at the first problem.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use sha2::{Digest, Sha256};

/// Where containerd 1.6's shims put their sockets, whatever containerd's own state dir is
/// (runtime/v2/shim: `/run/containerd/s/<sha256(address/namespace/id)>`).
const SHIM_SOCKET_DIR: &str = "/run/containerd/s";

/// The mounted cgroup hierarchies (v1 controllers and the unified v2 one), skipping the
/// comounted aliases (`cpu` → `cpu,cpuacct`).
pub fn hierarchies() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/sys/fs/cgroup") else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) && p.join("cgroup.procs").exists() {
            out.push(p);
        }
    }
    if Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
        out.push(PathBuf::from("/sys/fs/cgroup"));
    }
    out
}

/// Every directory of the cgroup tree `parent` (relative to each hierarchy root), deepest
/// first.
pub fn cgroup_tree(parent: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out);
                }
            }
        }
        out.push(dir.to_path_buf());
    }
    let mut out = Vec::new();
    for h in hierarchies() {
        let top = h.join(parent.trim_start_matches('/'));
        if top.is_dir() {
            walk(&top, &mut out);
        }
    }
    out
}

/// The processes in the cgroup tree `parent`.
pub fn cgroup_pids(parent: &str) -> Vec<i32> {
    let mut pids: Vec<i32> = cgroup_tree(parent)
        .iter()
        .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Live processes whose command line mentions `needle` (e.g. a daemon's temp dir).
pub fn pids_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(cmd) = fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}

/// Thaws every frozen cgroup in the tree so its processes can die (a paused container).
pub fn thaw(parent: &str) {
    for d in cgroup_tree(parent) {
        let v1 = d.join("freezer.state");
        if v1.exists() {
            let _ = fs::write(&v1, "THAWED");
        }
        let v2 = d.join("cgroup.freeze");
        if v2.exists() {
            let _ = fs::write(&v2, "0");
        }
    }
}

/// SIGKILLs `pids` and reaps those that are our children (the test process is a subreaper,
/// so orphaned shims and container processes are). Waits for each to disappear.
pub fn kill_and_reap(pids: &[i32]) {
    for &pid in pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    for &pid in pids {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(_) => break,
                // Not our child: wait until it is gone from /proc (its parent reaps it).
                Err(_) => {
                    if !is_running(pid) {
                        break;
                    }
                }
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// True if `pid` exists and is not a zombie.
pub fn is_running(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Waits up to `timeout` for `pid` (our child) to exit, reaping it; false if it is still
/// running.
pub fn wait_child(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => return true,
            Err(_) => return !is_running(pid),
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Mount points at or under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    out.dedup();
    out
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Detaches every mount under `dir`.
pub fn unmount_under(dir: &Path) {
    for _ in 0..3 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return;
        }
        for m in mounts {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Removes the cgroup tree `parent` (deepest first); returns the directories that remain.
pub fn remove_cgroup_tree(parent: &str) -> Vec<PathBuf> {
    for _ in 0..50 {
        for d in cgroup_tree(parent) {
            let _ = fs::remove_dir(&d);
        }
        if cgroup_tree(parent).is_empty() {
            return Vec::new();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cgroup_tree(parent)
}

/// The socket a containerd 1.6 shim listens on for container `id` of `namespace`, served by
/// the containerd at `address`.
pub fn shim_socket(address: &Path, namespace: &str, id: &str) -> PathBuf {
    let key = address.join(namespace).join(id);
    let digest = Sha256::digest(key.as_os_str().as_encoded_bytes());
    Path::new(SHIM_SOCKET_DIR).join(hex::encode(digest))
}

/// Removes `dir` and its parent `/run/...` directories if they are empty (an engine creates
/// them on first use; e.g. `/run/containerd/s`, `/run/docker/plugins`).
pub fn remove_empty_dirs(dirs: &[&str]) {
    for d in dirs {
        let _ = fs::remove_dir(d);
    }
}
