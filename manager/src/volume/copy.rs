//! Docker's volume copy-up: an empty volume first mounted where the image has content gets a
//! copy of that content.
//!
//! The source lies inside a container's root filesystem, which the image (or a previous run
//! of the container) controls, so it is walked only through directory file descriptors with
//! `O_NOFOLLOW` and `AT_SYMLINK_NOFOLLOW`: a symlink such as `etc -> /etc` is copied as a
//! symlink and never read through, and a directory swapped for a symlink while we walk fails
//! to open instead of leading out of the tree.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat, Timespec, Timestamps,
};
use rustix::io::Errno;

use crate::lock::{FileLock, LockError};

const POPULATE_LOCK: &str = "populate.lock";

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("opening source {path}")]
    OpenSource {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("opening volume data {path}")]
    OpenTarget {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("copy into {path} failed and the partial copy could not be removed ({cleanup})")]
    Incomplete {
        path: PathBuf,
        cleanup: io::Error,
        #[source]
        cause: Box<CopyError>,
    },
    #[error("copying in the user's namespace (owners shifted into its subordinate ids)")]
    InUserNamespace {
        #[source]
        source: io::Error,
    },
    #[error("copying {path}")]
    Entry {
        /// Relative to the source directory.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

type Result<T, E = CopyError> = std::result::Result<T, E>;

/// Copies `source` (resolved inside `rootfs` when given) into the empty directory `data`.
/// `vol_dir` holds the per-volume lock that keeps two containers starting at once from both
/// copying.
pub(super) fn populate(
    vol_dir: &Path,
    data: &Path,
    rootfs: Option<&Path>,
    source: &Path,
) -> Result<bool> {
    if crate::rootless::userns::shifting() {
        // The image's files have owners in the user's subordinate range: copied in its
        // user namespace, so that the copies keep them.
        return crate::rootless::userns::populate(vol_dir, data, rootfs, source)
            .map_err(|source| CopyError::InUserNamespace { source });
    }
    let _lock = FileLock::exclusive(&vol_dir.join(POPULATE_LOCK))?;
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let open_target = |source: io::Error| CopyError::OpenTarget {
        path: data.to_path_buf(),
        source,
    };
    let dst = rfs::open(data, dir_flags | OFlags::NOFOLLOW, Mode::empty())
        .map_err(|e| open_target(e.into()))?;
    if !is_empty(&dst).map_err(open_target)? {
        return Ok(false);
    }
    let opened = match rootfs {
        None => rfs::open(source, dir_flags, Mode::empty()),
        Some(root) => {
            let root_fd =
                rfs::open(root, dir_flags, Mode::empty()).map_err(|e| CopyError::OpenSource {
                    path: root.to_path_buf(),
                    source: e.into(),
                })?;
            rfs::openat2(
                &root_fd,
                source,
                dir_flags,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            )
        }
    };
    let src = match opened {
        Ok(fd) => fd,
        // Nothing (or no directory) at that path in the image: nothing to copy.
        Err(e) if e == Errno::NOENT || e == Errno::NOTDIR => return Ok(false),
        Err(e) => {
            return Err(CopyError::OpenSource {
                path: source.to_path_buf(),
                source: e.into(),
            })
        }
    };
    let mut copier = Copier {
        dst_root: dst.try_clone().map_err(open_target)?,
        links: HashMap::new(),
    };
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| CopyError::Entry { path, source }
    };
    let copied = copier
        .copy_dir(&src, &dst, Path::new(""))
        .map_err(|(path, source)| CopyError::Entry { path, source })
        .and_then(|()| {
            // The volume's root takes the source directory's owner, mode, xattrs and times
            // (docker's copyOwnership), so e.g. a postgres data directory stays owned by
            // postgres.
            let st = rfs::fstat(&src).map_err(|e| at(Path::new("."))(e.into()))?;
            apply_fd_metadata(&src, &dst, &st).map_err(at(Path::new(".")))
        });
    if let Err(e) = copied {
        // A half-copied volume is not empty, so it would never be completed: empty it, so
        // the next container start copies again.
        return Err(match clear_dir(data) {
            Ok(()) => e,
            Err(cleanup) => CopyError::Incomplete {
                path: data.to_path_buf(),
                cleanup,
                cause: Box::new(e),
            },
        });
    }
    Ok(true)
}

