//! `berth compose`: docker compose v2's verbs and flags. Each verb loads the project (the
//! model in `ops::compose`), calls the operations and renders what they return; the work
//! is in the operations layer.

mod events;
mod logs;
mod ps;
mod up;
mod verbs;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use berth::ops::compose::{self as c, Project, ProjectOptions};
use berth::ops::{Event, Progress, ProgressSink};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Compose configuration files
    #[arg(short = 'f', long = "file")]
    files: Vec<PathBuf>,
    /// Project name
    #[arg(short = 'p', long)]
    project_name: Option<String>,
    /// Specify an alternate working directory (default: the path of the first compose file)
    #[arg(long)]
    project_directory: Option<PathBuf>,
    /// Specify an alternate environment file
    #[arg(long)]
    env_file: Vec<PathBuf>,
    /// Specify a profile to enable
    #[arg(long)]
    profile: Vec<String>,
    /// Control when to print ANSI control characters ("never"|"always"|"auto")
    #[arg(long, default_value = "auto")]
    ansi: String,
    /// Set type of progress output (auto, tty, plain, quiet)
    #[arg(long, default_value = "auto")]
    progress: String,
    /// Control max parallelism, -1 for unlimited
    #[arg(long, hide = true)]
    parallel: Option<i64>,
    /// Run compose in backward compatibility mode
    #[arg(long, hide = true)]
    compatibility: bool,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Create and start containers
    Up(up::UpArgs),
    /// Stop and remove containers, networks
    Down(up::DownArgs),
    /// Creates containers for a service
    Create(up::CreateArgs),
    /// Run a one-off command on a service
    Run(up::RunArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// List running compose projects
    Ls(ps::LsArgs),
    /// View output from containers
    Logs(logs::LogsArgs),
    /// Execute a command in a running container
    Exec(verbs::ExecArgs),
    /// Start services
    Start(verbs::Services),
    /// Stop services
    Stop(verbs::StopArgs),
    /// Restart service containers
    Restart(verbs::StopArgs),
    /// Force stop service containers
    Kill(verbs::KillArgs),
    /// Removes stopped service containers
    Rm(verbs::RmArgs),
    /// Pause services
    Pause(verbs::Services),
    /// Unpause services
    Unpause(verbs::Services),
    /// Pull service images
    Pull(verbs::PullArgs),
    /// Push service images
    Push(verbs::Services),
    /// Build or rebuild services
    Build(verbs::Services),
    /// Parse, resolve and render compose file in canonical format
    Config(verbs::ConfigArgs),
    /// Display the running processes
    Top(verbs::Services),
    /// Print the public port for a port binding
    Port(verbs::PortArgs),
    /// List images used by the created containers
    Images(verbs::ImagesArgs),
    /// Block until the first service container stops
    Wait(verbs::WaitArgs),
    /// Copy files/folders between a service container and the local filesystem
    Cp(verbs::CpArgs),
    /// Receive real time events from containers
    Events(events::EventsArgs),
    /// Show the Docker Compose version information
    Version(verbs::VersionArgs),
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match &args.verb {
        Verb::Up(a) => up::up(ctx, &args, a),
        Verb::Down(a) => up::down(ctx, &args, a),
        Verb::Create(a) => up::create(ctx, &args, a),
        Verb::Run(a) => up::run(ctx, &args, a),
        Verb::Ps(a) => ps::ps(ctx, &args, a),
        Verb::Ls(a) => ps::ls(ctx, a),
        Verb::Logs(a) => logs::logs(ctx, &args, a),
        Verb::Exec(a) => verbs::exec(ctx, &args, a),
        Verb::Start(a) => verbs::start(ctx, &args, a),
        Verb::Stop(a) => verbs::stop(ctx, &args, a, false),
        Verb::Restart(a) => verbs::stop(ctx, &args, a, true),
        Verb::Kill(a) => verbs::kill(ctx, &args, a),
        Verb::Rm(a) => verbs::rm(ctx, &args, a),
        Verb::Pause(a) => verbs::pause(ctx, &args, a, true),
        Verb::Unpause(a) => verbs::pause(ctx, &args, a, false),
        Verb::Pull(a) => verbs::pull(ctx, &args, a),
        Verb::Push(a) => verbs::push(ctx, &args, a),
        Verb::Build(a) => verbs::build(ctx, &args, a),
        Verb::Config(a) => verbs::config(&args, a),
        Verb::Top(a) => verbs::top(ctx, &args, a),
        Verb::Port(a) => verbs::port(ctx, &args, a),
        Verb::Images(a) => verbs::images(ctx, &args, a),
        Verb::Wait(a) => verbs::wait(ctx, &args, a),
        Verb::Cp(a) => verbs::cp(ctx, &args, a),
        Verb::Events(a) => events::events(ctx, &args, a),
        Verb::Version(a) => verbs::version(a),
    }
}

impl Args {
    fn options(&self, services: &[String]) -> Result<ProjectOptions> {
        Ok(ProjectOptions {
            files: self.files.clone(),
            project_name: self.project_name.clone(),
            project_directory: self.project_directory.clone(),
            env_files: self.env_file.clone(),
            profiles: self.profile.clone(),
            environment: std::env::vars().collect(),
            cwd: std::env::current_dir().context("reading the current directory")?,
            services: services.to_vec(),
        })
    }

    /// The project, loaded and checked.
    fn project(&self, services: &[String]) -> Result<Project> {
        Ok(c::load(&self.options(services)?)?)
    }

    /// The project's name and, when its files load, its model: verbs that only act on
    /// what runs work with `-p NAME` alone, as docker compose's do.
    fn project_or_name(&self) -> Result<(String, Option<Project>)> {
        match self.project(&[]) {
            Ok(p) => Ok((p.name.clone(), Some(p))),
            Err(e) => match &self.project_name {
                Some(n) if self.files.is_empty() => Ok((n.clone(), None)),
                _ => Err(e),
            },
        }
    }

    fn progress(&self) -> Progress {
        if self.progress == "quiet" {
            Progress::discard()
        } else {
            Progress::new(Arc::new(Lines))
        }
    }
}

/// docker compose's plain progress: ` Container demo-web-1  Started` on stderr.
struct Lines;

impl ProgressSink for Lines {
    fn event(&self, event: &Event) {
        match event {
            Event::Status { id: Some(id), text } => eprintln!(" {id}  {text}"),
            Event::Status { id: None, text } => eprintln!("{text}"),
            // A `build:` section's steps and RUN output, as `docker compose build` shows them.
            Event::Stream(text) => eprint!("{text}"),
            _ => {}
        }
    }
}
