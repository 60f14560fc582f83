//! `berth ps`: containers in docker's table, as JSON, or through a Go template.

use anyhow::Result;
use berth::ops::containers::{self, ListOptions};
use berth::ops::models::{ContainerSummary, Filters};
use berth::ops::OpsError;
use serde_json::{json, Value};

use super::format::{human_age, human_size, print_formatted};
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
    /// Display total file sizes
    #[arg(short, long)]
    size: bool,
}

fn ports_text(c: &ContainerSummary) -> String {
    c.ports
        .iter()
        .map(|p| {
            let ip = if p.ip.is_empty() { "0.0.0.0" } else { &p.ip };
            format!("{ip}:{}->{}/{}", p.public_port, p.private_port, p.r#type)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn command_text(c: &ContainerSummary, trunc: bool) -> String {
    let cmd = &c.command;
    let cmd = if trunc && cmd.chars().count() > 20 {
        format!("{}…", cmd.chars().take(19).collect::<String>())
    } else {
        cmd.clone()
    };
    format!("\"{cmd}\"")
}

fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

/// The object `--format` sees: docker's field names.
pub fn row(c: &ContainerSummary, trunc: bool) -> Value {
    let id = if trunc { short(&c.id) } else { &c.id };
    let labels = c
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let name = c.names.first().map_or("", |n| n.trim_start_matches('/'));
    json!({
        "ID": id,
        "Image": c.image,
        "Command": command_text(c, trunc),
        "CreatedAt": c.created_at,
        "RunningFor": human_age(Some(&c.created_at)),
        "Status": c.status,
        "State": c.state,
        "Ports": ports_text(c),
        "Names": name,
        "Labels": labels,
        "Mounts": c.mounts.iter().map(|m| if m.name.is_empty() { m.source.clone() } else { m.name.clone() }).collect::<Vec<_>>().join(","),
        "Networks": c.host_config.network_mode,
        "Size": size_text(c),
    })
}

/// docker's SIZE: the container's own layer, and with its image (`2B (virtual 1.2MB)`).
fn size_text(c: &ContainerSummary) -> String {
    let rw = human_size(c.size_rw.unwrap_or(0).max(0) as u64);
    match c.size_root_fs {
        Some(all) => format!("{rw} (virtual {})", human_size(all.max(0) as u64)),
        None => rw,
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    // As docker: sizes are walked only when asked for, by the flag or by the template.
    let size = args.size || args.format.as_deref().is_some_and(|f| f.contains(".Size"));
    let opts = ListOptions {
        all: args.all,
        limit: if args.latest { Some(1) } else { args.last },
        filters: Filters::parse(&args.filter).map_err(OpsError::from)?,
        size,
    };
    let list = containers::list(&ctx.engine, &opts)?;
    let trunc = !args.no_trunc;
    if args.quiet {
        for c in &list {
            println!("{}", if trunc { short(&c.id) } else { &c.id });
        }
        return Ok(());
    }
    let rows: Vec<Value> = list.iter().map(|c| row(c, trunc)).collect();
    let table = if args.size {
        "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}\\t{{.Size}}"
    } else {
        "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}"
    };
    let header = |field: &str| match field {
        "ID" => "CONTAINER ID".to_string(),
        "RunningFor" => "CREATED".to_string(),
        "Names" => "NAMES".to_string(),
        "Size" => "SIZE".to_string(),
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
    fn rows_show_dockers_columns() {
        let c = ContainerSummary {
            id: "0123456789abcdef".into(),
            names: vec!["/web".into()],
            command: "sleep 100000000000000000000".into(),
            ports: vec![berth::ops::models::Port {
                ip: String::new(),
                private_port: 80,
                public_port: 8080,
                r#type: "tcp".into(),
            }],
            ..ContainerSummary::default()
        };
        let r = row(&c, true);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Ports"], "0.0.0.0:8080->80/tcp");
        assert_eq!(r["Command"], "\"sleep 1000000000000…\"");
        assert_eq!(row(&c, false)["ID"], "0123456789abcdef");
    }
}