/// Removes everything inside `dir` (never following symlinks: remove_dir_all does not).
fn clear_dir(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn is_empty(dir: &OwnedFd) -> io::Result<bool> {
    let mut rd = rfs::Dir::read_from(dir)?;
    for entry in rd.by_ref() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

struct Copier {
    dst_root: OwnedFd,
    /// (dev, ino) of multiply-linked source files → their copy, relative to `dst_root`.
    links: HashMap<(u64, u64), PathBuf>,
}

type EntryResult<T> = std::result::Result<T, (PathBuf, io::Error)>;

impl Copier {
    fn copy_dir(&mut self, src: &OwnedFd, dst: &OwnedFd, rel: &Path) -> EntryResult<()> {
        let at = |e: io::Error| (rel.to_path_buf(), e);
        let mut names: Vec<CString> = Vec::new();
        for entry in rfs::Dir::read_from(src).map_err(|e| at(e.into()))? {
            let entry = entry.map_err(|e| at(e.into()))?;
            let name = entry.file_name();
            if name.to_bytes() != b"." && name.to_bytes() != b".." {
                names.push(name.to_owned());
            }
        }
        names.sort();
        for name in names {
            let child = rel.join(OsStr::from_bytes(name.to_bytes()));
            self.copy_entry(src, dst, &name, &child)
                .map_err(|e| (child.clone(), e))?;
        }
        Ok(())
    }

    fn copy_entry(
        &mut self,
        src_dir: &OwnedFd,
        dst_dir: &OwnedFd,
        name: &CStr,
        rel: &Path,
    ) -> io::Result<()> {
        let st = rfs::statat(src_dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind != FileType::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                rfs::linkat(&self.dst_root, first, dst_dir, name, AtFlags::empty())?;
                return Ok(());
            }
            self.links.insert(key, rel.to_path_buf());
        }
        match kind {
            FileType::Directory => {
                rfs::mkdirat(dst_dir, name, Mode::from_raw_mode(0o700))?;
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let src = rfs::openat(src_dir, name, flags, Mode::empty())?;
                let dst = rfs::openat(dst_dir, name, flags, Mode::empty())?;
                check_same(&src, &st)?;
                self.copy_dir(&src, &dst, rel).map_err(|(_, e)| e)?;
                // Metadata last: the times would change as entries are added, and a
                // read-only mode would stop us adding them.
                apply_fd_metadata(&src, &dst, &st)
            }
            FileType::RegularFile => {
                // O_NONBLOCK: if the file was swapped for a FIFO since statat, open must not
                // hang; check_same then refuses it.
                let src = rfs::openat(
                    src_dir,
                    name,
                    OFlags::RDONLY
                        | OFlags::NOFOLLOW
                        | OFlags::NONBLOCK
                        | OFlags::NOCTTY
                        | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                check_same(&src, &st)?;
                let dst = rfs::openat(
                    dst_dir,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?;
                let mut from = File::from(src.try_clone()?);
                let mut to = File::from(dst.try_clone()?);
                io::copy(&mut from, &mut to)?;
                apply_fd_metadata(&src, &dst, &st)
            }
            FileType::Symlink => {
                let target = rfs::readlinkat(src_dir, name, Vec::new())?;
                rfs::symlinkat(target.as_c_str(), dst_dir, name)?;
                apply_path_metadata(dst_dir, name, &st, false)
            }
            FileType::CharacterDevice
            | FileType::BlockDevice
            | FileType::Fifo
            | FileType::Socket => {
                rfs::mknodat(
                    dst_dir,
                    name,
                    kind,
                    Mode::from_raw_mode(st.st_mode & 0o7777),
                    st.st_rdev,
                )?;
                apply_path_metadata(dst_dir, name, &st, true)
            }
            FileType::Unknown => Ok(()),
        }
    }
}

/// Refuses an entry replaced between `statat` and `openat`.
fn check_same(fd: &OwnedFd, st: &Stat) -> io::Result<()> {
    let now = rfs::fstat(fd)?;
    if now.st_dev != st.st_dev || now.st_ino != st.st_ino {
        return Err(io::Error::other("entry changed while being copied"));
    }
    Ok(())
}

fn times(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// Owner, then mode (chown clears setuid/setgid), xattrs, times, on an open file or directory.
fn apply_fd_metadata(src: &OwnedFd, dst: &OwnedFd, st: &Stat) -> io::Result<()> {
    rfs::fchown(
        dst,
        Some(rfs::Uid::from_raw(st.st_uid)),
        Some(rfs::Gid::from_raw(st.st_gid)),
    )?;
    rfs::fchmod(dst, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    copy_xattrs(src, dst)?;
    rfs::futimens(dst, &times(st))?;
    Ok(())
}

/// Owner, mode (not for symlinks, whose mode Linux ignores) and times by name. Xattrs are not
/// copied: Linux allows only trusted.* and security.* on symlinks and devices, and reading
/// them would need a path through the untrusted tree.
fn apply_path_metadata(dir: &OwnedFd, name: &CStr, st: &Stat, chmod: bool) -> io::Result<()> {
    rfs::chownat(
        dir,
        name,
        Some(rfs::Uid::from_raw(st.st_uid)),
        Some(rfs::Gid::from_raw(st.st_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if chmod {
        rfs::chmodat(
            dir,
            name,
            Mode::from_raw_mode(st.st_mode & 0o7777),
            AtFlags::empty(),
        )?;
    }
    rfs::utimensat(dir, name, &times(st), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Copies every xattr. Buffers are XATTR_LIST_MAX / XATTR_SIZE_MAX (64 KiB, xattr(7)).
fn copy_xattrs(src: &impl AsFd, dst: &impl AsFd) -> io::Result<()> {
    const MAX: usize = 65536;
    let mut names = vec![0u8; MAX];
    let n = match rfs::flistxattr(src, &mut names[..]) {
        Ok(n) => n,
        Err(e) if e == Errno::NOTSUP => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut value = vec![0u8; MAX];
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let got = rfs::fgetxattr(src, name.as_c_str(), &mut value[..])?;
        match rfs::fsetxattr(
            dst,
            name.as_c_str(),
            &value[..got],
            rfs::XattrFlags::empty(),
        ) {
            Ok(()) => {}
            // What the volume's filesystem refuses (e.g. security.selinux labels it does not
            // support) is skipped, as unpack does.
            Err(e) if e == Errno::NOTSUP || e == Errno::PERM => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
