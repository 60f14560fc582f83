//! In-root path resolution for extraction: every directory is opened with `O_NOFOLLOW`
//! relative to its already-opened parent (openat(2)), and symlinks met on the way are resolved
//! by hand, so that no path ever leaves the layer's root directory. An absolute symlink target
//! means the image's own root (as it would inside the container); a relative target that climbs
//! above the root is refused instead of being clamped, because a layer that relies on it is
//! either broken or hostile.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};

use super::UnpackError;

/// Linux gives up after 40 symlinks in one lookup (path_resolution(7)); so do we.
const MAX_SYMLINKS: usize = 40;

/// The normalised components of an entry name. A leading `/` is stripped, as docker and
/// containerd do (the name is relative to the layer root either way); `..` that would climb
/// above the root is refused.
pub fn clean(entry: &Path) -> Result<Vec<OsString>, UnpackError> {
    let mut out: Vec<OsString> = Vec::new();
    for c in entry.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if out.pop().is_none() {
                    return Err(UnpackError::Escape {
                        entry: entry.to_path_buf(),
                    });
                }
            }
            Component::Normal(n) => out.push(n.to_os_string()),
        }
    }
    Ok(out)
}

pub fn join(names: &[OsString]) -> PathBuf {
    names.iter().collect()
}

/// How a missing directory on the way to an entry is handled.
pub enum Missing<'a> {
    /// Fail with ENOENT.
    Fail,
    /// Create it 0755 root:root (tar streams may omit parent directories), or with the
    /// metadata `inherit` finds for it (overlay: the same directory in a lower layer).
    Create(&'a dyn Fn(&[OsString]) -> Option<LowerEntry>),
}

/// What a lower layer has at a path (overlay backend).
pub enum LowerEntry {
    Dir(rfs::Stat),
    Symlink(OsString),
    /// An overlay whiteout (char 0/0): absent here and in every layer below.
    Whiteout,
    Other,
}

/// An open directory tree into which entries are extracted.
pub struct Tree {
    root: OwnedFd,
}

impl Tree {
    pub fn open(path: &Path) -> io::Result<Self> {
        let root = rfs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self { root })
    }

    pub fn root_fd(&self) -> &OwnedFd {
        &self.root
    }

    /// Opens directory `names` (already cleaned) inside the tree, following symlinks in-root.
    /// Returns the directory and its resolved components. `entry` names the tar entry for
    /// errors.
    pub fn open_dir(
        &self,
        names: &[OsString],
        missing: &Missing<'_>,
        entry: &Path,
    ) -> Result<(OwnedFd, Vec<OsString>), UnpackError> {
        let io_err = |source: io::Error| UnpackError::Entry {
            entry: entry.to_path_buf(),
            source,
        };
        let mut stack: Vec<OwnedFd> = vec![dup(&self.root).map_err(io_err)?];
        let mut resolved: Vec<OsString> = Vec::new();
        let mut queue: VecDeque<OsString> = names.iter().cloned().collect();
        let mut followed = 0;
        let mut via: Option<(PathBuf, PathBuf)> = None;
        while let Some(name) = queue.pop_front() {
            if name.as_bytes() == b"." || name.is_empty() {
                continue;
            }
            if name.as_bytes() == b".." {
                if stack.len() == 1 {
                    let (symlink, target) = via.clone().unwrap_or_default();
                    return Err(UnpackError::SymlinkEscape {
                        entry: entry.to_path_buf(),
                        symlink,
                        target,
                    });
                }
                stack.pop();
                resolved.pop();
                continue;
            }
            let top = stack
                .last()
                .ok_or_else(|| io_err(io::ErrorKind::NotFound.into()))?;
            let mut here = resolved.clone();
            here.push(name.clone());
            let step = match open_subdir(top, &name) {
                Ok(fd) => Step::Dir(fd),
                Err(e) if e == rustix::io::Errno::NOENT => match missing {
                    Missing::Fail => return Err(io_err(e.into())),
                    Missing::Create(lower) => match lower(&here) {
                        Some(LowerEntry::Symlink(t)) => Step::Link(t),
                        Some(LowerEntry::Other) => {
                            return Err(UnpackError::NotADirectory {
                                entry: entry.to_path_buf(),
                                component: join(&here),
                            })
                        }
                        Some(LowerEntry::Dir(st)) => {
                            Step::Dir(make_dir(top, &name, Some(&st)).map_err(io_err)?)
                        }
                        None | Some(LowerEntry::Whiteout) => {
                            Step::Dir(make_dir(top, &name, None).map_err(io_err)?)
                        }
                    },
                },
                Err(e) if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR => {
                    let st = rfs::statat(top, &name, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| io_err(e.into()))?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                        return Err(UnpackError::NotADirectory {
                            entry: entry.to_path_buf(),
                            component: join(&here),
                        });
                    }
                    let t =
                        rfs::readlinkat(top, &name, Vec::new()).map_err(|e| io_err(e.into()))?;
                    Step::Link(OsStr::from_bytes(t.as_bytes()).to_os_string())
                }
                Err(e) => return Err(io_err(e.into())),
            };
            match step {
                Step::Dir(fd) => {
                    stack.push(fd);
                    resolved.push(name);
                }
                Step::Link(target) => {
                    followed += 1;
                    if followed > MAX_SYMLINKS {
                        return Err(UnpackError::SymlinkLoop {
                            entry: entry.to_path_buf(),
                        });
                    }
                    let target = PathBuf::from(target);
                    via = Some((join(&here), target.clone()));
                    if target.is_absolute() {
                        stack.truncate(1);
                        resolved.clear();
                    }
                    for c in target.components().rev() {
                        match c {
                            Component::Normal(n) => queue.push_front(n.to_os_string()),
                            Component::ParentDir => queue.push_front(OsString::from("..")),
                            _ => {}
                        }
                    }
                }
            }
        }
        let fd = stack
            .pop()
            .ok_or_else(|| io_err(io::ErrorKind::NotFound.into()))?;
        Ok((fd, resolved))
    }
}

