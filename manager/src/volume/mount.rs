//! The local driver's mount options (`volume create --opt type=tmpfs --opt device=tmpfs
//! --opt o=size=64m`): a filesystem mounted on the volume's data directory before a
//! container uses it, so every container sharing the volume sees the same mount.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, StatxAttributes, StatxFlags, CWD};
use rustix::mount::{self as rmount, MountFlags, MountPropagationFlags, UnmountFlags};

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("invalid option: {key:?}")]
    UnknownKey { key: String },
    #[error("missing required option: {key:?}")]
    Missing { key: &'static str },
    #[error("option o: {value:?} contains a NUL byte")]
    Nul { value: String },
    #[error("mounting {fstype} {device} on {target}")]
    Mount {
        fstype: String,
        device: String,
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unmounting {target}")]
    Unmount {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("checking whether {target} is mounted")]
    Check {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
}

type Result<T, E = MountError> = std::result::Result<T, E>;

/// What to mount, validated from `--opt` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MountSpec {
    fstype: String,
    device: String,
    flags: MountFlags,
    /// `bind` / `rbind` in `o`.
    bind: Option<bool>,
    /// What `o` held that is not a flag: the filesystem's own options.
    data: String,
}

/// The option keys the local driver knows; `size` (an XFS project quota in docker) is not
/// supported.
const KEYS: [&str; 3] = ["type", "device", "o"];

/// Validates `--opt` values: `None` without options; `type` and `device` are both required
/// once any option is given, as docker's local driver requires.
pub(super) fn parse(opts: &BTreeMap<String, String>) -> Result<Option<MountSpec>> {
    if let Some(key) = opts.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(MountError::UnknownKey { key: key.clone() });
    }
    if opts.is_empty() {
        return Ok(None);
    }
    let get = |key: &'static str| {
        opts.get(key)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or(MountError::Missing { key })
    };
    let fstype = get("type")?;
    let device = get("device")?;
    let o = opts.get("o").cloned().unwrap_or_default();
    let mut flags = MountFlags::empty();
    let mut bind = None;
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        // mount(8)'s flag words; everything else goes to the filesystem as data.
        let (set, clear) = match opt {
            "ro" => (MountFlags::RDONLY, MountFlags::empty()),
            "rw" => (MountFlags::empty(), MountFlags::RDONLY),
            "nosuid" => (MountFlags::NOSUID, MountFlags::empty()),
            "suid" => (MountFlags::empty(), MountFlags::NOSUID),
            "nodev" => (MountFlags::NODEV, MountFlags::empty()),
            "dev" => (MountFlags::empty(), MountFlags::NODEV),
            "noexec" => (MountFlags::NOEXEC, MountFlags::empty()),
            "exec" => (MountFlags::empty(), MountFlags::NOEXEC),
            "sync" => (MountFlags::SYNCHRONOUS, MountFlags::empty()),
            "async" => (MountFlags::empty(), MountFlags::SYNCHRONOUS),
            "dirsync" => (MountFlags::DIRSYNC, MountFlags::empty()),
            "noatime" => (MountFlags::NOATIME, MountFlags::empty()),
            "nodiratime" => (MountFlags::NODIRATIME, MountFlags::empty()),
            "relatime" => (MountFlags::RELATIME, MountFlags::empty()),
            "strictatime" => (MountFlags::STRICTATIME, MountFlags::empty()),
            "defaults" => (MountFlags::empty(), MountFlags::empty()),
            "bind" => {
                bind = Some(false);
                continue;
            }
            "rbind" => {
                bind = Some(true);
                continue;
            }
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        flags = (flags | set) - clear;
    }
    Ok(Some(MountSpec {
        fstype,
        device,
        flags,
        bind,
        data: data.join(","),
    }))
}

