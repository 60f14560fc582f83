//! `berth save`.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth::ops::images::{self, ArchiveFormat};

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
    let format: ArchiveFormat = args.format.parse()?;
    let engine = &ctx.engine;
    let write = |out: &mut dyn Write| -> Result<()> {
        images::save(engine, &args.images, format, out)?;
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
