//! The copy backend: every snapshot is a complete tree, an active snapshot starting as a
//! plain copy of its parent. Unpacking applies whiteouts by deleting; a container's root is a
//! bind mount. No overlayfs, no reflinks, no shared inodes: it works on any filesystem.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{lchown, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, Timespec, Timestamps, CWD};

use super::store::{Record, Store};
use super::{ApplyTarget, Info, Kind, Mount, Result, SnapshotError, Snapshotter, Usage};
use crate::unpack::Whiteouts;

#[derive(Debug, Clone)]
pub struct CopySnapshotter {
    store: Store,
}

impl CopySnapshotter {
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            store: Store::open(dir)?,
        })
    }

    fn fs(&self, rec: &Record) -> PathBuf {
        self.store.snapshot_dir(rec.id).join("fs")
    }
}

impl Snapshotter for CopySnapshotter {
    fn name(&self) -> &'static str {
        "copy"
    }

    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        let rec = self.store.create(key, parent, Kind::Active, &[])?;
        let dst = self.fs(&rec);
        let copied = match parent {
            None => fs::create_dir(&dst).map_err(|source| SnapshotError::CreateDir {
                path: dst.clone(),
                source,
            }),
            Some(p) => {
                let src = self.fs(&self.store.get(p)?);
                let copied = match copy_tree(&src, &dst, &mut HashMap::new()) {
                    // Owners in the user's subordinate ranges (which it may not chown to, nor
                    // read): copied again in its user namespace. A tree of the user's own
                    // files (container root's) needs no helper.
                    Err((_, e))
                        if e.kind() == io::ErrorKind::PermissionDenied
                            && crate::rootless::userns::shifting() =>
                    {
                        crate::rootless::userns::remove_tree(&dst)
                            .and_then(|()| crate::rootless::userns::copy(&src, &dst))
                            .map_err(|e| (dst.clone(), e))
                    }
                    r => r,
                };
                copied.map_err(|(path, source)| SnapshotError::Copy {
                    parent: p.to_string(),
                    path,
                    source,
                })
            }
        };
        if let Err(e) = copied {
            // The record is ours alone (just created): dropping it cannot fail on children.
            let _ = self.store.remove(key);
            return Err(e);
        }
        self.mounts(key)
    }

    fn view(&self, key: &str, parent: &str) -> Result<Vec<Mount>> {
        self.store.create(key, Some(parent), Kind::View, &[])?;
        self.mounts(key)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let chain = self.store.chain(key)?;
        let not_found = || SnapshotError::NotFound {
            key: key.to_string(),
        };
        let me = chain.first().ok_or_else(not_found)?;
        let (source, ro) = match me.kind {
            Kind::Active => (self.fs(me), false),
            // A view is the parent's tree itself, read-only: committed trees never change.
            Kind::View => (self.fs(chain.get(1).ok_or_else(not_found)?), true),
            Kind::Committed => {
                return Err(SnapshotError::WrongKind {
                    key: key.to_string(),
                    expected: Kind::Active,
                    actual: Kind::Committed,
                })
            }
        };
        Ok(vec![Mount {
            kind: "bind".into(),
            source,
            options: vec!["rbind".into(), if ro { "ro" } else { "rw" }.into()],
        }])
    }

    fn commit(&self, name: &str, active: &str) -> Result<()> {
        self.store.commit(name, active)
    }

    fn remove(&self, key: &str) -> Result<()> {
        self.store.remove(key)
    }

    fn stat(&self, key: &str) -> Result<Info> {
        self.store.info(key)
    }

    fn list(&self) -> Result<Vec<Info>> {
        self.store.list()
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        self.store.usage(key)
    }

    fn apply_target(&self, key: &str) -> Result<ApplyTarget> {
        let chain = self.store.chain(key)?;
        let rec = chain.first().ok_or_else(|| SnapshotError::NotFound {
            key: key.to_string(),
        })?;
        if rec.kind != Kind::Active {
            return Err(SnapshotError::WrongKind {
                key: key.to_string(),
                expected: Kind::Active,
                actual: rec.kind,
            });
        }
        Ok(ApplyTarget {
            dir: self.fs(rec),
            whiteouts: Whiteouts::Delete,
            lowers: chain.get(1).map(|p| self.fs(p)).into_iter().collect(),
        })
    }
}

