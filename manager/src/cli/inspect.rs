//! `berth image inspect`: docker-shaped JSON plus the manifest berth stores.

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Images (names, IDs or digests)
    #[arg(required = true)]
    images: Vec<String>,
    /// Output format (only json)
    #[arg(short, long, default_value = "json")]
    format: String,
}

pub fn run(ctx: &mut Ctx, args: Args) -> Result<()> {
    if args.format != "json" {
        bail!(
            "flag --format: unknown format {:?} (only json)",
            args.format
        );
    }
    let mut out = Vec::new();
    for what in &args.images {
        out.push(image_value(ctx, what)?);
    }
    println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
    Ok(())
}

/// docker's `image inspect` object for one image (name, ID or digest).
pub fn image_value(ctx: &mut Ctx, what: &str) -> Result<Value> {
    let store = ctx.store()?;
    let records = store.records()?;
    {
        let hits = store.lookup(what)?;
        let rec = &hits[0];
        let info = store.image(rec)?;
        let same: Vec<_> = records.iter().filter(|r| r.digest == rec.digest).collect();
        let repo_tags: Vec<String> = same
            .iter()
            .filter_map(|r| r.reference())
            .filter(|r| r.tag().is_some())
            .map(|r| r.to_string())
            .collect();
        let mut repo_digests: Vec<String> = same
            .iter()
            .filter_map(|r| {
                let pinned = r.index_digest.as_ref().unwrap_or(&r.digest).clone();
                r.reference().map(|x| x.with_digest(pinned).to_string())
            })
            .collect();
        repo_digests.sort();
        repo_digests.dedup();
        let config = &info.config;
        Ok(json!({
            "Id": info.id().to_string(),
            "RepoTags": repo_tags,
            "RepoDigests": repo_digests,
            "Created": config.created(),
            "Author": config.author(),
            "Architecture": config.architecture().to_string(),
            "Os": config.os().to_string(),
            "Variant": config.variant(),
            "Size": info.size,
            "Config": config.config(),
            "RootFS": {
                "Type": "layers",
                "Layers": config.rootfs().diff_ids(),
            },
            "Manifest": {
                "Digest": rec.digest.to_string(),
                "MediaType": rec.media_type,
                "IndexDigest": rec.index_digest.as_ref().map(ToString::to_string),
                "Layers": info.manifest.layers(),
            },
        }))
    }
}
