//! `berth rmi` / `berth image rm`: untag, and delete blobs no image needs any more.

use anyhow::{bail, Result};
use berth::ops::images;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Images (names, IDs or digests)
    #[arg(required = true)]
    images: Vec<String>,
    /// Remove every name of an image given by ID
    #[arg(short, long)]
    force: bool,
}

pub fn run(ctx: &mut Ctx, args: Args) -> Result<()> {
    let report = images::remove(&ctx.engine, &args.images, args.force)?;
    for item in &report.items {
        if let Some(n) = &item.untagged {
            println!("Untagged: {n}");
        }
        if let Some(d) = &item.deleted {
            println!("Deleted: {d}");
        }
    }
    if !report.errors.is_empty() {
        // Each failure on its own line, after the images that could be removed.
        let lines: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        bail!("{}", lines.join("\nError: "));
    }
    Ok(())
}