enum Step {
    Dir(OwnedFd),
    Link(OsString),
}

fn dup(fd: &OwnedFd) -> io::Result<OwnedFd> {
    fd.as_fd().try_clone_to_owned()
}

fn open_subdir(dir: &OwnedFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Creates a directory that the stream did not name, with a lower layer's metadata when there
/// is one (overlay shows the upper directory's attributes, so a bare 0755 root:root would
/// change the merged view).
fn make_dir(parent: &OwnedFd, name: &OsStr, like: Option<&rfs::Stat>) -> io::Result<OwnedFd> {
    match rfs::mkdirat(parent, name, Mode::from_raw_mode(0o755)) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::EXIST => {}
        Err(e) => return Err(e.into()),
    }
    let fd = open_subdir(parent, name)?;
    if let Some(st) = like {
        rfs::fchown(
            &fd,
            Some(rfs::Uid::from_raw(st.st_uid)),
            Some(rfs::Gid::from_raw(st.st_gid)),
        )?;
        rfs::fchmod(&fd, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    }
    Ok(fd)
}

/// Looks `names` up in a stack of lower layers, topmost first, as overlayfs would: the first
/// layer that has the path decides, and a whiteout there means absent.
pub fn lookup_lowers(lowers: &[Tree], names: &[OsString]) -> Option<LowerEntry> {
    match lowers
        .iter()
        .find_map(|l| lookup_lower(l.root_fd(), names))?
    {
        LowerEntry::Whiteout => None,
        found => Some(found),
    }
}

/// Looks `names` up in a lower layer without following any symlink (overlay backend).
pub fn lookup_lower(lower: &OwnedFd, names: &[OsString]) -> Option<LowerEntry> {
    let (last, dirs) = names.split_last()?;
    let mut fd = dup(lower).ok()?;
    for d in dirs {
        fd = open_subdir(&fd, d).ok()?;
    }
    let st = rfs::statat(&fd, last.as_os_str(), AtFlags::SYMLINK_NOFOLLOW).ok()?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => Some(LowerEntry::Dir(st)),
        FileType::Symlink => {
            let t = rfs::readlinkat(&fd, last.as_os_str(), Vec::new()).ok()?;
            Some(LowerEntry::Symlink(
                OsStr::from_bytes(t.as_bytes()).to_os_string(),
            ))
        }
        FileType::CharacterDevice if st.st_rdev == 0 => Some(LowerEntry::Whiteout),
        _ => Some(LowerEntry::Other),
    }
}

/// Opens the regular file at `names` in a lower layer, without following any symlink.
pub fn open_lower_file(lower: &OwnedFd, names: &[OsString]) -> Option<(OwnedFd, rfs::Stat)> {
    let (last, dirs) = names.split_last()?;
    let mut fd = dup(lower).ok()?;
    for d in dirs {
        fd = open_subdir(&fd, d).ok()?;
    }
    let file = rfs::openat(
        &fd,
        last.as_os_str(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = rfs::fstat(&file).ok()?;
    (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile).then_some((file, st))
}

/// Removes `name` in `dir`, recursively, without following symlinks; `false` when there was
/// nothing to remove.
pub fn remove_all_at(dir: &OwnedFd, name: &OsStr) -> io::Result<bool> {
    let st = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(e) if e == rustix::io::Errno::NOENT => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        rfs::unlinkat(dir, name, AtFlags::empty())?;
        return Ok(true);
    }
    let sub = open_subdir(dir, name)?;
    clear_dir(&sub, &|_| false)?;
    rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    Ok(true)
}

/// Removes every child of `dir` for which `keep` is false.
pub fn clear_dir(dir: &OwnedFd, keep: &dyn Fn(&OsStr) -> bool) -> io::Result<()> {
    for name in list_dir(dir)? {
        if !keep(&name) {
            remove_all_at(dir, &name)?;
        }
    }
    Ok(())
}

/// The names in a directory, without `.` and `..`.
pub fn list_dir(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let mut out = Vec::new();
    let mut rd = rfs::Dir::read_from(dir)?;
    while let Some(e) = rd.read() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_root_and_refuses_climbing_out() {
        assert_eq!(
            clean(Path::new("/etc/./passwd")).unwrap(),
            vec![OsString::from("etc"), OsString::from("passwd")]
        );
        assert_eq!(
            clean(Path::new("a/../b")).unwrap(),
            vec![OsString::from("b")]
        );
        assert!(clean(Path::new("./")).unwrap().is_empty());
        let err = clean(Path::new("a/../../etc/passwd")).unwrap_err();
        assert!(err.to_string().contains("a/../../etc/passwd"), "{err}");
    }
}
