//! Finding the mounted cgroup hierarchies and the container's path inside each.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::CgroupError;

/// One mounted hierarchy: its key (v1 controller list such as `cpu,cpuacct` or `name=systemd`;
/// empty for cgroup2), where it is mounted and which cgroup path the mount root shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    pub key: String,
    pub mount_point: PathBuf,
    pub mount_root: PathBuf,
}

/// Parses /proc/self/mountinfo (proc(5)) for cgroup and cgroup2 mounts.
pub(crate) fn hierarchies_from(mountinfo: &str) -> Vec<Hierarchy> {
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
pub(crate) fn own_cgroups_from(content: &str) -> BTreeMap<String, PathBuf> {
    content
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, key, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((key.to_string(), PathBuf::from(path)))
        })
        .collect()
}

/// Turns `linux.cgroupsPath` into the relative path under each hierarchy root.
/// Absolute paths are taken from the hierarchy root; relative ones (and the default, the
/// container id) are relative to the runtime's own cgroup, as runc does.
pub(crate) fn resolve(
    spec_path: Option<&Path>,
    id: &str,
    own: Option<&Path>,
) -> Result<PathBuf, CgroupError> {
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
