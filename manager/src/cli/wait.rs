//! `berth wait CONTAINER...`: blocks until each container stops and prints its exit code.

use anyhow::Result;
use berth::ops::containers;
use berth::ops::models::WaitCondition;
use berth::ops::Cancel;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let mut failed = false;
    // Nothing cancels a CLI wait but the user's ^C, which ends the process.
    let cancel = Cancel::new();
    for c in &args.containers {
        match containers::wait(&ctx.engine, c, WaitCondition::NotRunning, &cancel) {
            Ok(w) => println!("{}", w.status_code),
            Err(e) => {
                super::report(&e.into());
                failed = true;
            }
        }
    }
    if failed {
        return Err(super::Exit::silent(1).into());
    }
    Ok(())
}
