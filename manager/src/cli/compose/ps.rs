//! `compose ps` and `compose ls`.

use anyhow::{bail, Result};
use berth::ops::compose::{self as c, ProjectContainer};
use serde_json::{json, Value};

use super::{Args, Ctx};
use crate::cli::format::{human_age, print_table};

#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Show all stopped containers (including those created by the run command)
    #[arg(short, long)]
    all: bool,
    /// Only display IDs
    #[arg(short, long)]
    quiet: bool,
    /// Display services
    #[arg(long)]
    services: bool,
    /// Filter services by status (paused, restarting, removing, running, dead, created, exited)
    #[arg(long)]
    status: Vec<String>,
    /// Format the output ("table"|"json")
    #[arg(long, default_value = "table")]
    format: String,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    #[arg(value_name = "SERVICE")]
    names: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Show all stopped Compose projects
    #[arg(short, long)]
    all: bool,
    /// Only display project names
    #[arg(short, long)]
    quiet: bool,
    /// Format the output ("table"|"json")
    #[arg(long, default_value = "table")]
    format: String,
}

fn ports(pc: &ProjectContainer) -> String {
    pc.summary
        .ports
        .iter()
        .map(|p| {
            if p.public_port == 0 {
                format!("{}/{}", p.private_port, p.r#type)
            } else {
                let ip = if p.ip.is_empty() { "0.0.0.0" } else { &p.ip };
                format!("{ip}:{}->{}/{}", p.public_port, p.private_port, p.r#type)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn health(pc: &ProjectContainer) -> String {
    let s = &pc.summary.status;
    for h in ["healthy", "unhealthy", "health: starting"] {
        if s.contains(&format!("({h})")) {
            return h.trim_start_matches("health: ").to_string();
        }
    }
    String::new()
}

pub fn ps(ctx: &Ctx, args: &Args, a: &PsArgs) -> Result<()> {
    let (name, model) = args.project_or_name()?;
    let mut list = c::select(&ctx.engine, &name, model.as_ref(), &a.names, a.all)?;
    if !a.all {
        list.retain(|c| c.running() || c.summary.state == "paused");
    }
    if !a.status.is_empty() {
        list.retain(|c| a.status.contains(&c.summary.state));
    }
    if a.services {
        let mut s: Vec<&str> = list.iter().map(|c| c.service.as_str()).collect();
        s.dedup();
        for s in s {
            println!("{s}");
        }
        return Ok(());
    }
    if a.quiet {
        for c in &list {
            println!(
                "{}",
                if a.no_trunc {
                    &c.summary.id
                } else {
                    &c.summary.id[..12.min(c.summary.id.len())]
                }
            );
        }
        return Ok(());
    }
    match a.format.as_str() {
        "json" => {
            for pc in &list {
                let v: Value = json!({
                    "ID": pc.summary.id,
                    "Name": pc.name,
                    "Names": pc.name,
                    "Image": pc.summary.image,
                    "Command": pc.summary.command,
                    "Project": name,
                    "Service": pc.service,
                    "Created": pc.summary.created,
                    "CreatedAt": pc.summary.created_at,
                    "RunningFor": human_age(Some(&pc.summary.created_at)),
                    "State": pc.summary.state,
                    "Status": pc.summary.status,
                    "Health": health(pc),
                    "ExitCode": exit_code(&pc.summary.status),
                    "Ports": ports(pc),
                    "Labels": pc.summary.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                    "Publishers": pc.summary.ports.iter().map(|p| json!({
                        "URL": if p.ip.is_empty() { "0.0.0.0" } else { &p.ip },
                        "TargetPort": p.private_port,
                        "PublishedPort": p.public_port,
                        "Protocol": p.r#type,
                    })).collect::<Vec<_>>(),
                });
                println!("{v}");
            }
        }
        "table" => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|pc| {
                    let mut cmd = pc.summary.command.clone();
                    if !a.no_trunc && cmd.chars().count() > 20 {
                        cmd = format!("{}…", cmd.chars().take(19).collect::<String>());
                    }
                    vec![
                        pc.name.clone(),
                        pc.summary.image.clone(),
                        format!("\"{cmd}\""),
                        pc.service.clone(),
                        human_age(Some(&pc.summary.created_at)),
                        pc.summary.status.clone(),
                        ports(pc),
                    ]
                })
                .collect();
            print_table(
                &[
                    "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS",
                ],
                &rows,
            );
        }
        other => bail!("flag --format: invalid value {other:?} (table or json)"),
    }
    Ok(())
}

fn exit_code(status: &str) -> i64 {
    status
        .strip_prefix("Exited (")
        .and_then(|s| s.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

pub fn ls(ctx: &Ctx, a: &LsArgs) -> Result<()> {
    let list = c::list_projects(&ctx.engine, a.all)?;
    if a.quiet {
        for p in &list {
            println!("{}", p.name);
        }
        return Ok(());
    }
    match a.format.as_str() {
        "json" => {
            let v: Vec<Value> = list
                .iter()
                .map(|p| json!({"Name": p.name, "Status": p.status, "ConfigFiles": p.config_files}))
                .collect();
            println!("{}", Value::Array(v));
        }
        "table" => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|p| vec![p.name.clone(), p.status.clone(), p.config_files.clone()])
                .collect();
            print_table(&["NAME", "STATUS", "CONFIG FILES"], &rows);
        }
        other => bail!("flag --format: invalid value {other:?} (table or json)"),
    }
    Ok(())
}
