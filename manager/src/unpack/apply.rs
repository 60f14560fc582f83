//! The tar walk: each entry's parent is opened in-root (`tree`), then the entry is made with
//! a `*at` call relative to that directory and never through a path that could be redirected.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::image::Digest;
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use tar::EntryType;

use super::tree::{self, clean, join, Missing, Tree};
use super::{Target, UnpackError, Whiteouts};

/// The marker prefix of image-spec layer.md whiteouts, and the opaque-directory marker.
const WH_PREFIX: &str = ".wh.";
const WH_OPAQUE: &str = ".wh..wh..opq";
/// What overlayfs reads as an opaque directory (overlayfs.rst, "whiteouts and opaque
/// directories").
const OVERLAY_OPAQUE: &str = "trusted.overlay.opaque";

/// What one applied layer produced.
#[derive(Debug, Clone)]
pub struct Applied {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Entries processed, whiteouts included.
    pub entries: u64,
    /// The layer's size as docker reports it: bytes of regular files and symlink targets,
    /// each hardlinked file once (directories count nothing).
    pub bytes: u64,
}

/// Attributes of one entry, PAX records applied over the ustar header.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// What one tar entry adds to a layer's size ([`Applied::bytes`]): a hardlink's entry carries
/// no data, so a file linked several times counts once.
pub(super) fn entry_bytes<R: Read>(entry: &tar::Entry<'_, R>) -> u64 {
    match entry.header().entry_type() {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => entry.size(),
        EntryType::Symlink => entry.link_name_bytes().map_or(0, |l| l.len() as u64),
        _ => 0,
    }
}

/// Applies a tar stream; returns (entries, bytes) as [`Applied`] counts them.
pub(super) fn apply_tar<R: Read>(stream: R, target: &Target) -> Result<(u64, u64), UnpackError> {
    let open = |p: &Path| {
        Tree::open(p).map_err(|source| UnpackError::OpenTarget {
            path: p.to_path_buf(),
            source,
        })
    };
    let mut applier = Applier {
        tree: open(&target.dir)?,
        lowers: match target.whiteouts {
            Whiteouts::Overlay => target
                .lowers
                .iter()
                .map(|p| open(p))
                .collect::<Result<_, _>>()?,
            Whiteouts::Delete => Vec::new(),
        },
        previous: target
            .lowers
            .iter()
            .map(|p| open(p))
            .collect::<Result<_, _>>()?,
        whiteouts: target.whiteouts,
        created: HashSet::new(),
        dirs: Vec::new(),
        touched: HashSet::new(),
        last_parent: None,
        root: rustix::process::geteuid().is_root(),
    };
    let mut archive = tar::Archive::new(stream);
    let mut count = 0;
    let mut bytes = 0;
    for entry in archive
        .entries()
        .map_err(|source| UnpackError::Read { source })?
    {
        let entry = entry.map_err(|source| UnpackError::Read { source })?;
        bytes += entry_bytes(&entry);
        applier.entry(entry)?;
        count += 1;
    }
    applier.finish_dirs();
    Ok((count, bytes))
}

struct Applier {
    tree: Tree,
    /// Overlay: the layers below, for paths the stream does not carry.
    lowers: Vec<Tree>,
    /// Both backends: the layers below, for the mtimes of directories changed but not named.
    previous: Vec<Tree>,
    whiteouts: Whiteouts,
    /// Cleaned paths this layer wrote: whiteouts and opaque markers only hide lower layers.
    created: HashSet<PathBuf>,
    /// Directory mtimes, set last because creating children changes them.
    dirs: Vec<(Vec<OsString>, Timespec)>,
    /// Resolved parent directories of every entry: their mtimes are put back at the end.
    touched: HashSet<Vec<OsString>>,
    /// The previous entry's parent (names as in the stream, the open directory, its resolved
    /// names): tar streams list a directory's entries together, so most lookups hit it. It is
    /// dropped whenever anything is removed, which could change how a path resolves.
    last_parent: Option<(Vec<OsString>, OwnedFd, Vec<OsString>)>,
    root: bool,
}

