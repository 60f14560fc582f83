//! `berth image mount IMAGE DIR` / `berth image unmount DIR`: an image's root filesystem,
//! unpacked into snapshots and mounted read-only on a directory the caller chooses (like
//! `podman image mount`, which picks the directory itself).

use std::path::PathBuf;

use anyhow::Result;
use berth::ops::images;

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

pub fn mount(ctx: &mut Ctx, args: MountArgs) -> Result<()> {
    let dir = images::mount(
        &ctx.engine,
        &args.image,
        &args.dir,
        args.snapshotter.as_deref(),
    )?;
    println!("{}", dir.display());
    Ok(())
}

pub fn unmount_cmd(ctx: &mut Ctx, args: UnmountArgs) -> Result<()> {
    Ok(images::unmount_image(&ctx.engine, &args.dir)?)
}
