//! `berth image prune`: remove unnamed images (all with `-a`), then every unreferenced blob
//! and stale ingest.

use anyhow::Result;

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
    let root = ctx.settings.root.clone();
    // Images a container (running or not) was made from are never pruned, as docker.
    let users = super::rmi::container_users(&root)?;
    let store = ctx.store()?;
    let in_use: Vec<_> = store
        .records()?
        .into_iter()
        .filter(|r| super::rmi::image_id(store, r).is_some_and(|id| users.contains_key(&id)))
        .collect();
    let removed = store.update(|records| {
        let (gone, kept): (Vec<_>, Vec<_>) = records
            .drain(..)
            .partition(|r| (args.all || r.name.is_none()) && !in_use.contains(r));
        *records = kept;
        gone
    })?;
    let report = store.gc(None, true)?;
    super::rmi::prune_all_snapshots(&root, store)?;
    if !removed.is_empty() || !report.deleted.is_empty() {
        println!("Deleted Images:");
        for r in &removed {
            println!(
                "untagged: {}",
                r.name.as_deref().unwrap_or(r.digest.as_ref())
            );
        }
        for d in &report.deleted {
            println!("deleted: {d}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(report.reclaimed));
    Ok(())
}
