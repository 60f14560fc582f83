//! `berth load`.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{Context, Result};
use berth::archive::load;

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

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<()> {
    let store = ctx.store()?.clone();
    let input = args.input.clone();
    // Tar reading and hashing are blocking work.
    let records = tokio::task::spawn_blocking(move || -> Result<_> {
        match &input {
            Some(path) => {
                let file =
                    File::open(path).with_context(|| format!("opening {}", path.display()))?;
                load(&store, BufReader::new(file))
                    .with_context(|| format!("loading {}", path.display()))
            }
            None => {
                load(&store, BufReader::new(std::io::stdin().lock())).context("loading from stdin")
            }
        }
    })
    .await??;
    if !args.quiet {
        for r in records {
            match r.name {
                Some(n) => println!("Loaded image: {n}"),
                None => println!("Loaded image ID: {}", r.digest),
            }
        }
    }
    Ok(())
}
