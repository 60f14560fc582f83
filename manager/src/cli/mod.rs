//! Command-line interface: one file per verb, each a thin layer over the library.

mod attach;
mod build;
mod compose;
mod container;
mod cp;
mod ctr;
mod dns;
mod exec;
mod format;
mod history;
mod images;
mod inspect;
mod kube;
mod load;
mod login;
mod logs;
mod monitor;
mod mount;
mod network;
mod pause;
mod port;
mod prune;
mod ps;
mod pull;
mod push;
mod rename;
mod rm;
mod rmi;
mod run;
mod run_flags;
mod save;
mod start;
mod stop;
mod system;
mod tag;
mod top;
mod volume;
mod wait;

use std::path::PathBuf;

use anyhow::{Context, Result};
use berth::ops::{Engine, EngineOptions, OpsError};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "A daemonless, docker-like container manager"
)]
pub struct Cli {
    /// Storage root (default /var/lib/berth for root)
    #[arg(long, global = true, env = "BERTH_ROOT")]
    root: Option<PathBuf>,
    /// Directory of config.toml and certs.d (default /etc/berth for root)
    #[arg(long, global = true, env = "BERTH_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Create a new container
    Create(run::CreateArgs),
    /// Start one or more stopped containers
    Start(start::Args),
    /// Stop one or more running containers
    Stop(stop::StopArgs),
    /// Kill one or more running containers
    Kill(stop::KillArgs),
    /// Restart one or more containers
    Restart(stop::StopArgs),
    /// Remove one or more containers
    Rm(rm::Args),
    /// List containers
    Ps(ps::Args),
    /// Fetch the logs of a container
    Logs(logs::Args),
    /// Execute a command in a running container
    Exec(exec::Args),
    /// Return low-level information on containers or images
    Inspect(container::InspectArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(wait::Args),
    /// Display the running processes of a container
    Top(top::Args),
    /// Pause all processes within one or more containers
    Pause(pause::Args),
    /// Unpause all processes within one or more containers
    Unpause(pause::Args),
    /// Rename a container
    Rename(rename::Args),
    /// List port mappings of a container
    Port(port::Args),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::Args),
    /// Manage containers
    #[command(subcommand)]
    Container(container::Command),
    /// The monitor of one container (started by berth itself)
    #[command(name = "__monitor", hide = true)]
    Monitor(monitor::Args),
    /// The embedded DNS resolver of one network (started by berth itself)
    #[command(name = "__dns", hide = true)]
    Dns(dns::Args),
    /// Download an image from a registry
    Pull(pull::Args),
    /// Upload an image to a registry
    Push(push::Args),
    /// List images
    Images(images::Args),
    /// Remove one or more images
    Rmi(rmi::Args),
    /// Create a tag TARGET that refers to SOURCE
    Tag(tag::Args),
    /// Log in to a registry
    Login(login::LoginArgs),
    /// Log out from a registry
    Logout(login::LogoutArgs),
    /// Save images to a tar archive (docker-archive or oci-archive)
    Save(save::Args),
    /// Load images from a tar archive
    Load(load::Args),
    /// Build an image from a Dockerfile
    Build(Box<build::Args>),
    /// Show the history of an image
    History(history::Args),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(network::Command),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volume::Command),
    /// Manage berth: the Engine API service
    #[command(subcommand)]
    System(system::Command),
    /// Define and run multi-container applications (docker compose)
    Compose(compose::Args),
    /// Play Kubernetes YAML as pods, and generate it from containers
    #[command(subcommand)]
    Kube(kube::Command),
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(images::Args),
    /// Display detailed information on images
    Inspect(inspect::Args),
    /// Remove unused images and blobs
    Prune(prune::Args),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(rmi::Args),
    /// Create a tag TARGET that refers to SOURCE
    Tag(tag::Args),
    /// Download an image from a registry
    Pull(pull::Args),
    /// Upload an image to a registry
    Push(push::Args),
    /// Save images to a tar archive
    Save(save::Args),
    /// Load images from a tar archive
    Load(load::Args),
    /// Build an image from a Dockerfile
    Build(Box<build::Args>),
    /// Show the history of an image
    History(history::Args),
    /// Mount an image's root filesystem read-only on a directory
    Mount(mount::MountArgs),
    /// Unmount an image mounted by `image mount`
    #[command(alias = "umount")]
    Unmount(mount::UnmountArgs),
}

/// What every verb gets: the engine the operations run on.
pub struct Ctx {
    pub engine: Engine,
}

/// An exit status to leave with (the container's, or docker's 125/126/127), with an optional
/// message printed first.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub message: Option<String>,
}

impl Exit {
    pub fn silent(code: i32) -> Self {
        Self {
            code,
            message: None,
        }
    }

    pub fn with_message(code: i32, message: String) -> Self {
        Self {
            code,
            message: Some(message),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(m) => f.write_str(m),
            None => write!(f, "exit status {}", self.code),
        }
    }
}

impl std::error::Error for Exit {}

/// Prints what an operation's cleanup reported, each line on stderr, before its error.
pub fn print_also(e: &OpsError) {
    for line in e.also() {
        eprintln!("{line}");
    }
}

