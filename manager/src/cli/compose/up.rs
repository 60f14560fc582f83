//! `compose up`, `create`, `down` and `run`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth::ops::compose::{self as c, DownOptions, RemoveImages, RunOptions, UpOptions};
use berth::ops::containers::{self, CreateOptions, LogsOptions, RunMode, Running, StopOptions};
use berth::ops::Cancel;

use super::logs::{follow, Printer};
use super::{Args, Ctx};
use crate::cli::Exit;

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Detached mode: Run containers in the background
    #[arg(short, long)]
    detach: bool,
    /// Build images before starting containers
    #[arg(long)]
    build: bool,
    /// Don't build an image, even if it's policy
    #[arg(long)]
    no_build: bool,
    /// Pull image before running ("always"|"missing"|"never")
    #[arg(long, default_value = "missing")]
    pull: String,
    /// Pull without printing progress information
    #[arg(long)]
    quiet_pull: bool,
    /// Wait for services to be running|healthy. Implies detached mode
    #[arg(long)]
    wait: bool,
    /// Maximum duration to wait for the project to be running|healthy
    #[arg(long)]
    wait_timeout: Option<u64>,
    /// Scale SERVICE to NUM instances. Overrides the `scale` setting in the Compose file if present
    #[arg(long, value_name = "SERVICE=NUM")]
    scale: Vec<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    remove_orphans: bool,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long)]
    force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long)]
    no_recreate: bool,
    /// Don't start linked services
    #[arg(long)]
    no_deps: bool,
    /// Don't start the services after creating them
    #[arg(long)]
    no_start: bool,
    /// Stops all containers if any container was stopped. Incompatible with -d
    #[arg(long)]
    abort_on_container_exit: bool,
    /// Return the exit code of the selected service container. Implies --abort-on-container-exit
    #[arg(long)]
    exit_code_from: Option<String>,
    /// Use this timeout in seconds for container shutdown when attached or when containers are already running
    #[arg(short, long)]
    timeout: Option<i64>,
    /// Produce monochrome output
    #[arg(long)]
    no_color: bool,
    /// Don't print prefix in logs
    #[arg(long)]
    no_log_prefix: bool,
    /// Show timestamps
    #[arg(long)]
    timestamps: bool,
    /// Recreate anonymous volumes instead of retrieving data from the previous containers
    #[arg(short = 'V', long)]
    renew_anon_volumes: bool,
    services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Build images before starting containers
    #[arg(long)]
    build: bool,
    /// Don't build an image, even if it's policy
    #[arg(long)]
    no_build: bool,
    /// Pull image before running ("always"|"missing"|"never")
    #[arg(long, default_value = "missing")]
    pull: String,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long)]
    force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long)]
    no_recreate: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    remove_orphans: bool,
    /// Scale SERVICE to NUM instances
    #[arg(long, value_name = "SERVICE=NUM")]
    scale: Vec<String>,
    services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// Remove named volumes declared in the "volumes" section of the Compose file and anonymous volumes attached to containers
    #[arg(short, long)]
    volumes: bool,
    /// Remove images used by services. "local" remove only images that don't have a custom tag ("local"|"all")
    #[arg(long)]
    rmi: Option<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    remove_orphans: bool,
    /// Specify a shutdown timeout in seconds
    #[arg(short, long)]
    timeout: Option<i64>,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Disable pseudo-TTY allocation (default: auto-detected)
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long, default_value = "true", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    interactive: bool,
    /// Set environment variables
    #[arg(short, long)]
    env: Vec<String>,
    /// Add or override a label
    #[arg(short, long)]
    label: Vec<String>,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Override the entrypoint of the image
    #[arg(long)]
    entrypoint: Option<String>,
    /// Don't start linked services
    #[arg(long)]
    no_deps: bool,
    /// Publish a container's port(s) to the host
    #[arg(short, long)]
    publish: Vec<String>,
    /// Run command with all service's ports enabled and mapped to the host
    #[arg(long)]
    service_ports: bool,
    /// Run as specified username or uid
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Build image before starting container
    #[arg(long)]
    build: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    remove_orphans: bool,
    service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn scales(values: &[String]) -> Result<BTreeMap<String, u32>> {
    values
        .iter()
        .map(|v| {
            let (s, n) = v
                .split_once('=')
                .with_context(|| format!("flag --scale: {v:?} is not SERVICE=NUM"))?;
            let n = n
                .parse()
                .with_context(|| format!("flag --scale: {n:?} is not a number"))?;
            Ok((s.to_string(), n))
        })
        .collect()
}

