//! `berth push`.

use anyhow::{bail, Context, Result};
use berth::distribution::push::push;
use berth::reference::Reference;

use super::{registry, Ctx};

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
    let name_only = Reference::parse_name_only(&args.name)?;
    let store = ctx.store()?.clone();
    let records = if args.all_tags {
        if name_only.tag().is_some() || name_only.digest().is_some() {
            bail!("tag can't be used with --all-tags/-a");
        }
        let mut recs: Vec<_> = store
            .records()?
            .into_iter()
            .filter(|r| {
                r.reference().is_some_and(|x| {
                    x.registry() == name_only.registry()
                        && x.repository() == name_only.repository()
                        && x.tag().is_some()
                })
            })
            .collect();
        recs.sort_by(|a, b| a.name.cmp(&b.name));
        if recs.is_empty() {
            bail!(
                "no such image: no tags of {} found locally",
                name_only.name()
            );
        }
        recs
    } else {
        let reference = Reference::parse(&args.name)?;
        let name = reference.to_string();
        let rec = store
            .records()?
            .into_iter()
            .find(|r| r.name.as_deref() == Some(name.as_str()))
            .with_context(|| {
                format!("no such image: {name} (tag an image with this name first)")
            })?;
        vec![rec]
    };
    let reg = registry::connect(&ctx.settings, name_only.registry()).await?;
    let progress = super::progress_for(args.quiet);
    progress.status(&format!(
        "The push refers to repository [{}]",
        name_only.name()
    ));
    for rec in records {
        let target = rec
            .reference()
            .with_context(|| format!("image record {:?} has no valid name", rec.name))?;
        let pushed = push(&store, reg.clone(), &rec, &target, &progress)
            .await
            .with_context(|| format!("pushing {target}"))?;
        let pin = target.tag().unwrap_or("");
        progress.status(&format!(
            "{pin}: digest: {} size: {}",
            pushed.digest, pushed.size
        ));
        if args.quiet {
            println!("{target}@{}", pushed.digest);
        }
    }
    Ok(())
}
