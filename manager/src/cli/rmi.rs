//! `berth rmi` / `berth image rm`: untag, and delete blobs no image needs any more.

use std::collections::HashMap;

use anyhow::{bail, Result};
use berth::container::ContainerStore;
use berth::image::{ImageRecord, ImageStore};
use berth::snapshot::Backend;
use berth::unpack::prune_snapshots;

use super::Ctx;

/// Image ID (config digest) → the short ids of the containers made from it.
pub fn container_users(root: &std::path::Path) -> Result<HashMap<String, Vec<String>>> {
    let mut users: HashMap<String, Vec<String>> = HashMap::new();
    for c in ContainerStore::open(root)?.list()? {
        users
            .entry(c.image_id.clone())
            .or_default()
            .push(c.short_id().to_string());
    }
    Ok(users)
}

/// The image ID (config digest) of a record, when its manifest is readable.
pub fn image_id(store: &ImageStore, rec: &ImageRecord) -> Option<String> {
    store.image(rec).ok().map(|i| i.id().to_string())
}

/// Removes the committed snapshots no image needs any more, in every snapshotter in use;
/// snapshots a container builds on are kept (the snapshotter refuses to remove a parent).
pub fn prune_all_snapshots(root: &std::path::Path, store: &ImageStore) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for backend in Backend::ALL {
        if !root.join("snapshots").join(backend.name()).is_dir() {
            continue;
        }
        let sn = backend.open(root)?;
        removed.extend(prune_snapshots(store, &*sn)?);
    }
    Ok(removed)
}

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
    let root = ctx.settings.root.clone();
    let users = container_users(&root)?;
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
        // docker: the last reference to an image a container uses (running or not) is only
        // untagged with -f, and the image stays (unnamed) for the container.
        let mut keep_unnamed: Vec<ImageRecord> = Vec::new();
        let records = store.records()?;
        let mut conflict = None;
        for h in &hits {
            let others = records
                .iter()
                .any(|r| r.digest == h.digest && !hits.contains(r));
            let id = image_id(store, h).unwrap_or_default();
            let Some(used_by) = users.get(&id) else {
                continue;
            };
            if others {
                continue;
            }
            if !args.force {
                conflict = Some(format!(
                    "conflict: unable to remove repository reference \"{what}\" (must force) - \
                     container {} is using its referenced image {}",
                    used_by[0],
                    &id.trim_start_matches("sha256:")[..12.min(id.len())]
                ));
                break;
            }
            if h.name.is_some() && !keep_unnamed.iter().any(|k| k.digest == h.digest) {
                let mut unnamed = h.clone();
                unnamed.name = None;
                keep_unnamed.push(unnamed);
            }
        }
        if let Some(c) = conflict {
            failed.push(c);
            continue;
        }
        let removed = store.update(|records| {
            let before = records.clone();
            records.retain(|r| !hits.contains(r));
            records.extend(keep_unnamed.iter().cloned());
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
    prune_all_snapshots(&root, store)?;
    if !failed.is_empty() {
        // Each failure on its own line, after the images that could be removed.
        bail!("{}", failed.join("\nError: "));
    }
    Ok(())
}
