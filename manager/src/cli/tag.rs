//! `berth tag`.

use anyhow::{bail, Result};
use berth::image::ImageRecord;
use berth::reference::Reference;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// SOURCE_IMAGE[:TAG] or image ID
    source: String,
    /// TARGET_IMAGE[:TAG]
    target: String,
}

pub fn run(ctx: &mut Ctx, args: Args) -> Result<()> {
    let target = Reference::parse(&args.target)?;
    if target.digest().is_some() {
        bail!(
            "refusing to create a tag with a digest reference: {}",
            args.target
        );
    }
    let store = ctx.store()?;
    let hits = store.lookup(&args.source)?;
    let first = &hits[0];
    if hits.iter().any(|h| h.digest != first.digest) {
        bail!("{} is ambiguous: it matches several images", args.source);
    }
    let mut record = ImageRecord::new(Some(&target), first.digest.clone(), &first.media_type);
    record.index_digest = first.index_digest.clone();
    store.put(record)?;
    Ok(())
}
