//! `berth wait CONTAINER...`: blocks until each container stops and prints its exit code.

use anyhow::Result;
use berth::container::lifecycle::wait_exit;

use super::{ctr, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let mut failed = false;
    for c in &args.containers {
        let result = ctr::find(&ctx.settings.root, c)
            .and_then(|(store, r)| Ok(wait_exit(&store, &r.id, None)?.unwrap_or(-1)));
        match result {
            Ok(code) => println!("{code}"),
            Err(e) => {
                eprintln!("Error: {e:#}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(super::Exit::silent(1).into());
    }
    Ok(())
}
