//! Making the mounts a snapshotter returns (mount(2)), for a target the caller chooses.

use std::ffi::CString;
use std::io;
use std::path::Path;

use rustix::mount::{self as rmount, MountFlags, UnmountFlags};

use super::{Mount, Result, SnapshotError};

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
                let data = CString::new(data.join(","))
                    .map_err(|e| err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
                let flags = if ro {
                    MountFlags::RDONLY
                } else {
                    MountFlags::empty()
                };
                rmount::mount(&m.source, target, "overlay", flags, data.as_c_str())
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

/// Unmounts `target` (one mount level).
pub fn unmount(target: &Path) -> Result<()> {
    rmount::unmount(target, UnmountFlags::empty()).map_err(|e| SnapshotError::Unmount {
        target: target.to_path_buf(),
        source: e.into(),
    })
}
