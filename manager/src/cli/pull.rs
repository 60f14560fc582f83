//! `berth pull`.

use anyhow::Result;
use berth::ops::images::{self, PullOptions};
use berth::ops::Cancel;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image reference: NAME[:TAG|@DIGEST]
    name: String,
    /// Download all tagged images in the repository
    #[arg(short = 'a', long)]
    all_tags: bool,
    /// Suppress verbose output; print only the image name
    #[arg(short, long)]
    quiet: bool,
    /// Platform to select from a multi-platform image (os/arch[/variant])
    #[arg(long)]
    pub(super) platform: Option<String>,
    /// Number of layers downloaded at once (default 3)
    #[arg(long)]
    pub max_concurrent_downloads: Option<usize>,
    /// Snapshotter the layers are unpacked into: overlay or copy (default: overlay when the
    /// kernel has it)
    #[arg(long, env = "BERTH_SNAPSHOTTER")]
    snapshotter: Option<String>,
    /// A pull on behalf of `run`/`create`: stdout stays the caller's (docker prints such
    /// pulls on stderr).
    #[arg(skip)]
    implicit: bool,
}

impl Args {
    /// The pull `run` and `create` make for a missing image.
    pub fn for_image(name: &str) -> Self {
        Self {
            name: name.to_string(),
            all_tags: false,
            quiet: true,
            platform: None,
            max_concurrent_downloads: None,
            snapshotter: std::env::var("BERTH_SNAPSHOTTER").ok(),
            implicit: true,
        }
    }
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<()> {
    let opts = PullOptions {
        reference: args.name.clone(),
        all_tags: args.all_tags,
        platform: args.platform.clone(),
        snapshotter: args.snapshotter.clone(),
    };
    let progress = super::progress_for(args.quiet);
    // Nothing cancels the CLI's pull but ^C, which ends the process (the ingests stay
    // resumable).
    let pulled = images::pull(&ctx.engine, &opts, &progress, &Cancel::new()).await?;
    for p in pulled {
        let status = if p.downloaded {
            "Downloaded newer image"
        } else {
            "Image is up to date"
        };
        if args.implicit {
            eprintln!("Status: {status} for {}", p.reference);
        } else if args.quiet || !args.all_tags {
            println!("{}", p.reference);
        }
    }
    Ok(())
}
