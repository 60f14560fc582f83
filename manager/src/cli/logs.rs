//! `berth logs`: a container's json-file log, with docker's `--follow`, `--tail`,
//! `--since`, `--until`, `--timestamps` and `--details`.

use std::io::{self, Write};
use std::time::SystemTime;

use anyhow::{bail, Result};
use berth::ops::containers::{self, LogsOptions};
use berth::ops::{parse, Cancel};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Follow log output
    #[arg(short, long)]
    follow: bool,
    /// Number of lines to show from the end of the logs ("all" for all)
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp or relative time
    #[arg(long)]
    until: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    /// Show extra details provided to logs
    #[arg(long)]
    details: bool,
    container: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let now = SystemTime::now();
    let Some(tail) = parse::tail(&args.tail) else {
        bail!(
            "flag --tail: invalid value {:?} (a number or \"all\")",
            args.tail
        );
    };
    let opts = LogsOptions {
        follow: args.follow,
        tail,
        since: match &args.since {
            Some(s) => Some(parse::log_time(s, now)?),
            None => None,
        },
        until: match &args.until {
            Some(s) => Some(parse::log_time(s, now)?),
            None => None,
        },
        stdout: true,
        stderr: true,
    };
    // Nothing cancels the CLI's follow but ^C, which ends the process.
    let logs = containers::logs(&ctx.engine, &args.container, &opts, &Cancel::new())?;
    let mut stdout = io::stdout();
    let mut stderr = io::stderr();
    for entry in logs {
        entry?.print_with(args.timestamps, args.details, &mut stdout, &mut stderr)?;
        if args.follow {
            stdout.flush()?;
        }
    }
    stdout.flush()?;
    Ok(())
}
