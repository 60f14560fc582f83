//! `berth info`, `berth version`, `berth system df` and `berth system prune`, in docker's
//! layouts (`--format` takes a Go template over the API's JSON).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result};
use berth::ops::{self, containers, df, images, networks, volumes};
use berth::template::Template;
use serde_json::{json, Value};

use super::format::{human_age, human_size};
use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct FormatArgs {
    /// Format output using a Go template
    #[arg(short, long)]
    format: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    verbose: bool,
    /// Format output using a Go template
    #[arg(long)]
    format: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    volumes: bool,
}

fn render(format: &str, v: &Value) -> Result<()> {
    let t = Template::parse(&format.replace("\\t", "\t").replace("\\n", "\n"))
        .context("flag --format")?;
    println!("{}", t.render(v)?);
    Ok(())
}

pub fn version(_ctx: &Ctx, a: FormatArgs) -> Result<()> {
    let server = ops::system::version();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let mut sv = serde_json::to_value(&server)?;
    if let Some(o) = sv.as_object_mut() {
        // Go's field names, as docker's templates use them.
        o.insert("APIVersion".into(), server.api_version.clone().into());
    }
    let client = json!({
        "Platform": {"Name": "Berth"},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": server.api_version,
        "APIVersion": server.api_version,
        "DefaultAPIVersion": server.api_version,
        "GitCommit": "",
        "GoVersion": "rust",
        "Os": "linux",
        "Arch": arch,
        "BuildTime": "",
        "Context": "default",
    });
    let all = json!({"Client": client, "Server": sv});
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        return render(f, &all);
    }
    let mut out = String::new();
    out.push_str("Client:\n");
    let line = |out: &mut String, indent: &str, k: &str, v: &str| {
        let width = 19 - indent.len();
        let l = format!("{indent}{:<width$}{v}", format!("{k}:"));
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, " ", "Version", env!("CARGO_PKG_VERSION"));
    line(&mut out, " ", "API version", &server.api_version);
    line(&mut out, " ", "Go version", "rust");
    line(&mut out, " ", "Git commit", "");
    line(&mut out, " ", "Built", "");
    line(&mut out, " ", "OS/Arch", &format!("linux/{arch}"));
    line(&mut out, " ", "Context", "default");
    out.push_str("\nServer: Berth\n Engine:\n");
    line(&mut out, "  ", "Version", &server.version);
    line(
        &mut out,
        "  ",
        "API version",
        &format!(
            "{} (minimum version {})",
            server.api_version, server.min_api_version
        ),
    );
    line(&mut out, "  ", "Go version", &server.go_version);
    line(&mut out, "  ", "Git commit", &server.git_commit);
    line(&mut out, "  ", "Built", &server.build_time);
    line(
        &mut out,
        "  ",
        "OS/Arch",
        &format!("{}/{}", server.os, server.arch),
    );
    line(&mut out, "  ", "Experimental", "false");
    print!("{out}");
    Ok(())
}

