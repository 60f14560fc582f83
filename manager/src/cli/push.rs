//! `berth push`.

use anyhow::Result;
use berth::ops::images;
use berth::ops::Cancel;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image reference: NAME[:TAG]
    name: String,
    /// Push all tags of the repository
    #[arg(short = 'a', long)]
    all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<()> {
    let progress = super::progress_for(args.quiet);
    let pushed = images::push(
        &ctx.engine,
        &args.name,
        args.all_tags,
        &progress,
        &Cancel::new(),
    )
    .await?;
    if args.quiet {
        for p in pushed {
            println!("{}@{}", p.reference, p.digest);
        }
    }
    Ok(())
}