impl Applier {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let path = entry
            .path()
            .map_err(|source| UnpackError::Read { source })?
            .into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            return Ok(());
        }
        let io_err = |source: io::Error| UnpackError::Entry {
            entry: path.clone(),
            source,
        };
        let meta = read_meta(&mut entry).map_err(io_err)?;
        let names = clean(&path)?;
        let Some((last, parent)) = names.split_last() else {
            // `./` itself: the root directory's attributes.
            if kind.is_dir() {
                let fd = self.tree.root_fd().try_clone().map_err(io_err)?;
                self.set_fd_meta(&fd, &meta).map_err(io_err)?;
                self.dirs.push((Vec::new(), meta.mtime));
            }
            return Ok(());
        };
        let bytes = last.as_bytes();
        if bytes.starts_with(WH_PREFIX.as_bytes()) {
            return self.whiteout(&path, parent, last);
        }
        let lowers = &self.lowers;
        let lookup = |n: &[OsString]| tree::lookup_lowers(lowers, n);
        let (dir, resolved) = match &self.last_parent {
            Some((names, fd, resolved)) if names.as_slice() == parent => {
                (fd.try_clone().map_err(io_err)?, resolved.clone())
            }
            _ => {
                let (fd, resolved) =
                    self.tree
                        .open_dir(parent, &Missing::Create(&lookup), &path)?;
                self.touched.insert(resolved.clone());
                let cached = fd.try_clone().map_err(io_err)?;
                self.last_parent = Some((parent.to_vec(), cached, resolved.clone()));
                (fd, resolved)
            }
        };
        match kind {
            EntryType::Directory => {
                // A directory made where this layer put a whiteout replaces the lower one
                // instead of merging with it: overlayfs must see it opaque.
                let over_whiteout = self.whiteouts == Whiteouts::Overlay
                    && rfs::statat(&dir, last, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
                        FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
                            && st.st_rdev == 0
                    });
                let (fd, replaced) = make_or_keep_dir(&dir, last).map_err(io_err)?;
                self.forget_if(replaced);
                if over_whiteout {
                    rfs::fsetxattr(&fd, OVERLAY_OPAQUE, b"y", XattrFlags::empty())
                        .map_err(|e| io_err(e.into()))?;
                }
                self.set_fd_meta(&fd, &meta).map_err(io_err)?;
                let mut at = resolved;
                at.push(last.clone());
                self.dirs.push((at, meta.mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let replaced = replace(&dir, last).map_err(io_err)?;
                self.forget_if(replaced);
                let fd = rfs::openat(
                    &dir,
                    last,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| io_err(e.into()))?;
                let mut file = std::fs::File::from(fd);
                io::copy(&mut entry, &mut file).map_err(io_err)?;
                let fd = OwnedFd::from(file);
                self.set_fd_meta(&fd, &meta).map_err(io_err)?;
                rfs::futimens(&fd, &times(meta.mtime)).map_err(|e| io_err(e.into()))?;
            }
            EntryType::Symlink => {
                let target = link_name(&entry).map_err(io_err)?;
                let replaced = replace(&dir, last).map_err(io_err)?;
                self.forget_if(replaced);
                rfs::symlinkat(&target, &dir, last).map_err(|e| io_err(e.into()))?;
                self.set_at_meta(&dir, last, &meta, false).map_err(io_err)?;
            }
            EntryType::Link => {
                let target = link_name(&entry).map_err(io_err)?;
                self.hardlink(&path, &dir, last, &target)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (ft, dev) = match kind {
                    EntryType::Char => (FileType::CharacterDevice, device(&entry).map_err(io_err)?),
                    EntryType::Block => (FileType::BlockDevice, device(&entry).map_err(io_err)?),
                    _ => (FileType::Fifo, 0),
                };
                let replaced = replace(&dir, last).map_err(io_err)?;
                self.forget_if(replaced);
                rfs::mknodat(&dir, last, ft, Mode::from_raw_mode(meta.mode), dev)
                    .map_err(|e| io_err(e.into()))?;
                self.set_at_meta(&dir, last, &meta, true).map_err(io_err)?;
            }
            other => {
                return Err(UnpackError::Unsupported {
                    entry: path.clone(),
                    kind: other.as_byte(),
                })
            }
        }
        self.created.insert(join(&names));
        Ok(())
    }

    fn hardlink(
        &mut self,
        entry: &Path,
        dir: &OwnedFd,
        name: &OsStr,
        target: &Path,
    ) -> Result<(), UnpackError> {
        let link_err = |source: io::Error| UnpackError::LinkTarget {
            entry: entry.to_path_buf(),
            target: target.to_path_buf(),
            source,
        };
        let names = clean(target).map_err(|_| UnpackError::LinkEscape {
            entry: entry.to_path_buf(),
            target: target.to_path_buf(),
        })?;
        let Some((tlast, tparent)) = names.split_last() else {
            return Err(link_err(io::ErrorKind::InvalidInput.into()));
        };
        let lowers = &self.lowers;
        let lookup = |n: &[OsString]| tree::lookup_lowers(lowers, n);
        let missing = match self.whiteouts {
            Whiteouts::Overlay => Missing::Create(&lookup),
            Whiteouts::Delete => Missing::Fail,
        };
        let (tdir, mut tnames) = match self.tree.open_dir(tparent, &missing, entry) {
            Ok(d) => d,
            Err(UnpackError::Entry { source, .. }) => return Err(link_err(source)),
            Err(e) => return Err(e),
        };
        self.touched.insert(tnames.clone());
        tnames.push(tlast.clone());
        let st = match rfs::statat(&tdir, tlast, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // The target is in a lower layer: copy it up (as overlayfs does before link(2))
            // so that both names are one inode in this layer.
            Err(e) if e == rustix::io::Errno::NOENT && !self.lowers.is_empty() => {
                self.copy_up(&tdir, tlast, &tnames).map_err(link_err)?;
                rfs::statat(&tdir, tlast, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| link_err(e.into()))?
            }
            Err(e) => return Err(link_err(e.into())),
        };
        if let Ok(cur) = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            if cur.st_ino == st.st_ino && cur.st_dev == st.st_dev {
                return Ok(());
            }
        }
        let io_err = |source: io::Error| UnpackError::Entry {
            entry: entry.to_path_buf(),
            source,
        };
        let replaced = replace(dir, name).map_err(io_err)?;
        self.forget_if(replaced);
        // linkat(2) without AT_SYMLINK_FOLLOW links a symlink itself, as tar means it.
        rfs::linkat(&tdir, tlast, dir, name, AtFlags::empty()).map_err(|e| io_err(e.into()))?;
        Ok(())
    }

    fn whiteout(
        &mut self,
        entry: &Path,
        parent: &[OsString],
        marker: &OsStr,
    ) -> Result<(), UnpackError> {
        let io_err = |source: io::Error| UnpackError::Entry {
            entry: entry.to_path_buf(),
            source,
        };
        self.last_parent = None;
        let marker = marker.as_bytes();
        // `.wh.`, `.wh..` and `.wh...` would name the directory itself or its parent.
        if matches!(&marker[WH_PREFIX.len()..], b"" | b"." | b"..") {
            return Err(UnpackError::BadWhiteout {
                entry: entry.to_path_buf(),
            });
        }
        if marker != WH_OPAQUE.as_bytes() && marker.starts_with(b".wh..wh.") {
            // aufs bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): not part of the image.
            return Ok(());
        }
        let (dir, resolved) = match self.whiteouts {
            Whiteouts::Delete => match self.tree.open_dir(parent, &Missing::Fail, entry) {
                Ok(d) => d,
                // Nothing below to hide.
                Err(UnpackError::Entry { source, .. })
                    if source.kind() == io::ErrorKind::NotFound =>
                {
                    return Ok(())
                }
                Err(e) => return Err(e),
            },
            Whiteouts::Overlay => {
                let lowers = &self.lowers;
                let lookup = |n: &[OsString]| tree::lookup_lowers(lowers, n);
                self.tree
                    .open_dir(parent, &Missing::Create(&lookup), entry)?
            }
        };
        self.touched.insert(resolved);
        let parent_path = join(parent);
        if marker == WH_OPAQUE.as_bytes() {
            match self.whiteouts {
                Whiteouts::Delete => self.clear_lower(&dir, &parent_path).map_err(io_err)?,
                Whiteouts::Overlay => {
                    rfs::fsetxattr(&dir, OVERLAY_OPAQUE, b"y", XattrFlags::empty())
                        .map_err(|e| io_err(e.into()))?
                }
            }
            return Ok(());
        }
        let name = OsStr::from_bytes(&marker[WH_PREFIX.len()..]);
        if self.created.contains(&parent_path.join(name)) {
            return Ok(());
        }
        match self.whiteouts {
            Whiteouts::Delete => {
                tree::remove_all_at(&dir, name).map_err(io_err)?;
            }
            Whiteouts::Overlay => {
                tree::remove_all_at(&dir, name).map_err(io_err)?;
                rfs::mknodat(&dir, name, FileType::CharacterDevice, Mode::empty(), 0)
                    .map_err(|e| io_err(e.into()))?;
            }
        }
        Ok(())
    }

    fn forget_if(&mut self, removed: bool) {
        if removed {
            self.last_parent = None;
        }
    }

    /// Copies the regular file `names` of the topmost lower layer that has it into `dir`.
    fn copy_up(&self, dir: &OwnedFd, name: &OsStr, names: &[OsString]) -> io::Result<()> {
        if !matches!(
            tree::lookup_lowers(&self.lowers, names),
            Some(tree::LowerEntry::Other)
        ) {
            return Err(io::ErrorKind::NotFound.into());
        }
        let (src, st) = self
            .lowers
            .iter()
            .find_map(|l| tree::open_lower_file(l.root_fd(), names))
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let dst = rfs::openat(
            dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        let mut dst = std::fs::File::from(dst);
        io::copy(&mut std::fs::File::from(src.try_clone()?), &mut dst)?;
        let dst = OwnedFd::from(dst);
        let mut xattrs = Vec::new();
        let mut names_buf = vec![0u8; 65536];
        let n = rfs::flistxattr(&src, &mut names_buf[..]).unwrap_or(0);
        let mut value = vec![0u8; 65536];
        for x in names_buf[..n].split(|b| *b == 0).filter(|x| !x.is_empty()) {
            let x = String::from_utf8_lossy(x).into_owned();
            if wanted_xattr(&x) {
                let len = rfs::fgetxattr(&src, x.as_str(), &mut value[..])?;
                xattrs.push((x, value[..len].to_vec()));
            }
        }
        let meta = Meta {
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            mtime: stat_mtime(&st),
            xattrs,
        };
        self.set_fd_meta(&dst, &meta)?;
        rfs::futimens(&dst, &times(meta.mtime))?;
        Ok(())
    }

    /// Removes, under an opaque directory, everything this layer did not write.
    fn clear_lower(&self, dir: &OwnedFd, at: &Path) -> io::Result<()> {
        for name in tree::list_dir(dir)? {
            let path = at.join(&name);
            if !self.created.contains(&path) {
                tree::remove_all_at(dir, &name)?;
                continue;
            }
            let st = rfs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                let sub = rfs::openat(
                    dir,
                    &name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                self.clear_lower(&sub, &path)?;
            }
        }
        Ok(())
    }

    /// Owner before mode: chown(2) clears the setuid and setgid bits.
    fn set_fd_meta(&self, fd: &OwnedFd, meta: &Meta) -> io::Result<()> {
        self.chown_result(rfs::fchown(fd, Some(uid(meta.uid)), Some(gid(meta.gid))))?;
        rfs::fchmod(fd, Mode::from_raw_mode(meta.mode))?;
        for (k, v) in &meta.xattrs {
            xattr_result(rfs::fsetxattr(fd, k.as_str(), v, XattrFlags::empty()))?;
        }
        Ok(())
    }

    /// For entries that cannot be opened for writing (symlinks, devices, fifos).
    fn set_at_meta(&self, dir: &OwnedFd, name: &OsStr, meta: &Meta, chmod: bool) -> io::Result<()> {
        self.chown_result(rfs::chownat(
            dir,
            name,
            Some(uid(meta.uid)),
            Some(gid(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        ))?;
        if chmod {
            // fchmodat(2) follows symlinks, but this name was just made by mknodat.
            rfs::chmodat(dir, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())?;
            if !meta.xattrs.is_empty() {
                // Opening a device or fifo could block or have side effects; an O_PATH
                // descriptor reached through /proc (proc(5), /proc/pid/fd) names the inode.
                let fd = rfs::openat(
                    dir,
                    name,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
                for (k, v) in &meta.xattrs {
                    xattr_result(rfs::setxattr(
                        proc.as_str(),
                        k.as_str(),
                        v,
                        XattrFlags::empty(),
                    ))?;
                }
            }
        }
        rfs::utimensat(dir, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }

    /// Ownership is best effort only without root (a rootless store cannot chown).
    fn chown_result(&self, r: rustix::io::Result<()>) -> io::Result<()> {
        match r {
            Err(e) if e == rustix::io::Errno::PERM && !self.root => Ok(()),
            r => Ok(r?),
        }
    }

    /// Directory mtimes. Those the layer names get the header's; those it only changed keep
    /// the mtime they have below (as umoci does), so that a rootfs does not depend on when it
    /// was unpacked. A directory removed later is skipped; all of it is best effort.
    fn finish_dirs(&mut self) {
        let named: HashSet<&Vec<OsString>> = self.dirs.iter().map(|(n, _)| n).collect();
        let mut changed: HashSet<&[OsString]> = HashSet::new();
        for t in &self.touched {
            for i in 0..=t.len() {
                changed.insert(&t[..i]);
            }
        }
        for names in changed {
            if named.contains(&names.to_vec()) {
                continue;
            }
            let Some(mtime) = lower_mtime(&self.previous, names) else {
                continue;
            };
            if let Ok((fd, _)) = self.tree.open_dir(names, &Missing::Fail, Path::new("")) {
                let _ = rfs::futimens(&fd, &times(mtime));
            }
        }
        for (names, mtime) in self.dirs.drain(..).rev() {
            let Ok((fd, _)) = self.tree.open_dir(&names, &Missing::Fail, Path::new("")) else {
                continue;
            };
            // Best effort: an mtime is not worth failing a layer for.
            let _ = rfs::futimens(&fd, &times(mtime));
        }
    }
}

/// Keeps an existing directory (directories merge, image-spec layer.md "changesets"), else
/// replaces whatever is there with a new one.
/// Returns the directory and whether something else was removed to make room for it.
fn make_or_keep_dir(dir: &OwnedFd, name: &OsStr) -> io::Result<(OwnedFd, bool)> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let replaced = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => false,
        Ok(_) => {
            rfs::unlinkat(dir, name, AtFlags::empty())?;
            rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700))?;
            true
        }
        Err(e) if e == rustix::io::Errno::NOENT => {
            rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700))?;
            false
        }
        Err(e) => return Err(e.into()),
    };
    Ok((rfs::openat(dir, name, flags, Mode::empty())?, replaced))
}

