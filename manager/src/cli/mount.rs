//! `berth image mount IMAGE DIR` / `berth image unmount DIR`: an image's root filesystem,
//! unpacked into snapshots and mounted read-only on a directory the caller chooses (like
//! `podman image mount`, which picks the directory itself).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use berth::snapshot::{mount_all, unmount, Backend, SnapshotError};
use berth::unpack::unpack_image;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct MountArgs {
    /// Image name or ID
    image: String,
    /// Directory to mount the image's root filesystem on
    dir: PathBuf,
    /// Snapshotter: overlay or copy (default: overlay when the kernel has it)
    #[arg(long, env = "BERTH_SNAPSHOTTER")]
    snapshotter: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct UnmountArgs {
    /// Directory an image is mounted on
    dir: PathBuf,
}

/// The view snapshot that holds a mount's layers in use, named after the mount point.
fn view_key(dir: &Path) -> String {
    let hash = berth::content::sha256_of(dir.as_os_str().as_encoded_bytes());
    format!("mount-{}", hash.digest())
}

pub fn mount(ctx: &mut Ctx, args: MountArgs) -> Result<()> {
    let backend = match &args.snapshotter {
        Some(s) => s.parse::<Backend>()?,
        None => Backend::detect(),
    };
    let dir = std::fs::canonicalize(&args.dir)
        .with_context(|| format!("mount point {}", args.dir.display()))?;
    let root = ctx.settings.root.clone();
    let store = ctx.store()?;
    let hits = store.lookup(&args.image)?;
    let first = &hits[0];
    if hits.iter().any(|h| h.digest != first.digest) {
        bail!("{} is ambiguous: it matches several images", args.image);
    }
    let info = store.image(first)?;
    let sn = backend.open(&root)?;
    let top = unpack_image(store, &info, &args.image, &*sn)?
        .ok_or_else(|| anyhow!("image {} has no layers to mount", args.image))?;
    let key = view_key(&dir);
    let mounts = match sn.view(&key, top.as_ref()) {
        Err(SnapshotError::AlreadyExists { .. }) => bail!(
            "{} already has an image mounted: run `berth image unmount {}` first",
            dir.display(),
            dir.display()
        ),
        r => r?,
    };
    if let Err(e) = mount_all(&mounts, &dir) {
        if let Err(cleanup) = sn.remove(&key) {
            return Err(anyhow!(e).context(format!("removing view {key} also failed: {cleanup}")));
        }
        return Err(e.into());
    }
    println!("{}", dir.display());
    Ok(())
}

pub fn unmount_cmd(ctx: &mut Ctx, args: UnmountArgs) -> Result<()> {
    let dir = std::fs::canonicalize(&args.dir)
        .with_context(|| format!("mount point {}", args.dir.display()))?;
    unmount(&dir)?;
    let key = view_key(&dir);
    for backend in Backend::ALL {
        match backend.open(&ctx.settings.root)?.remove(&key) {
            Ok(()) => return Ok(()),
            Err(SnapshotError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
