//! The other verbs: exec, start, stop, restart, kill, rm, pause, unpause, pull, push,
//! build, config, top, port, images, wait, version.

use std::io::{IsTerminal, Write};

use anyhow::{bail, Result};
use berth::ops::compose::{self as c, ProjectContainer};
use berth::ops::containers::{self, ExecStdio, RemoveOptions, StopOptions};
use berth::ops::models::{ExecConfig, WaitCondition};
use berth::ops::{images, Cancel, OpsError};

use super::{Args, Ctx};
use crate::cli::Exit;

#[derive(Debug, clap::Args)]
pub struct Services {
    services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Specify a shutdown timeout in seconds
    #[arg(short, long)]
    timeout: Option<i64>,
    services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// SIGNAL to send to the container
    #[arg(short, long, default_value = "SIGKILL")]
    signal: String,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    remove_orphans: bool,
    services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Don't ask to confirm removal
    #[arg(short, long)]
    force: bool,
    /// Stop the containers, if required, before removing
    #[arg(short, long)]
    stop: bool,
    /// Remove any anonymous volumes attached to containers
    #[arg(short, long)]
    volumes: bool,
    services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Detached mode: Run command in the background
    #[arg(short, long)]
    detach: bool,
    /// Disable pseudo-TTY allocation. By default `docker compose exec` allocates a TTY
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Set environment variables
    #[arg(short, long)]
    env: Vec<String>,
    /// Run the command as this user
    #[arg(short, long)]
    user: Option<String>,
    /// Path to workdir directory for this command
    #[arg(short, long)]
    workdir: Option<String>,
    /// Give extended privileges to the process
    #[arg(long)]
    privileged: bool,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value = "1")]
    index: u32,
    /// Keep STDIN open even if not attached
    #[arg(short, long, default_value = "true", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    interactive: bool,
    service: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Pull without printing progress information
    #[arg(short, long)]
    quiet: bool,
    /// Ignore images that can be built
    #[arg(long)]
    ignore_buildable: bool,
    /// Pull what it can and ignores images with pull failures
    #[arg(long)]
    ignore_pull_failures: bool,
    services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Format the output. Values: [yaml | json]
    #[arg(long, default_value = "yaml")]
    format: String,
    /// Only validate the configuration, don't print anything
    #[arg(short, long)]
    quiet: bool,
    /// Print the service names, one per line
    #[arg(long)]
    services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    volumes: bool,
    /// Print the image names, one per line
    #[arg(long)]
    images: bool,
    /// Print the profile names, one per line
    #[arg(long)]
    profiles: bool,
    /// Print the service config hash, one per line ("*" for all)
    #[arg(long)]
    hash: Option<String>,
    /// Save to file (default to stdout)
    #[arg(short, long)]
    output: Option<std::path::PathBuf>,
    #[arg(value_name = "SERVICE")]
    names: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PortArgs {
    /// tcp or udp
    #[arg(long, default_value = "tcp")]
    protocol: String,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value = "1")]
    index: u32,
    service: String,
    private_port: u16,
}

#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Only display IDs
    #[arg(short, long)]
    quiet: bool,
    /// Format the output ("table"|"json")
    #[arg(long, default_value = "table")]
    format: String,
    services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// Drops project when the first container stops
    #[arg(long)]
    down_project: bool,
    #[arg(required = true)]
    services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// Shows only Compose's version number
    #[arg(long)]
    short: bool,
    /// Format the output. Values: [pretty | json]
    #[arg(short, long, default_value = "pretty")]
    format: String,
}

/// The project's containers of `services`, with its model when the files load.
fn pick(ctx: &Ctx, args: &Args, services: &[String], all: bool) -> Result<Vec<ProjectContainer>> {
    let (name, model) = args.project_or_name()?;
    Ok(c::select(
        &ctx.engine,
        &name,
        model.as_ref(),
        services,
        all,
    )?)
}