fn pull(
    ctx: &Ctx,
    p: &c::Project,
    services: &[String],
    policy: &str,
    progress: &berth::ops::Progress,
) -> Result<()> {
    match policy {
        "never" => Ok(()),
        "missing" | "always" => crate::cli::block_on(async {
            c::pull_missing(
                &ctx.engine,
                p,
                services,
                policy == "always",
                progress,
                &Cancel::new(),
            )
            .await
            .map_err(Into::into)
        }),
        other => bail!("flag --pull: invalid value {other:?} (always, missing or never)"),
    }
}

pub fn up(ctx: &Ctx, args: &Args, a: &UpArgs) -> Result<()> {
    if a.detach && (a.abort_on_container_exit || a.exit_code_from.is_some()) {
        bail!("--abort-on-container-exit and --exit-code-from cannot be combined with --detach");
    }
    let p = args.project(&a.services)?;
    let progress = args.progress();
    pull(ctx, &p, &a.services, &a.pull, &progress)?;
    let opts = UpOptions {
        services: a.services.clone(),
        no_deps: a.no_deps,
        force_recreate: a.force_recreate,
        no_recreate: a.no_recreate,
        remove_orphans: a.remove_orphans,
        scale: scales(&a.scale)?,
        start: !a.no_start,
        build: a.build,
        no_build: a.no_build,
        wait: a.wait,
        timeout: Duration::from_secs(a.wait_timeout.unwrap_or(120)),
        stop_timeout: a.timeout,
    };
    let cancel = Cancel::new();
    // The foreground shows what the containers print from now on, as attaching does.
    let since = std::time::SystemTime::now();
    c::up(&ctx.engine, &p, &opts, &progress, &cancel)?;
    if a.detach || a.wait || a.no_start {
        return Ok(());
    }
    attached(ctx, &p, a, since)
}

/// The foreground of `up`: the containers' logs until they all stop; ^C stops them.
fn attached(ctx: &Ctx, p: &c::Project, a: &UpArgs, since: std::time::SystemTime) -> Result<()> {
    let list = c::select(&ctx.engine, &p.name, Some(p), &a.services, false)?;
    let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
    eprintln!("Attaching to {}", names.join(", "));
    let printer = Printer::new(&list, a.no_color, !a.no_log_prefix, a.timestamps);
    let cancel = Cancel::new();
    let opts = LogsOptions {
        follow: true,
        since: Some(since),
        ..LogsOptions::default()
    };
    let handles = follow(ctx, &list, &printer, &opts, &cancel);
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second ^C while stopping exits at once (130), as docker compose's does.
        signal_hook::flag::register_conditional_shutdown(sig, 130, interrupted.clone())
            .context("installing a signal handler")?;
        signal_hook::flag::register(sig, interrupted.clone())
            .context("installing a signal handler")?;
    }
    let abort = a.abort_on_container_exit || a.exit_code_from.is_some();
    let mut code = 0;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if interrupted.load(Ordering::SeqCst) {
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
            code = 130;
            break;
        }
        let now = c::select(&ctx.engine, &p.name, Some(p), &a.services, false)?;
        let exited: Vec<_> = now.iter().filter(|c| !c.running()).collect();
        if abort {
            if let Some(first) = exited.first() {
                let from = match &a.exit_code_from {
                    Some(s) => now.iter().find(|c| &c.service == s),
                    None => Some(*first),
                };
                if a.exit_code_from.is_none() || from.is_some_and(|c| !c.running()) {
                    code = from.map_or(0, |c| exit_code(ctx, &c.name));
                    eprintln!("Aborting on container exit...");
                    break;
                }
            }
        }
        if exited.len() == now.len() {
            for c in &now {
                eprintln!("{} exited with code {}", c.name, exit_code(ctx, &c.name));
            }
            if let Some(s) = &a.exit_code_from {
                code = now
                    .iter()
                    .find(|c| &c.service == s)
                    .map_or(0, |c| exit_code(ctx, &c.name));
            }
            return finish(handles, code);
        }
    }
    let list = c::select(&ctx.engine, &p.name, Some(p), &a.services, false)?;
    std::thread::scope(|s| {
        for pc in &list {
            s.spawn(|| {
                eprintln!(" Container {}  Stopping", pc.name);
                let _ = containers::stop(
                    &ctx.engine,
                    &pc.name,
                    &StopOptions {
                        signal: None,
                        timeout: a.timeout,
                    },
                );
                eprintln!(" Container {}  Stopped", pc.name);
            });
        }
    });
    cancel.cancel();
    finish(handles, code)
}

