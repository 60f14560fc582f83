//! Reading a container's cgroup files on any host layout (v1, hybrid, unified v2), so one
//! cgroup test suite runs on the v1/hybrid host and in the cgroup-v2 guest.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::CGROUP_PARENT;

const ROOT: &str = "/sys/fs/cgroup";

/// True on a unified (v2-only) host such as the hack/vm-cgroup2 guest.
pub fn is_v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// The mount point of the hierarchy holding `controller` (the v2 root on a v2 host).
pub fn hierarchy_of(controller: &str) -> Option<PathBuf> {
    if is_v2() {
        let available = fs::read_to_string(Path::new(ROOT).join("cgroup.controllers")).ok()?;
        return available
            .split_whitespace()
            .any(|c| c == controller)
            .then(|| PathBuf::from(ROOT));
    }
    fs::read_dir(ROOT)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().split(',').any(|c| c == controller))
                // A hierarchy, not a directory some tool left on the cgroup tmpfs.
                && p.join("cgroup.procs").exists()
        })
}

/// The container's directory for `controller` (harness default cgroupsPath).
pub fn controller_dir(id: &str, controller: &str) -> Option<PathBuf> {
    hierarchy_of(controller).map(|h| h.join(CGROUP_PARENT).join(id))
}

/// A cgroup file of the container, trimmed: `file_v1` on v1/hybrid, `file_v2` on v2.
pub fn read_cgroup_file(
    id: &str,
    controller: &str,
    file_v1: &str,
    file_v2: &str,
) -> Result<String> {
    let dir = controller_dir(id, controller)
        .with_context(|| format!("no {controller} hierarchy on this host"))?;
    let file = dir.join(if is_v2() { file_v2 } else { file_v1 });
    Ok(fs::read_to_string(&file)
        .with_context(|| format!("reading {}", file.display()))?
        .trim()
        .to_string())
}

/// This process's own cgroup path in the hierarchy of `controller` (from /proc/self/cgroup).
pub fn own_cgroup(controller: &str) -> Option<PathBuf> {
    let content = fs::read_to_string("/proc/self/cgroup").ok()?;
    content.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, keys, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if is_v2() {
            keys.is_empty()
        } else {
            keys.split(',').any(|k| k == controller)
        };
        hit.then(|| PathBuf::from(path))
    })
}

/// Makes a sub-cgroup `name` of the container in every hierarchy and moves `pid` into it.
/// Returns the directories made (the runtime must remove them at delete).
pub fn move_to_sub_cgroup(id: &str, name: &str, pid: i32) -> Result<Vec<PathBuf>> {
    let mut made = Vec::new();
    for dir in super::cgroup_dirs(id) {
        let sub = dir.join(name);
        fs::create_dir_all(&sub).with_context(|| format!("creating {}", sub.display()))?;
        made.push(sub.clone());
        // A new v1 cpuset cgroup takes no task until its cpus and mems are set.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = fs::read_to_string(dir.join(f)) {
                if fs::read_to_string(sub.join(f)).is_ok_and(|s| s.trim().is_empty()) {
                    fs::write(sub.join(f), v.trim())
                        .with_context(|| format!("writing {}", sub.join(f).display()))?;
                }
            }
        }
        fs::write(sub.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("moving {pid} into {}", sub.display()))?;
    }
    Ok(made)
}
