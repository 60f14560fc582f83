//! Files in and out of a container's root filesystem as tar streams (docker's
//! `/containers/{id}/archive`, what `cp` uses). Paths inside the container are resolved in
//! the root (openat2(2) RESOLVE_IN_ROOT): a symlink in the container can never lead out of
//! it, and unpacking refuses entries that would land outside (tar's checks). A stopped
//! container's filesystem is mounted for the copy and unmounted after.

use std::fs::File;
use std::io::{PipeReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::thread::JoinHandle;

use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};

use crate::container::lifecycle::{self, is_mount_point, Paths};
use crate::container::Status;
use crate::ops::error::{OpsError, Result};
use crate::ops::Engine;

pub(crate) mod reach;
pub mod stat;
mod volumes;

/// A directory inside the container, opened in-root, reachable through /proc/self/fd.
struct InRoot {
    fd: OwnedFd,
}

impl InRoot {
    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

/// Opens the directory holding `path` (the container's view) inside `rootfs`, and returns
/// it with the final name (`None` for the root itself or a trailing `/.`).
fn open_parent(rootfs: &Path, path: &str) -> Result<(InRoot, Option<String>)> {
    let clean: Vec<String> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect();
    let contents_only = path.ends_with("/.") || path == ".";
    let (dir, name) = match clean.split_last() {
        Some((last, rest)) if !contents_only && last != ".." => {
            (rest.join("/"), Some(last.clone()))
        }
        _ => (clean.join("/"), None),
    };
    let root =
        File::open(rootfs).map_err(|e| OpsError::io(format!("opening {}", rootfs.display()), e))?;
    let dir = if dir.is_empty() { ".".to_string() } else { dir };
    let fd = openat2(
        &root,
        dir.as_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| OpsError::NoSuchDirectory {
        path: path.to_string(),
        source: e.into(),
    })?;
    Ok((InRoot { fd }, name))
}

/// The container's root filesystem, mounted for the time of a copy when it was not.
pub(super) struct Rootfs {
    pub(super) path: PathBuf,
    mounted_here: bool,
    volumes: volumes::CopyMounts,
}

impl Rootfs {
    pub(super) fn open(engine: &Engine, what: &str) -> Result<Self> {
        let (store, r) = super::find(engine, what)?;
        let paths = Paths::new(engine.root(), &store, &r);
        let mounted_here = !is_mount_point(&paths.rootfs);
        if mounted_here {
            lifecycle::mount_rootfs(engine.root(), &paths, &r)?;
        }
        Ok(Self {
            path: paths.rootfs,
            mounted_here,
            volumes: volumes::CopyMounts::default(),
        })
    }

    /// The files a copy (`cp`, `/archive`) sees: a stopped container gets its volumes and
    /// binds mounted over its root filesystem for the copy, as docker's. A running one is
    /// copied from its root filesystem as before: its volumes are mounted in its own mount
    /// namespace only (reaching them through `/proc/PID/root` would not do: the tar
    /// unpacker canonicalises its target, which turns such a path into one on the host).
    /// Rootless berth copies the root filesystem alone.
    pub(super) fn open_for_copy(engine: &Engine, what: &str) -> Result<Self> {
        let (_, r) = super::find(engine, what)?;
        let mut fs = Self::open(engine, what)?;
        let stopped = !matches!(r.state.status, Status::Running | Status::Paused);
        if fs.mounted_here && stopped && !crate::rootless::is_rootless() {
            match volumes::CopyMounts::mount(&fs.path, &r.config.mounts) {
                Ok(v) => fs.volumes = v,
                Err(e) => {
                    let also = fs.release();
                    return Err(e.with_also(also));
                }
            }
        }
        Ok(fs)
    }

