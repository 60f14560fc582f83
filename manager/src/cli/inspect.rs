//! `berth image inspect`: docker-shaped JSON plus the manifest berth stores.

use anyhow::Result;
use berth::ops::images;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Images (names, IDs or digests)
    #[arg(required = true)]
    images: Vec<String>,
    /// Format output with a Go template (default: a JSON array)
    #[arg(short, long)]
    format: Option<String>,
}

pub fn run(ctx: &mut Ctx, args: Args) -> Result<()> {
    let mut out = Vec::new();
    let mut failed = false;
    for what in &args.images {
        match images::inspect(&ctx.engine, what) {
            Ok(i) => out.push(serde_json::to_value(i)?),
            Err(e) => {
                super::report(&e.into());
                failed = true;
            }
        }
    }
    super::container::print_values(&out, args.format.as_deref())?;
    if failed {
        return Err(super::Exit::silent(1).into());
    }
    Ok(())
}
