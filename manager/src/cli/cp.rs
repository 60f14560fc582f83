//! `berth cp`: copies files between a container's root filesystem and the host as a tar
//! stream, like docker: the host side (building or unpacking the tar with docker's naming
//! rules) is here; the container side, resolved safely in its root, is the operation's.

use std::path::{Component, Path};

use anyhow::{bail, Context, Result};
use berth::ops::containers::{self, split_copy_arg};
use berth::ops::OpsError;

use super::Ctx;

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

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let (container, into, host, path) =
        match (split_copy_arg(&args.src), split_copy_arg(&args.dest)) {
            (Some(_), Some(_)) => return Err(OpsError::CopyBetweenContainers.into()),
            (None, None) => return Err(OpsError::CopyWithoutContainer.into()),
            (Some((c, p)), None) => (c, false, args.dest.clone(), p.to_string()),
            (None, Some((c, p))) => (c, true, args.src.clone(), p.to_string()),
        };
    let also = if into {
        copy_in(ctx, container, Path::new(&host), &path, args.follow_link)?
    } else {
        copy_out(ctx, container, &path, Path::new(&host), args.archive)?
    };
    for line in also {
        eprintln!("{line}");
    }
    Ok(())
}

/// Container → host.
fn copy_out(
    ctx: &Ctx,
    container: &str,
    path: &str,
    dest: &Path,
    archive: bool,
) -> Result<Vec<String>> {
    let mut reader = containers::archive_get(&ctx.engine, container, path)?;
    let name = reader.name().map(str::to_string);
    let result = if dest == Path::new("-") {
        std::io::copy(&mut reader, &mut std::io::stdout().lock())
            .map(drop)
            .context("writing the archive to stdout")
    } else {
        unpack_to_host(&mut reader, dest, name.as_deref(), archive)
    };
    let finished = reader.finish();
    result?;
    Ok(finished?)
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

/// Host → container: a tar of the host path, named as docker's rules say, unpacked in the
/// container.
fn copy_in(
    ctx: &Ctx,
    container: &str,
    src: &Path,
    path: &str,
    follow: bool,
) -> Result<Vec<String>> {
    // `-` is a tar stream of whatever it holds: docker treats it as a directory's content.
    let src_is_dir = src == Path::new("-")
        || if follow {
            std::fs::metadata(src)
        } else {
            std::fs::symlink_metadata(src)
        }
        .with_context(|| format!("{}", src.display()))?
        .is_dir();
    let (target, mut also) = containers::copy_target(&ctx.engine, container, path, src_is_dir)?;
    let (reader, writer) = std::io::pipe().context("making a pipe")?;
    let src = src.to_path_buf();
    let rename = target.rename.clone();
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
        let label = rename.unwrap_or(base);
        if meta.is_dir() {
            b.append_dir_all(&label, &src)?;
        } else {
            b.append_path_with_name(&src, &label)?;
        }
        b.finish()?;
        Ok(())
    });
    let unpacked = containers::archive_put(&ctx.engine, container, &target.dir, reader);
    let produced = producer
        .join()
        .map_err(|_| anyhow::anyhow!("the archiving thread panicked"))?;
    also.extend(unpacked?);
    produced?;
    Ok(also)
}