fn finish(handles: Vec<std::thread::JoinHandle<()>>, code: i32) -> Result<()> {
    for h in handles {
        let _ = h.join();
    }
    if code != 0 {
        return Err(Exit::silent(code).into());
    }
    Ok(())
}

fn exit_code(ctx: &Ctx, name: &str) -> i32 {
    containers::inspect(&ctx.engine, name)
        .map(|i| i.state.exit_code)
        .unwrap_or(-1)
}

pub fn create(ctx: &Ctx, args: &Args, a: &CreateArgs) -> Result<()> {
    let p = args.project(&a.services)?;
    let progress = args.progress();
    pull(ctx, &p, &a.services, &a.pull, &progress)?;
    let opts = UpOptions {
        services: a.services.clone(),
        force_recreate: a.force_recreate,
        no_recreate: a.no_recreate,
        remove_orphans: a.remove_orphans,
        scale: scales(&a.scale)?,
        start: false,
        build: a.build,
        no_build: a.no_build,
        ..UpOptions::default()
    };
    c::up(&ctx.engine, &p, &opts, &progress, &Cancel::new())?;
    Ok(())
}

pub fn down(ctx: &Ctx, args: &Args, a: &DownArgs) -> Result<()> {
    let (name, model) = args.project_or_name()?;
    let images = match a.rmi.as_deref() {
        None => None,
        Some("local") => Some(RemoveImages::Local),
        Some("all") => Some(RemoveImages::All),
        Some(other) => bail!("flag --rmi: invalid value {other:?} (local or all)"),
    };
    let opts = DownOptions {
        volumes: a.volumes,
        remove_orphans: a.remove_orphans,
        images,
        timeout: a.timeout,
    };
    c::down(&ctx.engine, &name, model.as_ref(), &opts, &args.progress())?;
    Ok(())
}

pub fn run(ctx: &Ctx, args: &Args, a: &RunArgs) -> Result<()> {
    use std::io::IsTerminal;
    let p = args.project(std::slice::from_ref(&a.service))?;
    let progress = args.progress();
    let svc = p
        .services
        .get(&a.service)
        .with_context(|| format!("no such service: {}", a.service))?;
    let deps: Vec<String> = if a.no_deps {
        Vec::new()
    } else {
        berth::ops::compose::model::Service::dependencies(svc)
            .map(|(d, _)| d.clone())
            .collect()
    };
    let mut services = deps.clone();
    services.push(a.service.clone());
    pull(ctx, &p, &services, "missing", &progress)?;
    if deps.is_empty() {
        c::create_networks_and_volumes(&ctx.engine, &p, &progress)?;
    } else {
        let opts = UpOptions {
            services: deps,
            remove_orphans: a.remove_orphans,
            ..UpOptions::default()
        };
        c::up(&ctx.engine, &p, &opts, &progress, &Cancel::new())?;
    }
    let tty = !a.no_tty && std::io::stdin().is_terminal() && !a.detach;
    let entrypoint = match &a.entrypoint {
        Some(e) => Some(
            shlex::split(e)
                .with_context(|| format!("flag --entrypoint: unbalanced quotes in {e:?}"))?,
        ),
        None => None,
    };
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
    let opts = RunOptions {
        command: a.command.clone(),
        entrypoint,
        env,
        name: a.name.clone(),
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        service_ports: a.service_ports,
        publish: a.publish.clone(),
        tty,
        interactive: a.interactive && !a.detach,
        rm: a.rm,
        labels: a.label.clone(),
    };
    let (name, req) = c::run_request(&ctx.engine, &p, &a.service, &opts)?;
    let create = CreateOptions {
        name: Some(name.clone()),
        ..CreateOptions::default()
    };
    let mode = if a.detach {
        RunMode::Detached
    } else {
        RunMode::Attached {
            stdin: opts.interactive,
        }
    };
    match containers::run(&ctx.engine, &req, &create, mode).map_err(crate::cli::run::exit_for)? {
        Running::Detached { .. } => {
            println!("{name}");
            Ok(())
        }
        Running::Attached { attached, .. } => {
            let code = crate::cli::attach::stream(attached, !tty, crate::cli::attach::Shown::ALL)?;
            if code != 0 {
                return Err(Exit::silent(code).into());
            }
            Ok(())
        }
    }
}
