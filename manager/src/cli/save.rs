//! `berth save`.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth::archive::{save_docker, save_oci, SaveItem};
use berth::reference::Reference;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Images to save (names or IDs)
    #[arg(required = true)]
    images: Vec<String>,
    /// Write to a file instead of stdout
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Archive format: docker-archive or oci-archive
    #[arg(long, default_value = "docker-archive")]
    format: String,
}

pub fn run(ctx: &mut Ctx, args: Args) -> Result<()> {
    let oci = match args.format.as_str() {
        "docker-archive" => false,
        "oci-archive" => true,
        other => bail!(
            "flag --format: unknown archive format {other:?} (use docker-archive or oci-archive)"
        ),
    };
    let store = ctx.store()?;
    let mut items: Vec<SaveItem> = Vec::new();
    for what in &args.images {
        let hits = store.lookup(what)?;
        // A name saves that name; an ID saves the image under all its names.
        let by_name = Reference::parse(what).ok().is_some_and(|r| {
            hits.iter()
                .any(|h| h.name.as_deref() == Some(&r.to_string()))
        });
        for hit in hits {
            let name = hit.reference().filter(|r| r.tag().is_some());
            match items.iter_mut().find(|i| i.record.digest == hit.digest) {
                Some(item) => item.names.extend(name),
                None => items.push(SaveItem {
                    names: name.into_iter().collect(),
                    record: hit,
                }),
            }
            if by_name {
                break;
            }
        }
    }
    let write = |out: &mut dyn Write| -> Result<()> {
        if oci {
            save_oci(store, &items, out)?;
        } else {
            save_docker(store, &items, out)?;
        }
        Ok(())
    };
    match &args.output {
        Some(path) => {
            let tmp = path.with_extension("berth-partial");
            let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            let mut out = BufWriter::new(file);
            if let Err(e) = write(&mut out) {
                // Best effort; the save error is what the user needs to see.
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            drop(out);
            std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("refusing to write an archive to a terminal: use -o FILE or redirect stdout");
            }
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            write(&mut out)?;
            out.flush().context("writing the archive to stdout")?;
        }
    }
    Ok(())
}