/// Runs `f` on every container at once; the first error is returned after all ran.
fn each(
    list: &[ProjectContainer],
    f: impl Fn(&ProjectContainer) -> Result<(), OpsError> + Sync,
) -> Result<()> {
    let errors = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for pc in list {
            let f = &f;
            let errors = &errors;
            s.spawn(move || {
                if let Err(e) = f(pc) {
                    if let Ok(mut v) = errors.lock() {
                        v.push(e);
                    }
                }
            });
        }
    });
    match errors.into_inner().unwrap_or_default().into_iter().next() {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

pub fn exec(ctx: &Ctx, args: &Args, a: &ExecArgs) -> Result<()> {
    let list = pick(ctx, args, std::slice::from_ref(&a.service), false)?;
    let Some(pc) = list.iter().find(|c| c.number == a.index) else {
        bail!("service {:?} is not running", a.service);
    };
    if !pc.running() {
        bail!("service {:?} is not running", a.service);
    }
    let env = a
        .env
        .iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect();
    let tty = !a.no_tty && std::io::stdin().is_terminal();
    let config = ExecConfig {
        attach_stdin: a.interactive && !a.detach,
        attach_stdout: true,
        attach_stderr: true,
        detach: a.detach,
        tty,
        env,
        cmd: a.command.clone(),
        user: a.user.clone().unwrap_or_default(),
        working_dir: a.workdir.clone().unwrap_or_default(),
        privileged: a.privileged,
    };
    let mut child = containers::exec(&ctx.engine, &pc.name, &config, ExecStdio::Inherit)?;
    let code = child.wait()?;
    if code != 0 {
        return Err(Exit::silent(code).into());
    }
    Ok(())
}

pub fn start(ctx: &Ctx, args: &Args, a: &Services) -> Result<()> {
    // Dependencies first: one at a time, in the model's order.
    for pc in pick(ctx, args, &a.services, false)? {
        if pc.running() {
            continue;
        }
        eprintln!(" Container {}  Starting", pc.name);
        containers::start(&ctx.engine, &pc.name)?;
        eprintln!(" Container {}  Started", pc.name);
    }
    Ok(())
}

pub fn stop(ctx: &Ctx, args: &Args, a: &StopArgs, restart: bool) -> Result<()> {
    let list = pick(ctx, args, &a.services, false)?;
    let opts = StopOptions {
        signal: None,
        timeout: a.timeout,
    };
    each(&list, |pc| {
        if restart {
            eprintln!(" Container {}  Restarting", pc.name);
            containers::restart(&ctx.engine, &pc.name, &opts)?;
            eprintln!(" Container {}  Started", pc.name);
        } else if pc.running() || pc.summary.state == "paused" {
            eprintln!(" Container {}  Stopping", pc.name);
            containers::stop(&ctx.engine, &pc.name, &opts)?;
            eprintln!(" Container {}  Stopped", pc.name);
        }
        Ok(())
    })
}

pub fn kill(ctx: &Ctx, args: &Args, a: &KillArgs) -> Result<()> {
    let list: Vec<ProjectContainer> = pick(ctx, args, &a.services, false)?
        .into_iter()
        .filter(ProjectContainer::running)
        .collect();
    each(&list, |pc| {
        eprintln!(" Container {}  Killing", pc.name);
        containers::kill(&ctx.engine, &pc.name, &a.signal)?;
        eprintln!(" Container {}  Killed", pc.name);
        Ok(())
    })
}

pub fn rm(ctx: &Ctx, args: &Args, a: &RmArgs) -> Result<()> {
    let list = pick(ctx, args, &a.services, false)?;
    if a.stop {
        each(&list, |pc| {
            if pc.running() {
                eprintln!(" Container {}  Stopping", pc.name);
                containers::stop(&ctx.engine, &pc.name, &StopOptions::default())?;
                eprintln!(" Container {}  Stopped", pc.name);
            }
            Ok(())
        })?;
    }
    let list: Vec<ProjectContainer> = pick(ctx, args, &a.services, false)?
        .into_iter()
        .filter(|c| !c.running() && c.summary.state != "paused")
        .collect();
    if list.is_empty() {
        eprintln!("No stopped containers");
        return Ok(());
    }
    let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
    eprintln!("Going to remove {}", names.join(", "));
    if !a.force && std::io::stdin().is_terminal() {
        eprint!("? Are you sure you want to remove these containers? (y/N) ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    each(&list, |pc| {
        eprintln!(" Container {}  Removing", pc.name);
        containers::remove(
            &ctx.engine,
            &pc.name,
            RemoveOptions {
                force: false,
                volumes: a.volumes,
            },
        )?;
        eprintln!(" Container {}  Removed", pc.name);
        Ok(())
    })
}

pub fn pause(ctx: &Ctx, args: &Args, a: &Services, pause: bool) -> Result<()> {
    let list = pick(ctx, args, &a.services, false)?;
    each(&list, |pc| {
        if pause {
            containers::pause(&ctx.engine, &pc.name)?;
            eprintln!(" Container {}  Paused", pc.name);
        } else {
            containers::unpause(&ctx.engine, &pc.name)?;
            eprintln!(" Container {}  Unpaused", pc.name);
        }
        Ok(())
    })
}

pub fn pull(ctx: &Ctx, args: &Args, a: &PullArgs) -> Result<()> {
    let p = args.project(&a.services)?;
    let progress = if a.quiet {
        berth::ops::Progress::discard()
    } else {
        args.progress()
    };
    crate::cli::block_on(async {
        c::pull_missing(
            &ctx.engine,
            &p,
            &a.services,
            true,
            &progress,
            &Cancel::new(),
        )
        .await
        .map_err(Into::into)
    })
}

pub fn push(ctx: &Ctx, args: &Args, a: &Services) -> Result<()> {
    let p = args.project(&a.services)?;
    for (name, svc) in &p.services {
        if !a.services.is_empty() && !a.services.contains(name) {
            continue;
        }
        let (Some(image), Some(_)) = (&svc.image, &svc.build) else {
            continue;
        };
        eprintln!(" Image {image}  Pushing");
        crate::cli::block_on(async {
            images::push(
                &ctx.engine,
                image,
                false,
                &berth::ops::Progress::discard(),
                &Cancel::new(),
            )
            .await
            .map_err(Into::into)
        })?;
        eprintln!(" Image {image}  Pushed");
    }
    Ok(())
}

pub fn build(ctx: &Ctx, args: &Args, a: &Services) -> Result<()> {
    let p = args.project(&a.services)?;
    let progress = args.progress();
    for (name, svc) in &p.services {
        if svc.build.is_some() && (a.services.is_empty() || a.services.contains(name)) {
            c::build(&ctx.engine, &p, name, &progress)?;
        }
    }
    Ok(())
}

pub fn config(args: &Args, a: &ConfigArgs) -> Result<()> {
    let mut p = args.project(&a.names)?;
    if !a.names.is_empty() {
        p.services.retain(|n, _| a.names.contains(n));
    }
    if a.quiet {
        return Ok(());
    }
    let text = if a.services {
        p.services.keys().map(|s| format!("{s}\n")).collect()
    } else if a.volumes {
        c::volume_names(&p)
            .iter()
            .map(|s| format!("{s}\n"))
            .collect()
    } else if a.images {
        p.services
            .iter()
            .map(|(n, s)| format!("{}\n", c::image_name(&p, n, s)))
            .collect()
    } else if a.profiles {
        let mut all: Vec<&String> = p
            .services
            .values()
            .chain(p.disabled.values())
            .flat_map(|s| s.profiles.iter())
            .collect();
        all.sort();
        all.dedup();
        all.iter().map(|s| format!("{s}\n")).collect()
    } else if let Some(h) = &a.hash {
        p.services
            .iter()
            .filter(|(n, _)| h == "*" || h.split(',').any(|x| x == *n))
            .map(|(n, s)| format!("{n} {}\n", c::config_hash(s)))
            .collect()
    } else {
        let format = match a.format.as_str() {
            "yaml" => c::Format::Yaml,
            "json" => c::Format::Json,
            other => bail!("flag --format: invalid value {other:?} (yaml or json)"),
        };
        c::render(&p, format)?
    };
    match &a.output {
        Some(path) => std::fs::write(path, text)?,
        None => print!("{text}"),
    }
    Ok(())
}

pub fn top(ctx: &Ctx, args: &Args, a: &Services) -> Result<()> {
    for pc in pick(ctx, args, &a.services, false)?
        .iter()
        .filter(|c| c.running())
    {
        let t = containers::top(&ctx.engine, &pc.name, &[])?;
        println!("{}", pc.name);
        std::io::stdout().write_all(&t.raw)?;
        println!();
    }
    Ok(())
}

pub fn port(ctx: &Ctx, args: &Args, a: &PortArgs) -> Result<()> {
    let list = pick(ctx, args, std::slice::from_ref(&a.service), false)?;
    let Some(pc) = list.iter().find(|c| c.number == a.index) else {
        bail!(
            "service {:?} has no container number {}",
            a.service,
            a.index
        );
    };
    let i = containers::inspect(&ctx.engine, &pc.name)?;
    let key = format!("{}/{}", a.private_port, a.protocol);
    match i.network_settings.ports.get(&key).and_then(|b| b.first()) {
        Some(b) => {
            let ip = if b.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                &b.host_ip
            };
            println!("{ip}:{}", b.host_port);
            Ok(())
        }
        None => bail!("no port {key} for container {}", pc.name),
    }
}

