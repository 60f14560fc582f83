//! `berth ps`: containers in docker's table, as JSON, or through a Go template.

use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};
use berth::container::lifecycle::refresh;
use berth::container::{ContainerStore, Record, Status};
use serde_json::{json, Value};

use super::format::{human_age, print_formatted};
use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Filter output based on conditions provided (status=, name=, id=, label=, ancestor=,
    /// exited=)
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long)]
    last: Option<usize>,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    latest: bool,
    /// Format output: table, json, or a Go template
    #[arg(long)]
    format: Option<String>,
}

/// One filter of `--filter KEY=VALUE`.
struct Filter {
    key: String,
    value: String,
}

fn parse_filters(raw: &[String]) -> Result<Vec<Filter>> {
    raw.iter()
        .map(|f| {
            let Some((k, v)) = f.split_once('=') else {
                bail!("flag --filter: bad format of filter {f:?} (expected name=value)");
            };
            if !matches!(
                k,
                "status" | "name" | "id" | "label" | "ancestor" | "exited"
            ) {
                bail!("flag --filter: invalid filter {k:?} (status, name, id, label, ancestor, exited)");
            }
            if k == "status"
                && !matches!(
                    v,
                    "created" | "restarting" | "running" | "removing" | "paused" | "exited" | "dead"
                )
            {
                bail!("flag --filter: invalid status filter {v:?}");
            }
            Ok(Filter {
                key: k.into(),
                value: v.into(),
            })
        })
        .collect()
}

fn matches(r: &Record, f: &Filter) -> bool {
    match f.key.as_str() {
        "status" => r.state.status.as_str() == f.value,
        "name" => r.name.contains(f.value.trim_start_matches('/')),
        "id" => r.id.starts_with(&f.value),
        "label" => match f.value.split_once('=') {
            Some((k, v)) => r.config.labels.get(k).is_some_and(|x| x == v),
            None => r.config.labels.contains_key(&f.value),
        },
        "ancestor" => {
            r.image == f.value
                || r.image.trim_end_matches(":latest") == f.value.trim_end_matches(":latest")
                || r.image_id
                    .trim_start_matches("sha256:")
                    .starts_with(f.value.trim_start_matches("sha256:"))
        }
        "exited" => r.state.status == Status::Exited && r.state.exit_code.to_string() == f.value,
        _ => false,
    }
}

/// Seconds since an RFC 3339 time, in docker's words ("5 seconds", "About a minute").
fn since(t: &str) -> String {
    let age = humantime::parse_rfc3339_weak(t)
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match age {
        0 => "Less than a second".into(),
        1..=59 => plural(age, "second"),
        60..=119 => "About a minute".into(),
        120..=3599 => plural(age / 60, "minute"),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => plural(age / 3600, "hour"),
        172_800..=1_209_599 => plural(age / 86_400, "day"),
        _ => plural(age / 604_800, "week"),
    }
}

/// docker's STATUS column.
pub fn status_text(r: &Record) -> String {
    let health = r
        .state
        .health
        .as_ref()
        .map(|h| {
            format!(
                " ({})",
                if h.status == "starting" {
                    "health: starting"
                } else {
                    &h.status
                }
            )
        })
        .unwrap_or_default();
    match r.state.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}{health}", since(&r.state.started_at)),
        Status::Paused => format!("Up {} (Paused)", since(&r.state.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            since(&r.state.finished_at)
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            since(&r.state.finished_at)
        ),
        Status::Dead => "Dead".into(),
    }
}

fn ports_text(r: &Record) -> String {
    r.config
        .ports
        .iter()
        .map(|p| {
            let ip = if p.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                &p.host_ip
            };
            format!("{ip}:{}->{}/{}", p.host_port, p.container_port, p.protocol)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn command_text(r: &Record, trunc: bool) -> String {
    let cmd = r.config.args.join(" ");
    let cmd = if trunc && cmd.chars().count() > 20 {
        format!("{}…", cmd.chars().take(19).collect::<String>())
    } else {
        cmd
    };
    format!("\"{cmd}\"")
}

/// The object `--format` sees: docker's field names.
pub fn row(r: &Record, trunc: bool) -> Value {
    let id = if trunc {
        r.short_id().to_string()
    } else {
        r.id.clone()
    };
    let labels = r
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    json!({
        "ID": id,
        "Image": r.image,
        "Command": command_text(r, trunc),
        "CreatedAt": r.created,
        "RunningFor": human_age(Some(&r.created)),
        "Status": status_text(r),
        "State": r.state.status.as_str(),
        "Ports": ports_text(r),
        "Names": r.name,
        "Labels": labels,
        "Mounts": r.config.mounts.iter().map(|m| if m.name.is_empty() { m.source.clone() } else { m.name.clone() }).collect::<Vec<_>>().join(","),
        "Networks": r.config.network_mode,
        "Size": "0B",
    })
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let filters = parse_filters(&args.filter)?;
    let store = ContainerStore::open(&ctx.settings.root)?;
    let mut list = Vec::new();
    for r in store.list()? {
        list.push(refresh(&store, r)?);
    }
    let all = args.all || args.last.is_some() || args.latest;
    let has_status_filter = filters
        .iter()
        .any(|f| f.key == "status" || f.key == "exited");
    list.retain(|r| {
        (all || has_status_filter || r.state.status == Status::Running)
            && filters.iter().all(|f| matches(r, f))
    });
    // Newest first, as docker lists them.
    list.reverse();
    if let Some(n) = args.last {
        list.truncate(n);
    }
    if args.latest {
        list.truncate(1);
    }
    let trunc = !args.no_trunc;
    if args.quiet {
        for r in &list {
            println!("{}", if trunc { r.short_id() } else { &r.id });
        }
        return Ok(());
    }
    let rows: Vec<Value> = list.iter().map(|r| row(r, trunc)).collect();
    let table = "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}";
    let header = |field: &str| match field {
        "ID" => "CONTAINER ID".to_string(),
        "RunningFor" => "CREATED".to_string(),
        "Names" => "NAMES".to_string(),
        other => berth::template::default_header(other),
    };
    print_formatted(
        args.format.as_deref().unwrap_or("table"),
        table,
        &rows,
        &header,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_validated() {
        assert!(parse_filters(&["status=running".into()]).is_ok());
        assert!(parse_filters(&["status=bogus".into()]).is_err());
        assert!(parse_filters(&["color=red".into()]).is_err());
        assert!(parse_filters(&["name".into()]).is_err());
    }

    #[test]
    fn ages_read_like_docker() {
        assert!(since("1970-01-01T00:00:00Z").ends_with("weeks"));
        assert_eq!(
            since(&berth::container::record::now_rfc3339()),
            "Less than a second"
        );
    }
}
