//! A stopped container's volumes and bind mounts, mounted over its root filesystem for the
//! time of a copy, as dockerd does: `docker cp` into or out of a volume path sees the
//! volume, not the directory under it.
//!
//! Each mount point is resolved in the root (openat2(2) RESOLVE_IN_ROOT) and mounted on
//! through its `/proc/self/fd` link, so a symlink in the container cannot send a mount
//! elsewhere; the handle of each mounted root is kept and unmounted through the same kind
//! of link (lazily: the copy's handles may still be open).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use rustix::fs::{openat2, Mode, OFlags, ResolveFlags, CWD};
use rustix::mount::{mount_bind_recursive, mount_remount, unmount, MountFlags, UnmountFlags};

use crate::container::record::MountPoint;
use crate::ops::error::{OpsError, Result};

/// The mounts made for one copy, innermost last.
#[derive(Debug, Default)]
pub(super) struct CopyMounts(Vec<OwnedFd>);

fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn open_in_root(rootfs: &Path, path: &str) -> rustix::io::Result<OwnedFd> {
    let root = openat2(
        CWD,
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::empty(),
    )?;
    openat2(
        &root,
        path.trim_start_matches('/'),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

impl CopyMounts {
    /// Mounts every volume and directory bind of `mounts` (tmpfs mounts have nothing to
    /// show when stopped) at its destination in `rootfs`, making missing directories. On
    /// failure what was mounted is unmounted again.
    pub(super) fn mount(rootfs: &Path, mounts: &[MountPoint]) -> Result<Self> {
        let mut made = Self::default();
        for m in mounts {
            if !matches!(m.kind.as_str(), "volume" | "bind") || !Path::new(&m.source).is_dir() {
                continue;
            }
            if let Err(e) = made.mount_one(rootfs, m) {
                let also = made.release();
                return Err(e.with_also(also));
            }
        }
        Ok(made)
    }

    fn mount_one(&mut self, rootfs: &Path, m: &MountPoint) -> Result<()> {
        let err = |what: &str, e: rustix::io::Errno| {
            OpsError::io(
                format!("{what} {} at {} for the copy", m.source, m.destination),
                e.into(),
            )
        };
        crate::specgen::create_workdir(rootfs, Path::new(&m.destination))?;
        let point = open_in_root(rootfs, &m.destination).map_err(|e| err("opening", e))?;
        mount_bind_recursive(m.source.as_str(), fd_path(&point)).map_err(|e| err("mounting", e))?;
        // The mount's own root, which is what gets unmounted.
        let mounted = open_in_root(rootfs, &m.destination).map_err(|e| err("opening", e))?;
        let path = fd_path(&mounted);
        self.0.push(mounted);
        if !m.rw {
            mount_remount(path.as_str(), MountFlags::BIND | MountFlags::RDONLY, "")
                .map_err(|e| err("making read-only", e))?;
        }
        Ok(())
    }

    /// Unmounts in reverse order; what went wrong is a line for the user each.
    pub(super) fn release(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(fd) = self.0.pop() {
            if let Err(e) = unmount(fd_path(&fd).as_str(), UnmountFlags::DETACH) {
                lines.push(format!("Error: unmounting a volume of the copy: {e}"));
            }
        }
        lines
    }
}

impl Drop for CopyMounts {
    fn drop(&mut self) {
        let _ = self.release();
    }
}