/// [`copy_tree`] for the rootless helper (`rootless::userns`), its error naming the path.
pub fn copy_tree_as_is(src: &Path, dst: &Path) -> io::Result<()> {
    copy_tree(src, dst, &mut HashMap::new())
        .map_err(|(path, e)| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Copies `src` to the new path `dst` with every attribute unpack sets: type, content, owner,
/// mode (setuid after chown, which clears it), xattrs, mtime; files hardlinked inside `src` stay
/// hardlinked in the copy. Never follows a symlink: the source is a committed snapshot, which
/// nothing modifies, and it is only walked with lstat. Errors name the path that failed.
fn copy_tree(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), (PathBuf, io::Error)> {
    let at = |e: io::Error| (dst.to_path_buf(), e);
    let md = fs::symlink_metadata(src).map_err(at)?;
    if md.is_dir() {
        fs::create_dir(dst).map_err(at)?;
        let mut names: Vec<OsString> = fs::read_dir(src)
            .and_then(|rd| rd.map(|e| e.map(|e| e.file_name())).collect())
            .map_err(at)?;
        names.sort();
        for n in names {
            copy_tree(&src.join(&n), &dst.join(&n), links)?;
        }
    }
    copy_entry(src, dst, &md, links).map_err(at)
}

/// Makes `dst` like `src` (directories already exist and are filled).
fn copy_entry(
    src: &Path,
    dst: &Path,
    md: &fs::Metadata,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let ft = md.file_type();
    if md.nlink() > 1 && !ft.is_dir() {
        if let Some(first) = links.get(&(md.dev(), md.ino())) {
            return fs::hard_link(first, dst);
        }
        links.insert((md.dev(), md.ino()), dst.to_path_buf());
    }
    if ft.is_file() {
        fs::copy(src, dst)?;
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(src)?, dst)?;
    } else if !ft.is_dir() {
        let kind = if ft.is_char_device() {
            FileType::CharacterDevice
        } else if ft.is_block_device() {
            FileType::BlockDevice
        } else if ft.is_fifo() {
            FileType::Fifo
        } else {
            // Sockets are not part of images (tar cannot carry them).
            return Ok(());
        };
        rfs::mknodat(
            CWD,
            dst,
            kind,
            Mode::from_raw_mode(md.mode() & 0o7777),
            md.rdev(),
        )?;
    }
    lchown(dst, Some(md.uid()), Some(md.gid()))?;
    if !ft.is_symlink() {
        fs::set_permissions(dst, fs::Permissions::from_mode(md.mode() & 0o7777))?;
    }
    copy_xattrs(src, dst)?;
    let t = Timespec {
        tv_sec: md.mtime(),
        tv_nsec: md.mtime_nsec(),
    };
    rfs::utimensat(
        CWD,
        dst,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Copies every xattr. Buffers are XATTR_SIZE_MAX / XATTR_LIST_MAX (64 KiB, xattr(7)), the
/// most an attribute value or a name list can be.
fn copy_xattrs(src: &Path, dst: &Path) -> io::Result<()> {
    const MAX: usize = 65536;
    let mut names = vec![0u8; MAX];
    let n = match rfs::llistxattr(src, &mut names[..]) {
        Ok(n) => n,
        Err(e) if e == rustix::io::Errno::NOTSUP => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut value = vec![0u8; MAX];
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::ffi::CString::new(name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let got = rfs::lgetxattr(src, name.as_c_str(), &mut value[..])?;
        match rfs::lsetxattr(
            dst,
            name.as_c_str(),
            &value[..got],
            rfs::XattrFlags::empty(),
        ) {
            Ok(()) => {}
            // What the target filesystem refuses is skipped, as in unpack.
            Err(e) if e == rustix::io::Errno::NOTSUP || e == rustix::io::Errno::PERM => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
