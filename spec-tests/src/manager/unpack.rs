//! Harness for the unpack tests: layer tarballs with every entry type, a description of a
//! directory tree (what umoci and berth must agree on), a guard that unmounts an image mount
//! even when a test fails, and OCI layouts packed as oci-archives for `berth load`.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::berth::Berth;

/// Builds a layer tarball entry by entry; every entry has mtime 1600000000 and owner 0:0
/// unless told otherwise.
pub struct LayerTar(tar::Builder<Vec<u8>>);

impl Default for LayerTar {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerTar {
    pub fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64, owner: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_600_000_000);
        h.set_uid(owner);
        h.set_gid(owner);
        h
    }

    pub fn dir(mut self, path: &str, mode: u32, owner: u64) -> Result<Self> {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0, owner);
        self.0.append_data(&mut h, path, &[][..])?;
        Ok(self)
    }

    pub fn file(mut self, path: &str, mode: u32, owner: u64, data: &[u8]) -> Result<Self> {
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64, owner);
        self.0.append_data(&mut h, path, data)?;
        Ok(self)
    }

    /// A whiteout or opaque marker (an empty file named `.wh.*`).
    pub fn marker(self, path: &str) -> Result<Self> {
        self.file(path, 0o644, 0, b"")
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Result<Self> {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0, 0);
        self.0.append_link(&mut h, path, target)?;
        Ok(self)
    }

    pub fn hardlink(mut self, path: &str, target: &str) -> Result<Self> {
        let mut h = Self::header(tar::EntryType::Link, 0o644, 0, 0);
        self.0.append_link(&mut h, path, target)?;
        Ok(self)
    }

    pub fn node(
        mut self,
        kind: tar::EntryType,
        path: &str,
        major: u32,
        minor: u32,
    ) -> Result<Self> {
        let mut h = Self::header(kind, 0o666, 0, 0);
        h.set_device_major(major)?;
        h.set_device_minor(minor)?;
        self.0.append_data(&mut h, path, &[][..])?;
        Ok(self)
    }

    /// PAX records for the next entry (e.g. `SCHILY.xattr.user.x`).
    pub fn pax(mut self, records: &[(&str, &[u8])]) -> Result<Self> {
        self.0
            .append_pax_extensions(records.iter().map(|(k, v)| (*k, *v)))?;
        Ok(self)
    }

    /// A regular file whose name is written raw, bypassing the builder's `..` checks.
    pub fn raw_file(mut self, name: &str, data: &[u8]) -> Result<Self> {
        let mut h = Self::header(tar::EntryType::Regular, 0o644, data.len() as u64, 0);
        let gnu = h.as_gnu_mut().context("gnu header")?;
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        self.0.append(&h, data)?;
        Ok(self)
    }

    pub fn finish(self) -> Result<Vec<u8>> {
        Ok(self.0.into_inner()?)
    }
}

/// What is compared about one path of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Content sha256 for files, target for symlinks, major:minor for devices.
    pub data: String,
    pub size: u64,
    /// Modification time, seconds.
    pub mtime: i64,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:o} {}:{} size={} mtime={} {} {:?}",
            self.kind, self.mode, self.uid, self.gid, self.size, self.mtime, self.data, self.xattrs
        )
    }
}

/// A directory tree as `describe` sees it.
#[derive(Debug)]
pub struct Description {
    pub nodes: BTreeMap<PathBuf, Node>,
    /// Paths sharing an inode, each group sorted.
    pub hardlinks: Vec<Vec<PathBuf>>,
}