/// Whether `path` is the root of a mount (statx STATX_ATTR_MOUNT_ROOT, Linux 5.8+; on older
/// kernels a different device than the parent's, which misses same-filesystem binds).
pub(super) fn is_mounted(path: &Path) -> Result<bool> {
    let check = |source: io::Error| MountError::Check {
        target: path.to_path_buf(),
        source,
    };
    let st = match rustix::fs::statx(
        CWD,
        path,
        AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT,
        StatxFlags::BASIC_STATS,
    ) {
        Ok(st) => st,
        // Nothing there (a damaged volume whose data went missing): nothing mounted.
        Err(e) if e == rustix::io::Errno::NOENT => return Ok(false),
        Err(e) => return Err(check(e.into())),
    };
    if st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) {
        return Ok(st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT));
    }
    let parent = path.parent().unwrap_or(path);
    let up = rustix::fs::stat(parent).map_err(|e| check(e.into()))?;
    Ok(rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor) != up.st_dev)
}

/// Mounts `spec` on `target` unless something is mounted there already.
pub(super) fn mount(spec: &MountSpec, target: &Path) -> Result<()> {
    if is_mounted(target)? {
        return Ok(());
    }
    let fail = |source: io::Error| MountError::Mount {
        fstype: spec.fstype.clone(),
        device: spec.device.clone(),
        target: target.to_path_buf(),
        source,
    };
    match spec.bind {
        Some(recursive) => {
            if recursive {
                rmount::mount_bind_recursive(spec.device.as_str(), target)
            } else {
                rmount::mount_bind(spec.device.as_str(), target)
            }
            .map_err(|e| fail(e.into()))?;
            // A bind mount ignores flags: they apply through a remount of the new mount.
            if !spec.flags.is_empty() {
                let remount = rmount::mount_remount(target, spec.flags | MountFlags::BIND, "");
                if let Err(e) = remount {
                    let _ = rmount::unmount(target, UnmountFlags::DETACH);
                    return Err(fail(e.into()));
                }
            }
        }
        None => {
            let data = CString::new(spec.data.clone()).map_err(|_| MountError::Nul {
                value: spec.data.clone(),
            })?;
            rmount::mount(
                spec.device.as_str(),
                target,
                spec.fstype.as_str(),
                spec.flags,
                Some(data.as_c_str()),
            )
            .map_err(|e| fail(e.into()))?;
        }
    }
    // Private: mounts made later under the host's propagation settings must not leak back
    // into the volume, and the volume's mount must not propagate into other namespaces.
    let _ = rmount::mount_change(target, MountPropagationFlags::PRIVATE);
    Ok(())
}

/// Unmounts whatever is mounted on `target` (all stacked mounts); lazily, so a volume whose
/// last container is still being torn down can go.
pub(super) fn unmount_all(target: &Path) -> Result<()> {
    while is_mounted(target)? {
        rmount::unmount(target, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW).map_err(|e| {
            MountError::Unmount {
                target: target.to_path_buf(),
                source: e.into(),
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_parse_into_flags_and_data() {
        assert_eq!(parse(&opts(&[])).unwrap(), None);
        let spec = parse(&opts(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m,ro,nosuid,uid=1000,rw"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(spec.flags, MountFlags::NOSUID);
        assert_eq!(spec.data, "size=1m,uid=1000");
        assert_eq!(spec.bind, None);
        let bind = parse(&opts(&[
            ("type", "none"),
            ("device", "/srv"),
            ("o", "rbind,ro"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(bind.bind, Some(true));
        assert_eq!(bind.flags, MountFlags::RDONLY);
        assert!(matches!(
            parse(&opts(&[("type", "tmpfs")])),
            Err(MountError::Missing { key: "device" })
        ));
        assert!(matches!(
            parse(&opts(&[("o", "size=1m"), ("device", "x")])),
            Err(MountError::Missing { key: "type" })
        ));
        assert!(matches!(
            parse(&opts(&[("size", "10g")])),
            Err(MountError::UnknownKey { .. })
        ));
    }
}