pub fn info(ctx: &Ctx, a: FormatArgs) -> Result<()> {
    let i = ops::system::info(&ctx.engine)?;
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        return render(f, &serde_json::to_value(&i)?);
    }
    let mut o = String::new();
    let mut p = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    p("Client:".into());
    p(" Context:    default".into());
    p(" Debug Mode: false".into());
    p(String::new());
    p("Server:".into());
    p(format!(" Containers: {}", i.containers));
    p(format!("  Running: {}", i.containers_running));
    p(format!("  Paused: {}", i.containers_paused));
    p(format!("  Stopped: {}", i.containers_stopped));
    p(format!(" Images: {}", i.images));
    p(format!(" Server Version: {}", i.server_version));
    p(format!(" Storage Driver: {}", i.driver));
    p(format!(" Logging Driver: {}", i.logging_driver));
    p(format!(" Cgroup Driver: {}", i.cgroup_driver));
    p(format!(" Cgroup Version: {}", i.cgroup_version));
    p(" Plugins:".into());
    p(format!("  Volume: {}", i.plugins.volume.join(" ")));
    p(format!("  Network: {}", i.plugins.network.join(" ")));
    p(format!("  Log: {}", i.plugins.log.join(" ")));
    p(format!(" Swarm: {}", i.swarm.local_node_state));
    let runtimes: Vec<&str> = i.runtimes.keys().map(String::as_str).collect();
    p(format!(" Runtimes: {}", runtimes.join(" ")));
    p(format!(" Default Runtime: {}", i.default_runtime));
    p(format!(" Init Binary: {}", i.init_binary));
    p(" Security Options:".into());
    for s in &i.security_options {
        let mut parts = s.split(',');
        let name = parts
            .next()
            .unwrap_or("")
            .trim_start_matches("name=")
            .to_string();
        p(format!("  {name}"));
        for kv in parts {
            if let Some((k, v)) = kv.split_once('=') {
                let mut k = k.to_string();
                if let Some(c) = k.get_mut(0..1) {
                    c.make_ascii_uppercase();
                }
                p(format!("   {k}: {v}"));
            }
        }
    }
    p(format!(" Kernel Version: {}", i.kernel_version));
    p(format!(" Operating System: {}", i.operating_system));
    p(format!(" OSType: {}", i.os_type));
    p(format!(" Architecture: {}", i.architecture));
    p(format!(" CPUs: {}", i.ncpu));
    p(format!(" Total Memory: {}", binary_size(i.mem_total)));
    p(format!(" Name: {}", i.name));
    p(format!(" ID: {}", i.id));
    p(format!(" Docker Root Dir: {}", i.docker_root_dir));
    p(" Debug Mode: false".into());
    p(format!(" Registry: {}", i.index_server_address));
    p(" Labels:".into());
    p(" Experimental: false".into());
    p(" Insecure Registries:".into());
    for r in &i.registry_config.insecure_registry_cidrs {
        p(format!("  {r}"));
    }
    for (name, idx) in &i.registry_config.index_configs {
        if !idx.secure {
            p(format!("  {name}"));
        }
    }
    p(format!(" Live Restore Enabled: {}", i.live_restore_enabled));
    print!("{o}");
    for w in &i.warnings {
        eprintln!("WARNING: {w}");
    }
    Ok(())
}

/// `7.763GiB`, as docker's info prints memory.
fn binary_size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes.max(0) as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{}", UNITS[u])
}

fn percent(part: i64, total: i64) -> String {
    if total <= 0 {
        return "0%".into();
    }
    format!("{}%", part * 100 / total)
}

