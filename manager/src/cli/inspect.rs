//! `berth image inspect`: docker-shaped JSON plus the manifest berth stores.

use anyhow::{bail, Result};
use berth::ops::images;
use serde_json::Value;

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
        out.push(serde_json::to_value(images::inspect(&ctx.engine, what)?)?);
    }
    println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
    Ok(())
}
