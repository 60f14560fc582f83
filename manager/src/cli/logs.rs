//! `berth logs`: a container's json-file log, with docker's `--follow`, `--tail`,
//! `--since`, `--until` and `--timestamps`.

use std::io::{self, Write};
use std::time::SystemTime;

use anyhow::{bail, Result};
use berth::container::lifecycle::{monitor_alive, Paths};
use berth::logs::{parse_timestamp, LogReader, ReadOptions};

use super::{ctr, Ctx};

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
    container: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let root = &ctx.settings.root;
    let (store, r) = ctr::find(root, &args.container)?;
    let now = SystemTime::now();
    let tail = match args.tail.as_str() {
        "all" => None,
        n => match n.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => bail!("flag --tail: invalid value {n:?} (a number or \"all\")"),
        },
    };
    let opts = ReadOptions {
        tail,
        since: match &args.since {
            Some(s) => Some(parse_timestamp(s, now)?),
            None => None,
        },
        until: match &args.until {
            Some(s) => Some(parse_timestamp(s, now)?),
            None => None,
        },
        stdout: true,
        stderr: true,
    };
    let paths = Paths::new(root, &store, &r);
    let reader = LogReader::new(&paths.log, opts);
    let mut stdout = io::stdout();
    let mut stderr = io::stderr();
    if args.follow {
        let id = r.id.clone();
        let exited = move || match store.load(&id) {
            Ok(r) => !monitor_alive(&r),
            Err(_) => true,
        };
        for entry in reader.follow(&exited)? {
            entry?.print(args.timestamps, &mut stdout, &mut stderr)?;
            stdout.flush()?;
        }
    } else {
        for entry in reader.read()? {
            entry.print(args.timestamps, &mut stdout, &mut stderr)?;
        }
    }
    stdout.flush()?;
    Ok(())
}
