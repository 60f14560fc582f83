//! `berth rmi` / `berth image rm`: untag, and delete blobs no image needs any more.

use anyhow::{bail, Result};

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
    let store = ctx.store()?;
    let mut failed = Vec::new();
    for what in &args.images {
        let hits = match store.lookup(what) {
            Ok(h) => h,
            Err(e) => {
                failed.push(e.to_string());
                continue;
            }
        };
        let by_name = hits.len() == 1
            || hits
                .iter()
                .all(|h| h.name.is_some() && h.reference().is_some_and(|r| r.to_string() == *what));
        if hits.len() > 1 && !args.force && !by_name {
            failed.push(format!(
                "conflict: unable to delete {what} (must be forced) - image is referenced in \
                 multiple repositories"
            ));
            continue;
        }
        let removed = store.update(|records| {
            let before = records.clone();
            records.retain(|r| !hits.contains(r));
            before
                .into_iter()
                .filter(|r| hits.contains(r))
                .collect::<Vec<_>>()
        })?;
        for r in &removed {
            match &r.name {
                Some(n) => println!("Untagged: {n}"),
                None => println!("Untagged: {}", r.digest),
            }
        }
    }
    let report = store.gc(None, false)?;
    for d in &report.deleted {
        println!("Deleted: {d}");
    }
    if !failed.is_empty() {
        // Each failure on its own line, after the images that could be removed.
        bail!("{}", failed.join("\nError: "));
    }
    Ok(())
}
