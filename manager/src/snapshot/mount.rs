//! Making the mounts a snapshotter returns (mount(2)), for a target the caller chooses.

use std::ffi::CString;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::mount::{self as rmount, MountFlags, UnmountFlags};

use super::{Mount, Result, SnapshotError};

/// Whether `path` is a mount point in this process's mount namespace, as
/// /proc/self/mountinfo lists them (proc(5)). A bind mount of a directory onto itself keeps
/// the device number, so comparing `st_dev` with the parent would miss it.
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(canon) = path.canonicalize() else {
        return false;
    };
    procfs::process::Process::myself()
        .and_then(|p| p.mountinfo())
        .is_ok_and(|infos| infos.into_iter().any(|m| m.mount_point == canon))
}

/// Mounts each of `mounts` on `target`, in order.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    for m in mounts {
        let err = |source: io::Error| SnapshotError::Mount {
            kind: m.kind.clone(),
            source_path: m.source.clone(),
            target: target.to_path_buf(),
            source,
        };
        let ro = m.options.iter().any(|o| o == "ro");
        match m.kind.as_str() {
            // Rootless: no mounts on the host. The target becomes a link to the snapshot,
            // which the runtime (and every file operation) follows.
            "bind" if crate::rootless::is_rootless() => link_to(&m.source, target).map_err(err)?,
            "bind" => {
                if m.options.iter().any(|o| o == "rbind") {
                    rmount::mount_bind_recursive(&m.source, target)
                } else {
                    rmount::mount_bind(&m.source, target)
                }
                .map_err(|e| err(e.into()))?;
                if ro {
                    // MS_RDONLY is ignored on the first bind mount call; it takes a remount
                    // (mount(2), "Creating a bind mount").
                    if let Err(e) =
                        rmount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "")
                    {
                        let _ = rmount::unmount(target, UnmountFlags::DETACH);
                        return Err(err(e.into()));
                    }
                }
            }
            "overlay" => {
                let data: Vec<&str> = m
                    .options
                    .iter()
                    .map(String::as_str)
                    .filter(|o| *o != "ro" && *o != "rw")
                    .collect();
                let joined = data.join(",");
                if joined.len() >= MAX_MOUNT_DATA {
                    overlay_fsconfig(&data, target, ro).map_err(err)?;
                    continue;
                }
                let joined = CString::new(joined)
                    .map_err(|e| err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
                let flags = if ro {
                    MountFlags::RDONLY
                } else {
                    MountFlags::empty()
                };
                rmount::mount(&m.source, target, "overlay", flags, joined.as_c_str())
                    .map_err(|e| err(e.into()))?;
            }
            other => {
                return Err(SnapshotError::MountType {
                    kind: other.to_string(),
                    target: target.to_path_buf(),
                })
            }
        }
    }
    Ok(())
}

/// mount(2) copies at most one page of options; a long chain of lower directories does not
/// fit in it.
const MAX_MOUNT_DATA: usize = 4096;

/// Mounts an overlay through the new mount API (fsopen(2), fsconfig(2), fsmount(2),
/// move_mount(2)), passing each lower directory on its own with `lowerdir+` (Linux 6.8,
/// overlayfs.rst "Multiple lower layers"), so the chain's length is only limited by
/// overlayfs' own stacking limit.
fn overlay_fsconfig(options: &[&str], target: &Path, ro: bool) -> io::Result<()> {
    let fs = rmount::fsopen("overlay", rmount::FsOpenFlags::FSOPEN_CLOEXEC)?;
    for opt in options {
        if let Some(lowers) = opt.strip_prefix("lowerdir=") {
            for dir in lowers.split(':') {
                rmount::fsconfig_set_string(&fs, "lowerdir+", dir)?;
            }
        } else if let Some((key, value)) = opt.split_once('=') {
            rmount::fsconfig_set_string(&fs, key, value)?;
        } else {
            rmount::fsconfig_set_flag(&fs, *opt)?;
        }
    }
    rmount::fsconfig_create(&fs)?;
    let attrs = if ro {
        rmount::MountAttrFlags::MOUNT_ATTR_RDONLY
    } else {
        rmount::MountAttrFlags::empty()
    };
    let mnt = rmount::fsmount(&fs, rmount::FsMountFlags::FSMOUNT_CLOEXEC, attrs)?;
    rmount::move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        rmount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}

/// Unmounts `target` (one mount level). EBUSY is retried for up to two seconds: a runtime
/// cloning a new mount namespace at that moment (another container's create) holds a
/// propagated copy of this mount until it makes its mounts private, and the kernel refuses
/// the unmount while a propagated copy is in use.
pub fn unmount(target: &Path) -> Result<()> {
    // Rootless: mount_all made a link, not a mount; the link stays (mount_all reuses it).
    if crate::rootless::is_rootless()
        && std::fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_symlink())
    {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut pause = Duration::from_millis(5);
    loop {
        match rmount::unmount(target, UnmountFlags::empty()) {
            Err(rustix::io::Errno::BUSY) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            r => {
                return r.map_err(|e| SnapshotError::Unmount {
                    target: target.to_path_buf(),
                    source: e.into(),
                })
            }
        }
    }
}

/// Replaces `target` (absent, an empty directory, or already this link) with a symlink to
/// `source`.
fn link_to(source: &Path, target: &Path) -> io::Result<()> {
    match std::fs::read_link(target) {
        Ok(existing) if existing == source => return Ok(()),
        Ok(_) => std::fs::remove_file(target)?,
        Err(_) if target.is_dir() => std::fs::remove_dir(target)?,
        Err(_) => {}
    }
    std::os::unix::fs::symlink(source, target)
}
