//! Leak checks after a container is gone, and reaping of the container processes this test
//! process adopted as a child subreaper.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::CGROUP_PARENT;

/// A process identified by pid and start time (field 22 of /proc/<pid>/stat), so a reused pid
/// is not mistaken for the original process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: i32,
    pub start_time: u64,
}

impl ProcessId {
    /// Identifies a live process; None when it does not exist.
    pub fn of(pid: i32) -> Option<Self> {
        stat_fields(pid).map(|(_, start_time)| Self { pid, start_time })
    }

    /// True while the process exists and is not a zombie.
    pub fn is_alive(&self) -> bool {
        matches!(stat_fields(self.pid), Some((state, st)) if st == self.start_time && state != 'Z' && state != 'X')
    }

    /// True while the process exists at all, zombie included.
    fn exists(&self) -> bool {
        matches!(stat_fields(self.pid), Some((_, st)) if st == self.start_time)
    }
}

/// (state, start time) from /proc/<pid>/stat.
fn stat_fields(pid: i32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some((state, start_time))
}

/// Reaps `p` if it became our child (orphaned container processes are re-parented to the test
/// process, a subreaper). Waits up to `timeout` for it to exit; never calls waitpid(-1), so
/// `std::process::Child::wait` in other threads is unaffected. Returns false if it still exists.
pub fn reap(p: ProcessId, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !p.exists() {
            return true;
        }
        match waitpid(
            Pid::from_raw(p.pid),
            Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL),
        ) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => return true,
            // Not (yet) our child: its own parent may still be dying; look again shortly.
            Err(Errno::ECHILD) => {}
            Err(_) => {}
        }
        if Instant::now() > deadline {
            return !p.exists();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every cgroup hierarchy mount under /sys/fs/cgroup (v1 controllers, name=systemd, unified),
/// or /sys/fs/cgroup itself on a pure v2 host.
fn hierarchies() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.controllers").exists() {
        return vec![base.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(base) {
        for e in entries.flatten() {
            let path = e.path();
            // Skip symlinks such as cpu,cpuacct -> cpu,cpuacct duplicates.
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The container's cgroup directories that exist now (with the harness's default cgroupsPath).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    hierarchies()
        .into_iter()
        .map(|h| h.join(CGROUP_PARENT).join(id))
        .filter(|p| p.is_dir())
        .collect()
}

/// Pids in the container's cgroup (union over hierarchies).
pub fn cgroup_procs(id: &str) -> Vec<i32> {
    let mut pids: Vec<i32> = cgroup_dirs(id)
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

/// Removes the shared `berth-test` parent from every hierarchy when it is empty. rmdir fails
/// harmlessly on a non-empty cgroup.
pub(crate) fn remove_empty_cgroup_parents() {
    for h in hierarchies() {
        let _ = fs::remove_dir(h.join(CGROUP_PARENT));
    }
}

/// Mount points at or below `dir` in this (the host's) mount namespace.
fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .collect()
}

/// Live processes whose root or working directory is inside `dir` (a container's process
/// after pivot_root has its root at the bundle's rootfs, seen from the host).
fn processes_in(dir: &Path) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let inside = ["root", "cwd"].iter().any(|link| {
            fs::read_link(e.path().join(link)).is_ok_and(|target| target.starts_with(dir))
        });
        if inside && ProcessId::of(pid).is_some_and(|p| p.is_alive()) {
            found.push(pid);
        }
    }
    found
}

pub(crate) fn check(root: &Path, id: &str, bundle: &Path, pids: &[ProcessId]) -> Result<()> {
    let mut leaks = Vec::new();
    let state = root.join(id);
    if state.exists() {
        leaks.push(format!("state dir {} still exists", state.display()));
    }
    for m in mounts_under(bundle) {
        leaks.push(format!("mount {m} still present"));
    }
    // A cgroup disappears a moment after its last process is reaped: give it a short grace.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut dirs = cgroup_dirs(id);
    while !dirs.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        dirs = cgroup_dirs(id);
    }
    for d in dirs {
        leaks.push(format!("cgroup {} still exists", d.display()));
    }
    for p in pids {
        if p.is_alive() {
            leaks.push(format!("process {} is still running", p.pid));
        }
    }
    for pid in processes_in(bundle) {
        leaks.push(format!("process {pid} still runs inside the bundle"));
    }
    if !leaks.is_empty() {
        bail!("container {id} leaked:\n  {}", leaks.join("\n  "));
    }
    Ok(())
}