pub fn df(ctx: &Ctx, a: DfArgs) -> Result<()> {
    let du = df::disk_usage(&ctx.engine)?;
    let rows = du.summary();
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let values: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "Type": r.kind,
                    "TotalCount": r.total_count,
                    "Active": r.active,
                    "Size": human_size(r.size as u64),
                    "Reclaimable": format!("{} ({})", human_size(r.reclaimable as u64), percent(r.reclaimable, r.size)),
                })
            })
            .collect();
        super::format::print_formatted(f, "", &values, &berth::template::default_header)?;
        return Ok(());
    }
    if !a.verbose {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let reclaim = if r.kind == "Images" || r.kind == "Local Volumes" {
                    format!(
                        "{} ({})",
                        human_size(r.reclaimable as u64),
                        percent(r.reclaimable, r.size)
                    )
                } else {
                    human_size(r.reclaimable as u64)
                };
                vec![
                    r.kind.clone(),
                    r.total_count.to_string(),
                    r.active.to_string(),
                    human_size(r.size as u64),
                    reclaim,
                ]
            })
            .collect();
        super::format::print_table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &table);
        return Ok(());
    }
    println!("Images space usage:\n");
    let mut t = Vec::new();
    for i in &du.images {
        let (repo, tag) = i
            .repo_tags
            .first()
            .and_then(|t| t.rsplit_once(':'))
            .map_or(("<none>".to_string(), "<none>".to_string()), |(r, t)| {
                (r.to_string(), t.to_string())
            });
        let id = i.id.trim_start_matches("sha256:");
        t.push(vec![
            repo,
            tag,
            id[..12.min(id.len())].to_string(),
            i.created_at
                .as_deref()
                .map_or_else(|| "N/A".into(), |c| human_age(Some(c))),
            human_size(i.size.max(0) as u64),
            human_size(i.shared_size.max(0) as u64),
            human_size(i.size.max(0) as u64),
            i.containers.max(0).to_string(),
        ]);
    }
    super::format::print_table(
        &[
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ],
        &t,
    );
    println!("\nContainers space usage:\n");
    let mut t = Vec::new();
    for c in &du.containers {
        let s = &c.summary;
        t.push(vec![
            s.id[..12.min(s.id.len())].to_string(),
            s.image.clone(),
            format!("{:?}", s.command),
            "0".into(),
            human_size(c.size_rw.max(0) as u64),
            human_age(Some(&s.created_at)),
            s.status.clone(),
            s.names
                .first()
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default(),
        ]);
    }
    super::format::print_table(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "LOCAL VOLUMES",
            "SIZE",
            "CREATED",
            "STATUS",
            "NAMES",
        ],
        &t,
    );
    println!("\nLocal Volumes space usage:\n");
    let t: Vec<Vec<String>> = du
        .volumes
        .iter()
        .map(|v| {
            vec![
                v.volume.name.clone(),
                v.usage.ref_count.to_string(),
                human_size(v.usage.size.max(0) as u64),
            ]
        })
        .collect();
    super::format::print_table(&["VOLUME NAME", "LINKS", "SIZE"], &t);
    println!("\nBuild cache usage: 0B\n");
    println!("CACHE ID   CACHE TYPE   SIZE   CREATED   LAST USED   USAGE   SHARED");
    Ok(())
}

pub fn prune(ctx: &Ctx, a: PruneArgs) -> Result<()> {
    if !a.force && std::io::stdin().is_terminal() {
        let mut what = vec![
            "all stopped containers",
            "all networks not used by at least one container",
        ];
        if a.volumes {
            what.push("all anonymous volumes not used by at least one container");
        }
        what.push(if a.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        });
        what.push("all build cache");
        println!("WARNING! This will remove:");
        for w in what {
            println!("  - {w}");
        }
        print!("\nAre you sure you want to continue? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Ok(());
        }
    }
    let e = &ctx.engine;
    let mut reclaimed = 0u64;
    let c = containers::prune(e, &Default::default())?;
    for line in &c.errors {
        eprintln!("{line}");
    }
    if !c.containers_deleted.is_empty() {
        println!("Deleted Containers:");
        for id in &c.containers_deleted {
            println!("{id}");
        }
        println!();
    }
    reclaimed += c.space_reclaimed;
    let n = networks::prune(e)?;
    if !n.networks_deleted.is_empty() {
        println!("Deleted Networks:");
        for id in &n.networks_deleted {
            println!("{id}");
        }
        println!();
    }
    if a.volumes {
        let v = volumes::prune(e, false, &Default::default())?;
        if !v.volumes_deleted.is_empty() {
            println!("Deleted Volumes:");
            for id in &v.volumes_deleted {
                println!("{id}");
            }
            println!();
        }
        reclaimed += v.space_reclaimed;
    }
    let i = images::prune(e, a.all)?;
    if !i.images_deleted.is_empty() {
        println!("Deleted Images:");
        for item in &i.images_deleted {
            if let Some(n) = &item.untagged {
                println!("untagged: {n}");
            }
            if let Some(d) = &item.deleted {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    reclaimed += i.space_reclaimed;
    println!("Total reclaimed space: {}", human_size(reclaimed));
    Ok(())
}
