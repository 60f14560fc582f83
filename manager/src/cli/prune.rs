//! `berth image prune`: remove unnamed images (all with `-a`), then every unreferenced blob
//! and stale ingest.

use anyhow::Result;
use berth::ops::images;

use super::format::human_size;
use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove all images, not just unnamed ones (no container uses images yet)
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation (berth never prompts; accepted for docker compatibility)
    #[arg(short, long)]
    force: bool,
}

pub fn run(ctx: &mut Ctx, args: Args) -> Result<()> {
    let _ = args.force;
    let pruned = images::prune(&ctx.engine, args.all)?;
    if !pruned.images_deleted.is_empty() {
        println!("Deleted Images:");
        for item in &pruned.images_deleted {
            if let Some(n) = &item.untagged {
                println!("untagged: {n}");
            }
            if let Some(d) = &item.deleted {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(pruned.space_reclaimed)
    );
    Ok(())
}
