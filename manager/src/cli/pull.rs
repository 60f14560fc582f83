//! `berth pull`.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use berth::distribution::pull::{list_tags, pull, PullOptions};
use berth::platform::Platform;
use berth::reference::Reference;
use berth::snapshot::Backend;
use berth::unpack::unpack_image;

use super::{registry, Ctx};

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
    platform: Option<String>,
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
    let platform = match &args.platform {
        Some(p) => p.parse::<Platform>().context("flag --platform")?,
        None => Platform::host(),
    };
    let name_only = Reference::parse_name_only(&args.name)?;
    let references = if args.all_tags {
        if name_only.tag().is_some() || name_only.digest().is_some() {
            bail!("tag can't be used with --all-tags/-a");
        }
        let reg = registry::connect(&ctx.settings, name_only.registry()).await?;
        let mut tags = list_tags(&reg, name_only.repository()).await?;
        tags.sort();
        tags.iter()
            .map(|t| name_only.with_tag(t))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        if name_only.tag().is_none() && name_only.digest().is_none() && !args.quiet {
            println!("Using default tag: latest");
        }
        vec![Reference::parse(&args.name)?]
    };
    let opts = PullOptions {
        platform,
        explicit_platform: args.platform.is_some(),
        concurrency: ctx.settings.registries.max_concurrent_downloads,
    };
    let reg = registry::connect(&ctx.settings, name_only.registry()).await?;
    let progress = super::progress_for(args.quiet);
    let backend = match &args.snapshotter {
        Some(b) => b.parse::<Backend>().context("flag --snapshotter")?,
        None => Backend::detect(),
    };
    let root = ctx.settings.root.clone();
    let store = ctx.store()?.clone();
    for reference in &references {
        let pin = reference
            .tag()
            .map_or_else(|| reference.manifest_reference(), str::to_string);
        progress.status(&format!("{pin}: Pulling from {}", reference.repository()));
        let sn: Arc<dyn berth::snapshot::Snapshotter> = Arc::from(backend.open(&root)?);
        let pulled = pull(&store, reg.clone(), reference, &opts, &progress, Some(sn))
            .await
            .with_context(|| format!("pulling {reference}"))?;
        // Unpacked before `pull` returns, as containerd does, so the image is ready to run.
        {
            let store = store.clone();
            let root = root.clone();
            let record = pulled.record.clone();
            let name = reference.to_string();
            tokio::task::spawn_blocking(move || -> Result<()> {
                let info = store.image(&record)?;
                let sn = backend.open(&root)?;
                unpack_image(&store, &info, &name, &*sn)?;
                Ok(())
            })
            .await
            .context("unpacking thread")?
            .with_context(|| format!("unpacking {reference}"))?;
        }
        progress.status(&format!("Digest: {}", pulled.resolved));
        let status = if pulled.downloaded {
            "Downloaded newer image"
        } else {
            "Image is up to date"
        };
        progress.status(&format!("Status: {status} for {reference}"));
        if args.implicit {
            eprintln!("Status: {status} for {reference}");
        } else if args.quiet || !args.all_tags {
            println!("{reference}");
        }
    }
    Ok(())
}
