//! `HEAD /containers/{id}/archive?path=`: what a path in the container is, for a client
//! that decides how to copy (docker's `cp` stats the destination first).

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use serde::{Deserialize, Serialize};

use super::{open_parent, Rootfs};
use crate::ops::error::{OpsError, Result};
use crate::ops::Engine;

/// docker's `ContainerPathStat`; `mode` in Go's `os.FileMode` bits (type bits high).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    /// RFC 3339.
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

// Go's os.FileMode type bits.
const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_PIPE: u32 = 1 << 25;
const GO_SOCKET: u32 = 1 << 24;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_CHARDEV: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;

/// A unix `st_mode` as Go's `FileMode`.
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    match st_mode & libc::S_IFMT {
        libc::S_IFDIR => m |= GO_DIR,
        libc::S_IFLNK => m |= GO_SYMLINK,
        libc::S_IFBLK => m |= GO_DEVICE,
        libc::S_IFCHR => m |= GO_DEVICE | GO_CHARDEV,
        libc::S_IFIFO => m |= GO_PIPE,
        libc::S_IFSOCK => m |= GO_SOCKET,
        _ => {}
    }
    if st_mode & libc::S_ISUID != 0 {
        m |= GO_SETUID;
    }
    if st_mode & libc::S_ISGID != 0 {
        m |= GO_SETGID;
    }
    if st_mode & libc::S_ISVTX != 0 {
        m |= GO_STICKY;
    }
    m
}

/// Stats `path` in the container (not following a final symlink, as docker).
pub fn stat_path(engine: &Engine, what: &str, path: &str) -> Result<PathStat> {
    let rootfs = Rootfs::open_for_copy(engine, what)?;
    match stat_in(&rootfs.path, path) {
        // Below a directory of another container user: looked at from the user namespace.
        Err(e) if super::reach::denied(&e) => super::reach::stat(&rootfs.path, path),
        r => r,
    }
}

/// Stats `path` in the tree `rootfs` (rootless berth's helper runs it too).
pub(crate) fn stat_in(rootfs: &std::path::Path, path: &str) -> Result<PathStat> {
    let (dir, name) = open_parent(rootfs, path)?;
    let target = match &name {
        Some(n) => dir.path().join(n),
        None => dir.path(),
    };
    let meta = std::fs::symlink_metadata(&target).map_err(|source| OpsError::NoSuchPath {
        path: path.to_string(),
        source,
    })?;
    let link_target = if meta.file_type().is_symlink() {
        std::fs::read_link(&target)
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let mtime = crate::logs::format_time_fixed(
        std::time::UNIX_EPOCH + std::time::Duration::new(meta.mtime().max(0) as u64, 0),
    );
    Ok(PathStat {
        name: name.unwrap_or_else(|| {
            path.trim_end_matches("/.")
                .rsplit('/')
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or("/")
                .to_string()
        }),
        size: meta.len() as i64,
        mode: go_file_mode(meta.permissions().mode()),
        mtime,
        link_target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_modes_become_go_file_modes() {
        assert_eq!(go_file_mode(libc::S_IFDIR | 0o755), GO_DIR | 0o755);
        assert_eq!(go_file_mode(libc::S_IFREG | 0o644), 0o644);
        assert_eq!(go_file_mode(libc::S_IFLNK | 0o777), GO_SYMLINK | 0o777);
        assert_eq!(
            go_file_mode(libc::S_IFREG | libc::S_ISUID | 0o755),
            GO_SETUID | 0o755
        );
    }
}
