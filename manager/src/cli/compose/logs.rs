//! `compose logs`, and the log view of a foreground `up`: every line prefixed with its
//! container's name (`demo-web-1  | ...`), coloured per service on a terminal.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{bail, Result};
use berth::ops::compose::{self as c, ProjectContainer};
use berth::ops::containers::{self, LogEntry, LogsOptions};
use berth::ops::{parse, Cancel};

use super::{Args, Ctx};

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    follow: bool,
    /// Number of lines to show from the end of the logs for each container
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
    /// Produce monochrome output
    #[arg(long)]
    no_color: bool,
    /// Don't print prefix in logs
    #[arg(long)]
    no_log_prefix: bool,
    /// index of the container if service has multiple replicas
    #[arg(long)]
    index: Option<u32>,
    services: Vec<String>,
}

/// How lines are printed.
#[derive(Clone)]
pub struct Printer {
    width: usize,
    colour: bool,
    prefix: bool,
    timestamps: bool,
    services: Vec<String>,
    out: Arc<Mutex<()>>,
}

const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

impl Printer {
    pub fn new(
        containers: &[ProjectContainer],
        no_color: bool,
        prefix: bool,
        timestamps: bool,
    ) -> Self {
        let mut services: Vec<String> = containers.iter().map(|c| c.service.clone()).collect();
        services.dedup();
        Self {
            width: containers.iter().map(|c| c.name.len()).max().unwrap_or(0),
            colour: !no_color && std::io::stdout().is_terminal(),
            prefix,
            timestamps,
            services,
            out: Arc::new(Mutex::new(())),
        }
    }

    pub fn line(&self, container: &ProjectContainer, text: &str) {
        let _guard = self.out.lock();
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(self.prefix_of(container).as_bytes());
        let _ = out.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
    }

    fn prefix_of(&self, container: &ProjectContainer) -> String {
        if !self.prefix {
            return String::new();
        }
        let p = format!("{:<w$}  | ", container.name, w = self.width);
        if self.colour {
            let i = self
                .services
                .iter()
                .position(|s| *s == container.service)
                .unwrap_or(0);
            format!("\x1b[{}m{p}\x1b[0m", COLOURS[i % COLOURS.len()])
        } else {
            p
        }
    }

    fn entry(&self, container: &ProjectContainer, e: &LogEntry) {
        let text = if self.timestamps {
            format!("{} {}", humantime::format_rfc3339_nanos(e.time), e.line)
        } else {
            e.line.clone()
        };
        self.line(container, &text);
    }
}

/// Follows the logs of `containers` in threads until each ends or `cancel` fires.
pub fn follow(
    ctx: &Ctx,
    containers: &[ProjectContainer],
    printer: &Printer,
    opts: &LogsOptions,
    cancel: &Cancel,
) -> Vec<std::thread::JoinHandle<()>> {
    containers
        .iter()
        .map(|pc| {
            let engine = ctx.engine.clone();
            let pc = pc.clone();
            let printer = printer.clone();
            let opts = opts.clone();
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                let Ok(logs) = containers::logs(&engine, &pc.summary.id, &opts, &cancel) else {
                    return;
                };
                for e in logs.map_while(|e| e.ok()) {
                    printer.entry(&pc, &e);
                }
            })
        })
        .collect()
}

pub fn logs(ctx: &Ctx, args: &Args, a: &LogsArgs) -> Result<()> {
    let (name, model) = args.project_or_name()?;
    let mut list = c::select(&ctx.engine, &name, model.as_ref(), &a.services, false)?;
    if let Some(i) = a.index {
        list.retain(|c| c.number == i);
    }
    let now = SystemTime::now();
    let Some(tail) = parse::tail(&a.tail) else {
        bail!(
            "flag --tail: invalid value {:?} (a number or \"all\")",
            a.tail
        );
    };
    let opts = LogsOptions {
        follow: a.follow,
        tail,
        since: a
            .since
            .as_deref()
            .map(|s| parse::log_time(s, now))
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(|s| parse::log_time(s, now))
            .transpose()?,
        stdout: true,
        stderr: true,
    };
    let printer = Printer::new(&list, a.no_color, !a.no_log_prefix, a.timestamps);
    if a.follow {
        for h in follow(ctx, &list, &printer, &opts, &Cancel::new()) {
            let _ = h.join();
        }
        return Ok(());
    }
    // The history of every container, merged by time.
    let mut all = Vec::new();
    for pc in &list {
        for e in containers::logs(&ctx.engine, &pc.summary.id, &opts, &Cancel::new())? {
            all.push((e?, pc));
        }
    }
    all.sort_by_key(|(e, _)| e.time);
    for (e, pc) in all {
        printer.entry(pc, &e);
    }
    Ok(())
}
