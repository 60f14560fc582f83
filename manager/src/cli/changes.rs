//! `berth diff`, `berth export`, `berth update`, `berth commit`, `berth import`.

use std::io::{IsTerminal, Write};

use anyhow::{bail, Context, Result};
use berth::ops::containers::{self, CommitOptions, UpdateConfig};
use berth::ops::images::{self, NewImage};
use berth::ops::models::RestartPolicy;
use berth::ops::parse;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    container: String,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    output: Option<std::path::PathBuf>,
    container: String,
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long)]
    blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long)]
    cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    cpu_shares: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short, long)]
    memory: Option<String>,
    /// Memory soft limit
    #[arg(long)]
    memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<String>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    restart: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long)]
    change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    message: Option<String>,
    /// Pause container during commit
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pause: bool,
    container: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long)]
    change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    /// A tar archive (plain or gzipped), - for STDIN
    file: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

pub fn diff(ctx: &Ctx, a: DiffArgs) -> Result<()> {
    let list = containers::changes(&ctx.engine, &a.container)?;
    let mut out = std::io::stdout().lock();
    for c in list {
        writeln!(out, "{} {}", c.letter(), c.path)?;
    }
    Ok(())
}

pub fn export(ctx: &Ctx, a: ExportArgs) -> Result<()> {
    match &a.output {
        Some(path) => {
            let f = std::fs::File::create(path)
                .with_context(|| format!("flag --output: creating {}", path.display()))?;
            let mut w = std::io::BufWriter::new(f);
            containers::export(&ctx.engine, &a.container, &mut w)?;
            w.flush()
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            containers::export(&ctx.engine, &a.container, &mut w)?;
            w.flush()?;
        }
    }
    Ok(())
}

pub fn update(ctx: &Ctx, a: UpdateArgs) -> Result<()> {
    let u = UpdateConfig {
        cpu_shares: a.cpu_shares.as_deref().map(parse::cpu_shares).transpose()?,
        memory: a
            .memory
            .as_deref()
            .map(|m| parse::bytes("memory", m))
            .transpose()?,
        memory_swap: a
            .memory_swap
            .as_deref()
            .map(parse::memory_swap)
            .transpose()?,
        memory_reservation: a
            .memory_reservation
            .as_deref()
            .map(|m| parse::bytes("memory-reservation", m))
            .transpose()?,
        nano_cpus: a.cpus.as_deref().map(parse::nano_cpus).transpose()?,
        cpu_period: a.cpu_period,
        cpu_quota: a.cpu_quota,
        cpuset_cpus: a.cpuset_cpus.as_deref().map(parse::cpuset).transpose()?,
        cpuset_mems: a.cpuset_mems.clone(),
        pids_limit: a.pids_limit.as_deref().map(parse::pids_limit).transpose()?,
        blkio_weight: a.blkio_weight,
        restart_policy: a
            .restart
            .as_deref()
            .map(parse::restart)
            .transpose()?
            .map(|p: RestartPolicy| p),
    };
    let mut failed = Vec::new();
    for c in &a.containers {
        match containers::update(&ctx.engine, c, &u) {
            Ok(r) => {
                for w in r.warnings {
                    eprintln!("WARNING: {w}");
                }
                println!("{c}");
            }
            Err(e) => failed.push(format!("{e}")),
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }
    Ok(())
}

pub fn commit(ctx: &Ctx, a: CommitArgs) -> Result<()> {
    if let Some(r) = &a.reference {
        images::check_reference(r)?;
    }
    let opts = CommitOptions {
        reference: a.reference,
        comment: a.message.unwrap_or_default(),
        author: a.author.unwrap_or_default(),
        changes: a.change,
        pause: a.pause,
        config: Default::default(),
    };
    let id = containers::commit(&ctx.engine, &a.container, &opts)?;
    println!("{id}");
    Ok(())
}

pub fn import(ctx: &Ctx, a: ImportArgs) -> Result<()> {
    let _ = a.platform;
    if a.file.contains("://") {
        bail!(
            "importing from a URL ({}) is not supported: download it and import the file",
            a.file
        );
    }
    if let Some(r) = &a.reference {
        images::check_reference(r)?;
    }
    let new = NewImage {
        name: a.reference,
        comment: a.message.unwrap_or_default(),
        changes: a.change,
        ..NewImage::default()
    };
    let id = if a.file == "-" {
        images::import(&ctx.engine, std::io::stdin().lock(), &new)?
    } else {
        let f = std::fs::File::open(&a.file).with_context(|| format!("opening {}", a.file))?;
        images::import(&ctx.engine, f, &new)?
    };
    println!("{id}");
    Ok(())
}