/// Prints an error as docker does (`Error: ...`), after the lines its cleanup reported.
pub fn report(e: &anyhow::Error) {
    if let Some(ops) = e.downcast_ref::<OpsError>() {
        print_also(ops);
    }
    match e.downcast_ref::<Exit>() {
        Some(Exit {
            message: Some(m), ..
        }) => eprintln!("Error: {m}"),
        Some(Exit { message: None, .. }) => {}
        None => eprintln!("Error: {e:#}"),
    }
}

/// Progress of a pull or push on stdout: bars on a terminal, `id: state` lines otherwise,
/// nothing with `--quiet`.
pub fn progress_for(quiet: bool) -> berth::ops::Progress {
    use std::io::IsTerminal;
    use std::sync::Arc;
    if quiet {
        berth::ops::Progress::discard()
    } else if std::io::stdout().is_terminal() {
        berth::ops::Progress::new(Arc::new(berth::render::Terminal::stdout()))
    } else {
        berth::ops::Progress::new(Arc::new(berth::render::Lines::stdout()))
    }
}

/// Runs an async verb on a runtime made for it (most verbs never need one).
pub fn block_on<T>(fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(fut)
}

pub fn run(cli: Cli) -> Result<()> {
    let concurrency = match &cli.command {
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => a.max_concurrent_downloads,
        _ => None,
    };
    let engine = Engine::open(EngineOptions {
        root: cli.root,
        config_dir: cli.config_dir,
        max_concurrent_downloads: concurrency,
        ..EngineOptions::default()
    })?;
    let mut ctx = Ctx { engine };
    match cli.command {
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => {
            block_on(pull::run(&mut ctx, a))
        }
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => {
            block_on(push::run(&mut ctx, a))
        }
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::run(&mut ctx, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => rmi::run(&mut ctx, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => tag::run(&mut ctx, a),
        Command::Login(a) => block_on(login::login(&mut ctx, a)),
        Command::Logout(a) => login::logout(&mut ctx, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => save::run(&mut ctx, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => load::run(&mut ctx, a),
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => build::run(&ctx, *a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => history::run(&ctx, a),
        Command::Image(ImageCommand::Inspect(a)) => inspect::run(&mut ctx, a),
        Command::Image(ImageCommand::Prune(a)) => prune::run(&mut ctx, a),
        Command::Image(ImageCommand::Mount(a)) => mount::mount(&mut ctx, a),
        Command::Image(ImageCommand::Unmount(a)) => mount::unmount_cmd(&mut ctx, a),
        Command::Network(c) => network::run(&mut ctx, c),
        Command::Run(a) | Command::Container(container::Command::Run(a)) => run::run(&mut ctx, a),
        Command::Create(a) | Command::Container(container::Command::Create(a)) => {
            run::create(&mut ctx, a)
        }
        Command::Start(a) | Command::Container(container::Command::Start(a)) => start::run(&ctx, a),
        Command::Stop(a) | Command::Container(container::Command::Stop(a)) => stop::stop(&ctx, a),
        Command::Restart(a) | Command::Container(container::Command::Restart(a)) => {
            stop::restart(&ctx, a)
        }
        Command::Kill(a) | Command::Container(container::Command::Kill(a)) => stop::kill(&ctx, a),
        Command::Rm(a) | Command::Container(container::Command::Rm(a)) => rm::run(&ctx, a),
        Command::Ps(a) | Command::Container(container::Command::Ls(a)) => ps::run(&ctx, a),
        Command::Logs(a) | Command::Container(container::Command::Logs(a)) => logs::run(&ctx, a),
        Command::Exec(a) | Command::Container(container::Command::Exec(a)) => exec::run(&ctx, a),
        Command::Inspect(a) => container::inspect_any(&mut ctx, a),
        Command::Container(container::Command::Inspect(a)) => container::inspect(&ctx, a),
        Command::Wait(a) | Command::Container(container::Command::Wait(a)) => wait::run(&ctx, a),
        Command::Top(a) | Command::Container(container::Command::Top(a)) => top::run(&ctx, a),
        Command::Pause(a) | Command::Container(container::Command::Pause(a)) => {
            pause::pause(&ctx, a)
        }
        Command::Unpause(a) | Command::Container(container::Command::Unpause(a)) => {
            pause::unpause(&ctx, a)
        }
        Command::Rename(a) | Command::Container(container::Command::Rename(a)) => {
            rename::run(&ctx, a)
        }
        Command::Port(a) | Command::Container(container::Command::Port(a)) => port::run(&ctx, a),
        Command::Cp(a) | Command::Container(container::Command::Cp(a)) => cp::run(&ctx, a),
        Command::Container(container::Command::Prune(a)) => container::prune(&ctx, a),
        Command::Monitor(a) => monitor::run(&ctx, a),
        Command::Dns(a) => dns::run(&ctx, a),
        Command::Volume(c) => volume::run(&mut ctx, c),
        Command::System(c) => system::run(&ctx, c),
        Command::Compose(a) => compose::run(&ctx, a),
        Command::Kube(c) => kube::run(&mut ctx, c),
    }
}