pub fn images(ctx: &Ctx, args: &Args, a: &ImagesArgs) -> Result<()> {
    let list = pick(ctx, args, &a.services, false)?;
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for pc in &list {
        let image = &pc.summary.image;
        let (repo, tag) = match image.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((r, t)) => (r.to_string(), t.to_string()),
            None => (image.clone(), "latest".to_string()),
        };
        let id = pc
            .summary
            .image_id
            .trim_start_matches("sha256:")
            .to_string();
        let size = images::inspect(&ctx.engine, image)
            .map(|i| i.size)
            .unwrap_or(0);
        if a.quiet {
            println!("{}", &id[..12.min(id.len())]);
            continue;
        }
        json.push(serde_json::json!({"ContainerName": pc.name, "Repository": repo, "Tag": tag, "ID": id, "Size": size}));
        rows.push(vec![
            pc.name.clone(),
            repo,
            tag,
            id[..12.min(id.len())].to_string(),
            crate::cli::format::human_size(size),
        ]);
    }
    if a.quiet {
        return Ok(());
    }
    if a.format == "json" {
        println!("{}", serde_json::Value::Array(json));
    } else {
        crate::cli::format::print_table(
            &["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"],
            &rows,
        );
    }
    Ok(())
}

pub fn wait(ctx: &Ctx, args: &Args, a: &WaitArgs) -> Result<()> {
    let list = pick(ctx, args, &a.services, false)?;
    if list.is_empty() {
        bail!("no containers for services {}", a.services.join(", "));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    for pc in list {
        let engine = ctx.engine.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            let r = containers::wait(&engine, &pc.name, WaitCondition::NotRunning, &Cancel::new());
            let _ = tx.send(r.map(|r| r.status_code));
        });
    }
    let code = rx.recv()??;
    println!("{code}");
    if a.down_project {
        let (name, model) = args.project_or_name()?;
        c::down(
            &ctx.engine,
            &name,
            model.as_ref(),
            &c::DownOptions::default(),
            &args.progress(),
        )?;
    }
    if code != 0 {
        return Err(Exit::silent(code as i32).into());
    }
    Ok(())
}