/// Removes whatever `name` is so that a non-directory entry can take its place; `true` when
/// there was something.
fn replace(dir: &OwnedFd, name: &OsStr) -> io::Result<bool> {
    tree::remove_all_at(dir, name)
}

/// Only user.* and security.* (file capabilities) travel with images; trusted.* would let a
/// layer forge overlayfs metadata, system.* and security.selinux belong to the host.
fn wanted_xattr(name: &str) -> bool {
    (name.starts_with("user.") || name.starts_with("security.")) && name != "security.selinux"
}

/// Attributes the filesystem refuses (no xattr support, a name the LSM rejects) are skipped.
fn xattr_result(r: rustix::io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e == rustix::io::Errno::NOTSUP || e == rustix::io::Errno::PERM => Ok(()),
        r => Ok(r?),
    }
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
    let h = entry.header();
    let mut meta = Meta {
        mode: h.mode()? & 0o7777,
        uid: h.uid()? as u32,
        gid: h.gid()? as u32,
        mtime: Timespec {
            tv_sec: h.mtime()? as i64,
            tv_nsec: 0,
        },
        xattrs: Vec::new(),
    };
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            let num = || std::str::from_utf8(value).ok();
            match key {
                "uid" => meta.uid = num().and_then(|v| v.parse().ok()).unwrap_or(meta.uid),
                "gid" => meta.gid = num().and_then(|v| v.parse().ok()).unwrap_or(meta.gid),
                "mtime" => {
                    if let Some(t) = num().and_then(parse_pax_time) {
                        meta.mtime = t;
                    }
                }
                _ => {
                    if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                        if wanted_xattr(name) {
                            meta.xattrs.push((name.to_string(), value.to_vec()));
                        }
                    }
                }
            }
        }
    }
    Ok(meta)
}

