//! Placing a container in cgroups and finding its processes again.
//!
//! This host layout varies: cgroup v1 (one hierarchy per controller), hybrid (v1 controllers
//! plus a cgroup2 mount at /sys/fs/cgroup/unified) and unified v2. The container gets a
//! directory of the same relative path in every mounted hierarchy, like runc's cgroupfs driver.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("linux.cgroupsPath {path:?}: must not contain '..'")]
    Escapes { path: PathBuf },
    #[error("--systemd-cgroup: systemd is not running on this host (/run/systemd/system is missing); use the cgroupfs driver")]
    NoSystemd,
    #[error("linux.cgroupsPath {path:?}: the systemd driver expects slice:prefix:name")]
    BadSystemdPath { path: String },
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no cgroup hierarchy is mounted (looked in /proc/self/mountinfo)")]
    NoHierarchy,
}

/// One mounted hierarchy: its key (v1 controller list such as `cpu,cpuacct` or `name=systemd`;
/// empty for cgroup2), where it is mounted and which cgroup path the mount root shows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hierarchy {
    key: String,
    mount_point: PathBuf,
    mount_root: PathBuf,
}

/// Parses /proc/self/mountinfo (proc(5)) for cgroup and cgroup2 mounts.
fn hierarchies_from(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let key = match post[0] {
            "cgroup2" => String::new(),
            "cgroup" => post[2]
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent"))
                .filter(|o| {
                    !matches!(
                        *o,
                        "clone_children" | "noprefix" | "xattr" | "cpuset_v2_mode"
                    )
                })
                .collect::<Vec<_>>()
                .join(","),
            _ => continue,
        };
        if out.iter().any(|h| h.key == key) {
            continue;
        }
        out.push(Hierarchy {
            key,
            mount_point: PathBuf::from(unescape(pre[4])),
            mount_root: PathBuf::from(unescape(pre[3])),
        });
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as octal `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses /proc/self/cgroup: hierarchy key → this process's cgroup path.
fn own_cgroups_from(content: &str) -> BTreeMap<String, PathBuf> {
    content
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, key, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((key.to_string(), PathBuf::from(path)))
        })
        .collect()
}

/// Where a container's cgroup lives: its directory in every hierarchy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CgroupPaths {
    /// hierarchy key → absolute directory.
    pub dirs: BTreeMap<String, PathBuf>,
    /// hierarchy key → where that hierarchy is mounted on the host (for cgroup mounts in the
    /// container).
    #[serde(default)]
    pub mount_points: BTreeMap<String, PathBuf>,
}

/// Turns `linux.cgroupsPath` into the relative path under each hierarchy root.
/// Absolute paths are taken from the hierarchy root; relative ones (and the default, the
/// container id) are relative to the runtime's own cgroup, as runc does.
fn resolve(spec_path: Option<&Path>, id: &str, own: Option<&Path>) -> Result<PathBuf, CgroupError> {
    let p = match spec_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from(id),
    };
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(CgroupError::Escapes { path: p });
    }
    let rel: PathBuf = p
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    if p.is_absolute() {
        Ok(rel)
    } else {
        let base: PathBuf = own
            .map(|o| {
                o.components()
                    .filter(|c| matches!(c, Component::Normal(_)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(base.join(rel))
    }
}

/// Checks a `--systemd-cgroup` request: the driver needs a running systemd, which this
/// runtime talks to only through its cgroup layout; without systemd it is an error.
pub fn check_systemd(cgroups_path: Option<&Path>) -> Result<(), CgroupError> {
    if let Some(p) = cgroups_path {
        let s = p.to_string_lossy();
        if !s.is_empty() && s.split(':').count() != 3 {
            return Err(CgroupError::BadSystemdPath {
                path: s.into_owned(),
            });
        }
    }
    if !Path::new("/run/systemd/system").is_dir() {
        return Err(CgroupError::NoSystemd);
    }
    Ok(())
}

impl CgroupPaths {
    /// Creates the container's directory in every mounted hierarchy.
    /// On failure, removes whatever it created.
    pub fn create(spec_path: Option<&Path>, id: &str) -> Result<CgroupPaths, CgroupError> {
        let mountinfo = read("/proc/self/mountinfo")?;
        let own = own_cgroups_from(&read("/proc/self/cgroup")?);
        let hierarchies = hierarchies_from(&mountinfo);
        if hierarchies.is_empty() {
            return Err(CgroupError::NoHierarchy);
        }
        let mut paths = CgroupPaths::default();
        for h in hierarchies {
            let own_path = own.get(&h.key).map(|p| {
                // Our cgroup as seen from this mount's root.
                p.strip_prefix(&h.mount_root).unwrap_or(p).to_path_buf()
            });
            let rel = resolve(spec_path, id, own_path.as_deref())?;
            let dir = h.mount_point.join(rel);
            if let Err(source) = fs::create_dir_all(&dir) {
                let _ = paths.remove();
                return Err(CgroupError::Io {
                    action: "creating cgroup",
                    path: dir,
                    source,
                });
            }
            if h.key.split(',').any(|c| c == "cpuset") {
                if let Err(e) = inherit_cpuset(&h.mount_point, &dir) {
                    let _ = paths.remove();
                    return Err(e);
                }
            }
            paths.mount_points.insert(h.key.clone(), h.mount_point);
            paths.dirs.insert(h.key, dir);
        }
        Ok(paths)
    }

    /// Moves a process into the container's cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        for dir in self.dirs.values() {
            let procs = dir.join("cgroup.procs");
            fs::write(&procs, pid.to_string()).map_err(|source| CgroupError::Io {
                action: "adding process to",
                path: procs,
                source,
            })?;
        }
        Ok(())
    }

    /// The directory used to enumerate processes: any hierarchy shows them all.
    fn primary(&self) -> Option<&Path> {
        ["pids", "freezer", "memory", ""]
            .iter()
            .find_map(|k| self.dirs.get(*k))
            .or_else(|| self.dirs.values().next())
            .map(PathBuf::as_path)
    }

    /// Every process in the container's cgroup and its descendants.
    pub fn pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        if let Some(dir) = self.primary() {
            collect_pids(dir, &mut out);
        }
        out
    }

    pub fn is_frozen(&self) -> bool {
        if let Some(dir) = self.dirs.get("freezer") {
            return fs::read_to_string(dir.join("freezer.state"))
                .map(|s| s.trim() != "THAWED")
                .unwrap_or(false);
        }
        if let Some(dir) = self.dirs.get("") {
            return fs::read_to_string(dir.join("cgroup.freeze"))
                .map(|s| s.trim() == "1")
                .unwrap_or(false);
        }
        false
    }

    /// Removes the container's directories (sub-cgroups first). Processes that are still
    /// exiting keep a cgroup busy for a moment, so EBUSY is retried briefly.
    pub fn remove(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        for dir in self.dirs.values() {
            if let Err(e) = remove_tree(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// A new v1 cpuset cgroup starts with empty cpuset.cpus and cpuset.mems, and the kernel
/// refuses tasks until both are set (ENOSPC): copy them down from the nearest ancestor.
fn inherit_cpuset(mount_point: &Path, dir: &Path) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let mut chain = vec![dir.to_path_buf()];
        let mut cur = dir;
        while let Some(parent) = cur.parent() {
            if !parent.starts_with(mount_point) {
                break;
            }
            chain.push(parent.to_path_buf());
            cur = parent;
        }
        // From the top down: each empty level takes its parent's value.
        let mut value = String::new();
        for level in chain.iter().rev() {
            let path = level.join(file);
            let current = fs::read_to_string(&path).unwrap_or_default();
            if current.trim().is_empty() && !value.trim().is_empty() {
                fs::write(&path, value.trim()).map_err(|source| CgroupError::Io {
                    action: "writing",
                    path: path.clone(),
                    source,
                })?;
            } else {
                value = current;
            }
        }
    }
    Ok(())
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(s) = fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&e.path(), out);
            }
        }
    }
}

fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path())?;
            }
        }
    }
    let mut delay = std::time::Duration::from_millis(1);
    for _ in 0..12 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(source) => {
                return Err(CgroupError::Io {
                    action: "removing cgroup",
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
    Err(CgroupError::Io {
        action: "removing cgroup (still busy)",
        path: dir.to_path_buf(),
        source: io::Error::from_raw_os_error(libc::EBUSY),
    })
}

fn read(path: &str) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Io {
        action: "reading",
        path: PathBuf::from(path),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 24 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
";

    #[test]
    fn finds_v1_and_unified_hierarchies() {
        let h = hierarchies_from(HYBRID);
        let keys: Vec<&str> = h.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, ["", "cpu,cpuacct", "memory", "name=systemd"]);
        assert_eq!(h[2].mount_point, Path::new("/sys/fs/cgroup/memory"));
    }

    #[test]
    fn parses_own_cgroups() {
        let own = own_cgroups_from("12:memory:/user/x\n0::/init.scope\n");
        assert_eq!(own["memory"], Path::new("/user/x"));
        assert_eq!(own[""], Path::new("/init.scope"));
    }

    #[test]
    fn resolves_absolute_relative_and_default_paths() {
        let own = Path::new("/parent");
        assert_eq!(
            resolve(Some(Path::new("/a/b")), "id", Some(own)).unwrap(),
            Path::new("a/b")
        );
        assert_eq!(
            resolve(Some(Path::new("a/b")), "id", Some(own)).unwrap(),
            Path::new("parent/a/b")
        );
        assert_eq!(
            resolve(None, "id", Some(own)).unwrap(),
            Path::new("parent/id")
        );
    }

    #[test]
    fn rejects_paths_that_escape() {
        let err = resolve(Some(Path::new("/a/../../etc")), "id", None).unwrap_err();
        assert!(err.to_string().contains(".."), "{err}");
    }

    #[test]
    fn unescapes_mountinfo_octal() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
