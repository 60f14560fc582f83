//! `berth cp`: copies files between a container's root filesystem and the host, as a tar
//! stream like docker does. Paths inside the container are resolved in the root
//! (openat2(2) RESOLVE_IN_ROOT): a symlink in the container can never lead out of it, and
//! unpacking into the container refuses entries that would land outside (tar's checks).

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use berth::container::lifecycle::{self, is_mount_point, Paths};
use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};

use super::{ctr, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// CONTAINER:SRC_PATH or a host path (- for a tar stream on stdin)
    src: String,
    /// CONTAINER:DEST_PATH or a host path (- for a tar stream on stdout)
    dest: String,
}

/// `CONTAINER:PATH` split, or `None` for a host path (one starting with `/` or `.`, as in
/// docker, is never a container reference).
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(c, _)| !c.is_empty())
}

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
            Component::Normal(n) => Some(Ok(n.to_string_lossy().into_owned())),
            Component::ParentDir => Some(Ok("..".into())),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect::<Result<_>>()?;
    let contents_only = path.ends_with("/.") || path == ".";
    let (dir, name) = match clean.split_last() {
        Some((last, rest)) if !contents_only && last != ".." => {
            (rest.join("/"), Some(last.clone()))
        }
        _ => (clean.join("/"), None),
    };
    let root = File::open(rootfs).with_context(|| format!("opening {}", rootfs.display()))?;
    let dir = if dir.is_empty() { ".".to_string() } else { dir };
    let fd = openat2(
        &root,
        dir.as_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .with_context(|| format!("{path}: no such directory in the container"))?;
    Ok((InRoot { fd }, name))
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let root = &ctx.settings.root;
    let (container, into, host, path) = match (split(&args.src), split(&args.dest)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some((c, p)), None) => (c, false, args.dest.clone(), p.to_string()),
        (None, Some((c, p))) => (c, true, args.src.clone(), p.to_string()),
    };
    let (store, r) = ctr::find(root, container)?;
    let paths = Paths::new(root, &store, &r);
    // A stopped container's filesystem is mounted for the copy and unmounted after.
    let mounted_here = !is_mount_point(&paths.rootfs);
    if mounted_here {
        lifecycle::mount_rootfs(root, &paths, &r)?;
    }
    let result = if into {
        copy_in(&paths.rootfs, Path::new(&host), &path, args.follow_link)
    } else {
        copy_out(&paths.rootfs, &path, Path::new(&host), args.archive)
    };
    if mounted_here {
        if let Err(e) = berth::snapshot::unmount(&paths.rootfs) {
            eprintln!("Error: unmounting {}: {e}", paths.rootfs.display());
        }
    }
    result
}

/// Container → host.
fn copy_out(rootfs: &Path, path: &str, dest: &Path, archive: bool) -> Result<()> {
    let (dir, name) = open_parent(rootfs, path)?;
    let src = match &name {
        Some(n) => dir.path().join(n),
        None => dir.path(),
    };
    let meta = std::fs::symlink_metadata(&src)
        .with_context(|| format!("Could not find the file {path} in container"))?;
    let (reader, writer) = std::io::pipe().context("making a pipe")?;
    let label = name.clone().unwrap_or_else(|| ".".into());
    let producer = std::thread::spawn(move || -> Result<()> {
        let mut b = tar::Builder::new(writer);
        b.follow_symlinks(false);
        if meta.is_dir() {
            b.append_dir_all(&label, &src)?;
        } else {
            b.append_path_with_name(&src, &label)?;
        }
        b.finish()?;
        Ok(())
    });
    let result = if dest == Path::new("-") {
        std::io::copy(&mut { reader }, &mut std::io::stdout().lock())
            .map(drop)
            .context("writing the archive to stdout")
    } else {
        unpack_to_host(reader, dest, name.as_deref(), archive)
    };
    let produced = producer
        .join()
        .map_err(|_| anyhow::anyhow!("the archiving thread panicked"))?;
    result.and(produced)
}

/// Unpacks a tar whose top entry is `name` (or `.`) at `dest` with docker's rules: into an
/// existing directory it lands inside it; otherwise it becomes `dest`.
fn unpack_to_host(
    reader: impl std::io::Read,
    dest: &Path,
    name: Option<&str>,
    archive: bool,
) -> Result<()> {
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_ownerships(archive);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    let into_dir = dest.is_dir();
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty());
    if let (false, Some(p)) = (into_dir, parent) {
        if !p.is_dir() {
            bail!("{}: no such directory", p.display());
        }
    }
    for entry in ar.entries()? {
        let mut entry = entry?;
        let rel = entry.path()?.into_owned();
        let target = if into_dir {
            dest.join(&rel)
        } else {
            // Replace the top component (`name` or `.`) by `dest`.
            let mut comps = rel.components();
            let first = comps.next();
            match (first, name) {
                (Some(Component::Normal(_)), Some(_)) | (Some(Component::CurDir), _) => {
                    let rest = comps.as_path();
                    if rest.as_os_str().is_empty() {
                        dest.to_path_buf()
                    } else {
                        dest.join(rest)
                    }
                }
                _ => dest.join(&rel),
            }
        };
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
        }
        entry
            .unpack(&target)
            .with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}

/// Host → container.
fn copy_in(rootfs: &Path, src: &Path, path: &str, follow: bool) -> Result<()> {
    let (dir, name) = open_parent(rootfs, path)?;
    // The destination: an existing directory receives the source inside it; a new name
    // becomes a copy of the source.
    let (target_dir, rename) = match &name {
        Some(n) => {
            let p = dir.path().join(n);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => (open_parent(rootfs, &format!("{path}/."))?.0, None),
                _ => (dir, Some(n.clone())),
            }
        }
        None => (dir, None),
    };
    let (reader, writer) = std::io::pipe().context("making a pipe")?;
    let src = src.to_path_buf();
    let producer = std::thread::spawn(move || -> Result<()> {
        let mut b = tar::Builder::new(writer);
        b.follow_symlinks(follow);
        if src == Path::new("-") {
            // Already a tar stream: pass it through.
            let mut w = b.into_inner()?;
            std::io::copy(&mut std::io::stdin().lock(), &mut w)?;
            return Ok(());
        }
        let meta = std::fs::metadata(&src).with_context(|| format!("{}", src.display()))?;
        let base = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| ".".into());
        let label = rename.clone().unwrap_or(base);
        if meta.is_dir() {
            b.append_dir_all(&label, &src)?;
        } else {
            b.append_path_with_name(&src, &label)?;
        }
        b.finish()?;
        Ok(())
    });
    let dest = target_dir.path();
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    // `unpack` refuses entries with `..` and checks that each parent, symlinks resolved,
    // stays inside `dest`, so a symlink in the container cannot redirect the copy.
    let unpacked = ar
        .unpack(&dest)
        .with_context(|| format!("copying into the container at {path}"));
    let produced = producer
        .join()
        .map_err(|_| anyhow::anyhow!("the archiving thread panicked"))?;
    unpacked.and(produced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_references_are_split_like_docker() {
        assert_eq!(split("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(split("/tmp/a:b"), None);
        assert_eq!(split("./x:y"), None);
        assert_eq!(split("plain"), None);
        assert_eq!(split(":x"), None);
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
}