    /// Unmounts what this copy mounted; what went wrong is a line for the user.
    pub(super) fn release(&mut self) -> Vec<String> {
        let mut lines = self.volumes.release();
        if !std::mem::take(&mut self.mounted_here) {
            return lines;
        }
        if let Err(e) = crate::snapshot::unmount(&self.path) {
            lines.push(format!("Error: unmounting {}: {e}", self.path.display()));
        }
        lines
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

/// Where a copy into the container lands: a directory, and the name the copied item takes
/// there (`None`: its own name).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CopyTarget {
    /// The directory, as a path in the container.
    pub dir: String,
    pub rename: Option<String>,
}

/// docker's rule for `cp SRC CONTAINER:PATH`: an existing directory receives the source
/// inside it; a new name becomes a copy of the source, except that a path ending in `/`
/// must be an existing directory for a file, and a directory never replaces a file. Also
/// returns lines about what went wrong unmounting.
pub fn copy_target(
    engine: &Engine,
    what: &str,
    path: &str,
    src_is_dir: bool,
) -> Result<(CopyTarget, Vec<String>)> {
    let mut rootfs = Rootfs::open_for_copy(engine, what)?;
    let target = match target_in(&rootfs.path, path, src_is_dir) {
        // Below a directory of another container user: decided from the user namespace.
        Err(e) if reach::denied(&e) => reach::target(&rootfs.path, path, src_is_dir),
        r => r,
    };
    let also = rootfs.release();
    Ok((target?, also))
}

/// [`copy_target`] in the tree `rootfs` (rootless berth's helper runs it too). The handles
/// into the root are closed when it returns (an open one would keep a mount busy).
pub(crate) fn target_in(rootfs: &Path, path: &str, src_is_dir: bool) -> Result<CopyTarget> {
    let (dir, name) = open_parent(rootfs, path)?;
    let target = match name {
        Some(n) => {
            let meta = match std::fs::symlink_metadata(dir.path().join(&n)) {
                Ok(m) => Some(m),
                Err(source) if source.kind() == std::io::ErrorKind::PermissionDenied => {
                    return Err(OpsError::NoSuchPath {
                        path: path.to_string(),
                        source,
                    })
                }
                Err(_) => None,
            };
            match meta {
                Some(m) if m.is_dir() => CopyTarget {
                    dir: format!("{path}/."),
                    rename: None,
                },
                None if path.ends_with('/') && !src_is_dir => {
                    return Err(OpsError::CopyDestNotDir {
                        path: path.to_string(),
                    })
                }
                Some(_) if src_is_dir => {
                    return Err(OpsError::CopyDirOverFile {
                        path: path.to_string(),
                    })
                }
                _ => CopyTarget {
                    dir: parent_of(path),
                    rename: Some(n),
                },
            }
        }
        None => CopyTarget {
            dir: path.to_string(),
            rename: None,
        },
    };
    // Checked now, so that a missing directory fails before the copy starts.
    open_parent(rootfs, &format!("{}/.", target.dir))?;
    Ok(target)
}

/// The container path of `path`'s parent directory, as `open_parent` resolves it.
fn parent_of(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) => trimmed[..i].to_string(),
        None => ".".to_string(),
    }
}

/// A tar stream of a path in the container; its top entry is [`Self::name`] (or `.`).
pub struct ArchiveReader {
    reader: PipeReader,
    producer: Option<JoinHandle<std::io::Result<()>>>,
    rootfs: Rootfs,
    name: Option<String>,
}

impl ArchiveReader {
    /// The name of the archived item (`None` for a directory's contents, `path/.`).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Waits for the archiver and unmounts what the copy mounted; returns lines about
    /// what went wrong unmounting.
    pub fn finish(mut self) -> Result<Vec<String>> {
        // Whatever the reader did not take: the archiver sees the pipe closed.
        drop(std::mem::replace(&mut self.reader, empty_reader()?));
        let produced = match self.producer.take() {
            Some(p) => p.join().map_err(|_| OpsError::Panicked {
                what: "the archiving thread",
            })?,
            None => Ok(()),
        };
        let also = self.rootfs.release();
        produced.map_err(|e| OpsError::io("archiving", e))?;
        Ok(also)
    }
}

fn empty_reader() -> Result<PipeReader> {
    let (r, _) = std::io::pipe().map_err(|e| OpsError::io("making a pipe", e))?;
    Ok(r)
}

impl Read for ArchiveReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf)
    }
}

impl Drop for ArchiveReader {
    fn drop(&mut self) {
        if let Some(p) = self.producer.take() {
            // Unblock the archiver before waiting for it.
            if let Ok(r) = empty_reader() {
                drop(std::mem::replace(&mut self.reader, r));
            }
            let _ = p.join();
        }
    }
}

/// `GET /containers/{id}/archive?path=`: `path` as a tar stream.
pub fn archive_get(engine: &Engine, what: &str, path: &str) -> Result<ArchiveReader> {
    let rootfs = Rootfs::open_for_copy(engine, what)?;
    let (reader, mut writer) = std::io::pipe().map_err(|e| OpsError::io("making a pipe", e))?;
    let found = open_parent(&rootfs.path, path).and_then(|(dir, name)| {
        let src = match &name {
            Some(n) => dir.path().join(n),
            None => dir.path(),
        };
        std::fs::symlink_metadata(&src).map_err(|source| OpsError::NoSuchPath {
            path: path.to_string(),
            source,
        })?;
        Ok(name)
    });
    let (root, wanted) = (rootfs.path.clone(), path.to_string());
    let (name, producer) = match found {
        // Owners in the user's subordinate ranges: archived from its user namespace (the
        // container's ids in the headers, every file readable), a path the user cannot
        // reach resolved there too.
        r if crate::rootless::userns::shifting() && !r.as_ref().is_err_and(not_found) => {
            let name = r.ok().unwrap_or_else(|| final_name(path));
            let producer = std::thread::spawn(move || {
                crate::rootless::userns::archive_get(&root, &wanted, &mut writer)
            });
            (name, producer)
        }
        r => {
            let name = r?;
            let producer = std::thread::spawn(move || write_archive(&root, &wanted, &mut writer));
            (name, producer)
        }
    };
    Ok(ArchiveReader {
        reader,
        producer: Some(producer),
        rootfs,
        name,
    })
}