/// PAX times are decimal seconds with an optional fraction (POSIX pax, "mtime").
fn parse_pax_time(s: &str) -> Option<Timespec> {
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let tv_sec = sec.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let tv_nsec = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some(Timespec { tv_sec, tv_nsec })
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>) -> io::Result<PathBuf> {
    entry
        .link_name()?
        .map(|p| p.into_owned())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "link entry without a target"))
}

fn device<R: Read>(entry: &tar::Entry<'_, R>) -> io::Result<u64> {
    let h = entry.header();
    let major = h.device_major()?.unwrap_or(0);
    let minor = h.device_minor()?.unwrap_or(0);
    Ok(rfs::makedev(major, minor))
}

/// The mtime of directory `names` in the layers below, if it is a directory there.
fn lower_mtime(lowers: &[Tree], names: &[OsString]) -> Option<Timespec> {
    let st = if names.is_empty() {
        rfs::fstat(lowers.first()?.root_fd()).ok()?
    } else {
        match tree::lookup_lowers(lowers, names)? {
            tree::LowerEntry::Dir(st) => st,
            _ => return None,
        }
    };
    Some(stat_mtime(&st))
}

/// stat's time fields are `long`s: i64 here, i32 on 32-bit targets.
#[allow(clippy::unnecessary_cast)]
fn stat_mtime(st: &rfs::Stat) -> Timespec {
    Timespec {
        tv_sec: st.st_mtime as i64,
        tv_nsec: st.st_mtime_nsec as i64,
    }
}

fn times(t: Timespec) -> Timestamps {
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn uid(n: u32) -> rfs::Uid {
    rfs::Uid::from_raw(n)
}

fn gid(n: u32) -> rfs::Gid {
    rfs::Gid::from_raw(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times_keep_their_fraction() {
        let t = parse_pax_time("1700000000.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 250_000_000));
        assert_eq!(parse_pax_time("12").unwrap().tv_nsec, 0);
        assert!(parse_pax_time("x").is_none());
    }

    #[test]
    fn only_portable_xattrs_are_applied() {
        assert!(wanted_xattr("user.x"));
        assert!(wanted_xattr("security.capability"));
        assert!(!wanted_xattr("trusted.overlay.opaque"));
        assert!(!wanted_xattr("security.selinux"));
    }
}
