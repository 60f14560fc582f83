//! `berth load`.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{Context, Result};
use berth::ops::images;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read from a tar archive file instead of stdin
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(ctx: &mut Ctx, args: Args) -> Result<()> {
    let loaded = match &args.input {
        Some(path) => {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            images::load(&ctx.engine, BufReader::new(file))
                .with_context(|| format!("loading {}", path.display()))?
        }
        None => images::load(&ctx.engine, BufReader::new(std::io::stdin().lock()))
            .context("loading from stdin")?,
    };
    if !args.quiet {
        for image in loaded {
            match image.name {
                Some(n) => println!("Loaded image: {n}"),
                None => println!("Loaded image ID: {}", image.id),
            }
        }
    }
    Ok(())
}
