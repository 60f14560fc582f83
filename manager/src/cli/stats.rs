//! `berth stats [CONTAINER...]`: a live table of containers' resource use (from their
//! cgroups), or one sample with `--no-stream`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Result};
use berth::ops::containers::{self, ListOptions};
use berth::ops::stats::{self, Stats, StatsMode};
use berth::ops::Cancel;
use berth::template::Format;
use serde_json::{json, Value};

use super::format::human_size;
use super::Ctx;

const DEFAULT_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Format output using a Go template
    #[arg(long)]
    format: Option<String>,
    containers: Vec<String>,
}

fn header(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID".into(),
        "Container" => "CONTAINER".into(),
        "CPUPerc" => "CPU %".into(),
        "MemUsage" => "MEM USAGE / LIMIT".into(),
        "MemPerc" => "MEM %".into(),
        "NetIO" => "NET I/O".into(),
        "BlockIO" => "BLOCK I/O".into(),
        "PIDs" => "PIDS".into(),
        other => berth::template::default_header(other),
    }
}

/// Binary sizes as docker's stats prints them (`1.203MiB`, four significant digits).
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    let digits = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[u])
}

fn row(what: &str, s: Option<&Stats>, no_trunc: bool) -> Value {
    let Some(s) = s.filter(|s| s.read != "0001-01-01T00:00:00Z") else {
        let id = s.map_or(what.to_string(), |s| s.id.clone());
        let id = if no_trunc {
            id
        } else {
            id.chars().take(12).collect()
        };
        let name = s.map_or("--".into(), |s| s.name.trim_start_matches('/').to_string());
        return json!({
            "Container": what, "ID": id, "Name": name, "CPUPerc": "0.00%",
            "MemUsage": "0B / 0B", "MemPerc": "0.00%", "NetIO": "0B / 0B",
            "BlockIO": "0B / 0B", "PIDs": "0",
        });
    };
    let used = s.memory_used();
    let limit = s.memory_stats.limit.unwrap_or(0);
    let mem_perc = if limit > 0 {
        used as f64 / limit as f64 * 100.0
    } else {
        0.0
    };
    let (rx, tx) = s.net_io();
    let (r, w) = s.block_io();
    let id = if no_trunc {
        s.id.clone()
    } else {
        s.id.chars().take(12).collect()
    };
    json!({
        "Container": what,
        "ID": id,
        "Name": s.name.trim_start_matches('/'),
        "CPUPerc": format!("{:.2}%", s.cpu_percent()),
        "MemUsage": format!("{} / {}", binary_size(used), binary_size(limit)),
        "MemPerc": format!("{mem_perc:.2}%"),
        "NetIO": format!("{} / {}", human_size(rx), human_size(tx)),
        "BlockIO": format!("{} / {}", human_size(r), human_size(w)),
        "PIDs": s.pids_stats.current.unwrap_or(0).to_string(),
    })
}

pub fn run(ctx: &Ctx, a: Args) -> Result<()> {
    let format = Format::parse(a.format.as_deref().unwrap_or(""), DEFAULT_TABLE)
        .map_err(|e| anyhow::anyhow!("flag --format: {e}"))?;
    let targets: Vec<String> = if a.containers.is_empty() {
        containers::list(
            &ctx.engine,
            &ListOptions {
                all: a.all,
                ..ListOptions::default()
            },
        )?
        .into_iter()
        .map(|c| c.id)
        .collect()
    } else {
        a.containers.clone()
    };
    let cancel = Cancel::new();
    let mode = if a.no_stream {
        StatsMode::Once
    } else {
        StatsMode::Stream
    };
    let latest: Arc<Mutex<BTreeMap<usize, Stats>>> = Arc::default();
    let mut handles = Vec::new();
    let mut errors = Vec::new();
    for (i, what) in targets.iter().enumerate() {
        match stats::stats(&ctx.engine, what, mode, &cancel) {
            Ok(iter) => {
                let latest = latest.clone();
                handles.push(std::thread::spawn(move || {
                    for s in iter.flatten() {
                        if let Ok(mut m) = latest.lock() {
                            m.insert(i, s);
                        }
                    }
                }));
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        cancel.cancel();
        let msgs: Vec<String> = errors.iter().map(ToString::to_string).collect();
        bail!("{}", msgs.join("\n"));
    }
    let render = |no_trunc: bool| -> Result<String> {
        let m = latest
            .lock()
            .map_err(|_| anyhow::anyhow!("stats poisoned"))?;
        let rows: Vec<Value> = targets
            .iter()
            .enumerate()
            .map(|(i, w)| row(w, m.get(&i), no_trunc))
            .collect();
        Ok(format.render(&rows, &header)?)
    };
    if a.no_stream {
        for h in handles {
            let _ = h.join();
        }
        print!("{}", render(a.no_trunc)?);
        return Ok(());
    }
    let tty = std::io::stdout().is_terminal();
    loop {
        std::thread::sleep(Duration::from_millis(1100));
        let text = render(a.no_trunc)?;
        let mut out = std::io::stdout().lock();
        let written = if tty {
            write!(out, "\x1b[2J\x1b[H{text}")
        } else {
            write!(out, "{text}")
        };
        if written.and_then(|()| out.flush()).is_err() {
            cancel.cancel();
            return Ok(());
        }
    }
}