/// Every path under `root` (relative, root itself as ""), with its attributes, plus the
/// hardlink groups (paths sharing an inode). Link counts are left out: through overlayfs a
/// file keeps the count of its lower inode even when a whiteout hides one of its names.
pub fn describe(root: &Path) -> Result<Description> {
    let mut nodes = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), Vec<PathBuf>> = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let path = root.join(&rel);
        let md = std::fs::symlink_metadata(&path)
            .with_context(|| format!("lstat {}", path.display()))?;
        let ft = md.file_type();
        let (kind, data) = if ft.is_dir() {
            for e in std::fs::read_dir(&path)? {
                stack.push(rel.join(e?.file_name()));
            }
            ("dir", String::new())
        } else if ft.is_file() {
            let bytes = std::fs::read(&path)?;
            inodes
                .entry((md.dev(), md.ino()))
                .or_default()
                .push(rel.clone());
            ("file", super::sha256(&bytes))
        } else if ft.is_symlink() {
            let t = std::fs::read_link(&path)?;
            ("symlink", t.display().to_string())
        } else if ft.is_char_device() || ft.is_block_device() {
            let dev = md.rdev();
            let kind = if ft.is_char_device() { "char" } else { "block" };
            (kind, format!("{}:{}", libc::major(dev), libc::minor(dev)))
        } else if ft.is_fifo() {
            ("fifo", String::new())
        } else {
            ("other", String::new())
        };
        nodes.insert(
            rel,
            Node {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                size: if ft.is_file() { md.len() } else { 0 },
                mtime: md.mtime(),
                data,
                xattrs: if ft.is_symlink() {
                    BTreeMap::new()
                } else {
                    xattrs(&path)?
                },
            },
        );
    }
    let mut groups: Vec<Vec<PathBuf>> = inodes
        .into_values()
        .filter(|g| g.len() > 1)
        .map(|mut g| {
            g.sort();
            g
        })
        .collect();
    groups.sort();
    Ok(Description {
        nodes,
        hardlinks: groups,
    })
}

/// user.* and security.capability xattrs (what images carry; overlayfs' own trusted.* are
/// hidden from the merged view anyway).
fn xattrs(path: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    let mut names = vec![0u8; 4096];
    // SAFETY: `c` is NUL-terminated and `names` is a writable buffer of the length passed.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        return Ok(BTreeMap::new());
    }
    let mut out = BTreeMap::new();
    for name in names[..n as usize]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
    {
        let name = String::from_utf8_lossy(name).into_owned();
        if !(name.starts_with("user.") || name == "security.capability") {
            continue;
        }
        let cname = CString::new(name.clone())?;
        let mut value = vec![0u8; 4096];
        // SAFETY: both strings are NUL-terminated; `value` is writable for its length.
        let len = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if len >= 0 {
            value.truncate(len as usize);
            out.insert(name, value);
        }
    }
    Ok(out)
}

/// Differences between two descriptions, one line each (empty when they agree).
pub fn diff(
    a_name: &str,
    a: &BTreeMap<PathBuf, Node>,
    b_name: &str,
    b: &BTreeMap<PathBuf, Node>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (p, n) in a {
        match b.get(p) {
            None => out.push(format!("{}: only in {a_name} ({n})", p.display())),
            Some(m) if m != n => out.push(format!(
                "{}:\n  {a_name}: {n}\n  {b_name}: {m}",
                p.display()
            )),
            Some(_) => {}
        }
    }
    for (p, m) in b {
        if !a.contains_key(p) {
            out.push(format!("{}: only in {b_name} ({m})", p.display()));
        }
    }
    out
}

/// `berth image mount` of an image; unmounts on drop (failed tests included).
pub struct ImageMount<'a> {
    berth: &'a Berth,
    dir: tempfile::TempDir,
    mounted: bool,
}

impl<'a> ImageMount<'a> {
    pub fn new(berth: &'a Berth, image: &str, snapshotter: &str) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("berth-mnt-").tempdir()?;
        let mut m = Self {
            berth,
            dir,
            mounted: false,
        };
        let path = m.dir.path().to_string_lossy().into_owned();
        berth.ok(&["image", "mount", "--snapshotter", snapshotter, image, &path])?;
        m.mounted = true;
        Ok(m)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn unmount(mut self) -> Result<()> {
        let path = self.dir.path().to_string_lossy().into_owned();
        self.berth.ok(&["image", "unmount", &path])?;
        self.mounted = false;
        Ok(())
    }
}

impl Drop for ImageMount<'_> {
    fn drop(&mut self) {
        if self.mounted {
            let path = self.dir.path().to_string_lossy().into_owned();
            if self.berth.ok(&["image", "unmount", &path]).is_err() {
                let _ = nix::mount::umount2(self.dir.path(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

/// Packs an OCI image layout directory as an oci-archive tarball.
pub fn oci_archive(layout: &Path, out: &Path) -> Result<()> {
    let file = std::fs::File::create(out)?;
    let mut b = tar::Builder::new(file);
    b.append_dir_all(".", layout)?;
    b.into_inner()?;
    Ok(())
}