pub fn version(a: &VersionArgs) -> Result<()> {
    if a.short {
        println!("{}", c::COMPOSE_VERSION);
    } else if a.format == "json" {
        println!(
            "{}",
            serde_json::json!({"version": format!("v{}", c::COMPOSE_VERSION)})
        );
    } else {
        println!(
            "Docker Compose version v{} (berth {})",
            c::COMPOSE_VERSION,
            env!("CARGO_PKG_VERSION")
        );
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value = "1")]
    index: u32,
    /// Include containers created by the run command
    #[arg(long)]
    all: bool,
    /// SERVICE:SRC_PATH or a host path
    src: String,
    /// SERVICE:DEST_PATH or a host path
    dest: String,
}

/// `cp`: `SERVICE:PATH` becomes the service's container, then `berth cp` does the copy.
pub fn cp(ctx: &Ctx, args: &Args, a: &CpArgs) -> Result<()> {
    let container_of = |arg: &str| -> Result<String> {
        let Some((service, path)) = containers::split_copy_arg(arg) else {
            return Ok(arg.to_string());
        };
        let list = pick(ctx, args, &[service.to_string()], a.all)?;
        let Some(pc) = list.iter().find(|c| c.number == a.index) else {
            bail!("service {service:?} has no container number {}", a.index);
        };
        Ok(format!("{}:{path}", pc.name))
    };
    let (src, dest) = (container_of(&a.src)?, container_of(&a.dest)?);
    let mut argv = vec!["cp".to_string()];
    if a.archive {
        argv.push("--archive".into());
    }
    if a.follow_link {
        argv.push("--follow-link".into());
    }
    argv.extend(["--".to_string(), src, dest]);
    use clap::{Args as _, FromArgMatches as _};
    let m =
        crate::cli::cp::Args::augment_args(clap::Command::new("cp")).try_get_matches_from(argv)?;
    crate::cli::cp::run(ctx, crate::cli::cp::Args::from_arg_matches(&m)?)
}