/// Whether a lookup failed because the path is not there (rather than out of reach).
fn not_found(e: &OpsError) -> bool {
    match e {
        OpsError::NoSuchPath { source, .. } | OpsError::NoSuchDirectory { source, .. } => {
            source.kind() != std::io::ErrorKind::PermissionDenied
        }
        _ => false,
    }
}

/// The name `open_parent` gives the final element of `path`.
fn final_name(path: &str) -> Option<String> {
    if path.ends_with("/.") || path == "." {
        return None;
    }
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

/// Writes `path` of the tree `rootfs` (resolved in it) as a tar stream into `out`
/// (rootless berth's user-namespace helper runs it too).
pub(crate) fn write_archive(
    rootfs: &Path,
    path: &str,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let (dir, name) =
        open_parent(rootfs, path).map_err(|e| std::io::Error::other(e.to_string()))?;
    let src = match &name {
        Some(n) => dir.path().join(n),
        None => dir.path(),
    };
    let meta = std::fs::symlink_metadata(&src)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{path}: {e}")))?;
    let label = name.unwrap_or_else(|| ".".into());
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    if meta.is_dir() {
        b.append_dir_all(&label, &src)?;
    } else {
        b.append_path_with_name(&src, &label)?;
    }
    b.finish()
}

/// Unpacks `tar_stream` into the directory `dir` of the tree `rootfs` (resolved in it; the
/// rootless helper runs it too).
pub(crate) fn unpack_archive(
    rootfs: &Path,
    dir: &str,
    tar_stream: impl Read,
) -> std::io::Result<()> {
    let (target, _) = open_parent(rootfs, &format!("{}/.", dir.trim_end_matches("/.")))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut ar = tar::Archive::new(tar_stream);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    // `unpack` refuses entries with `..` and checks that each parent, symlinks resolved,
    // stays inside the target, so a symlink in the container cannot redirect the copy.
    ar.unpack(target.path())
}

/// `PUT /containers/{id}/archive?path=`: unpacks a tar stream into the directory `dir`
/// (which must exist); returns lines about what went wrong unmounting.
pub fn archive_put(
    engine: &Engine,
    what: &str,
    dir: &str,
    mut tar_stream: impl Read,
) -> Result<Vec<String>> {
    let mut rootfs = Rootfs::open_for_copy(engine, what)?;
    let unpacked = match open_parent(&rootfs.path, &format!("{}/.", dir.trim_end_matches("/."))) {
        // Owners in the user's subordinate ranges: unpacked in its user namespace, where
        // directories of the container's other users can be written.
        r if crate::rootless::userns::shifting() && !r.as_ref().is_err_and(not_found) => {
            drop(r);
            crate::rootless::userns::archive_put(&rootfs.path, dir, &mut tar_stream)
        }
        Err(e) => {
            let also = rootfs.release();
            return Err(e.with_also(also));
        }
        Ok(_) => unpack_archive(&rootfs.path, dir, tar_stream),
    };
    let also = rootfs.release();
    unpacked.map_err(|source| {
        OpsError::CopyIn {
            path: dir.to_string(),
            source,
        }
        .with_also(also.clone())
    })?;
    Ok(also)
}

/// `cp`'s container path split: `CONTAINER:PATH`, or `None` for a host path (one starting
/// with `/` or `.`, as in docker, is never a container reference).
pub fn split_copy_arg(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(c, _)| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_references_are_split_like_docker() {
        assert_eq!(
            split_copy_arg("web:/etc/hosts"),
            Some(("web", "/etc/hosts"))
        );
        assert_eq!(split_copy_arg("/tmp/a:b"), None);
        assert_eq!(split_copy_arg("./x:y"), None);
        assert_eq!(split_copy_arg("plain"), None);
        assert_eq!(split_copy_arg(":x"), None);
    }

    #[test]
    fn in_root_lookups_do_not_leave_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/marker"), "inside").unwrap();
        std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
        // /escape/etc resolves to the container's own /etc, not the host's.
        let (dir, name) = open_parent(&root, "/escape/etc/marker").unwrap();
        assert_eq!(name.as_deref(), Some("marker"));
        let text = std::fs::read_to_string(dir.path().join("marker")).unwrap();
        assert_eq!(text, "inside");
        let (dir, _) = open_parent(&root, "/../../etc/marker").unwrap();
        assert!(dir.path().join("marker").exists());
    }

    #[test]
    fn parents_are_the_container_paths_open_parent_resolves() {
        assert_eq!(parent_of("/etc/hosts"), "/etc");
        assert_eq!(parent_of("/hosts"), "/");
        assert_eq!(parent_of("/etc/dir/"), "/etc");
        assert_eq!(parent_of("file"), ".");
    }
}
