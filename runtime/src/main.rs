//! `berth-runtime`: a runc-compatible command line over the `berth_runtime` library.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use berth_runtime::logging;
use clap::{Parser, Subcommand};

/// berth-runtime: a low-level OCI container runtime, a drop-in for runc.
#[derive(Debug, Parser)]
#[command(name = "berth-runtime", version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0"), about)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
pub struct Global {
    /// Directory for container state
    #[arg(long, global = true, default_value = "/run/berth")]
    root: PathBuf,
    /// Write log lines to this file instead of stderr
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    log_format: logging::Format,
    /// Log debug messages too
    #[arg(long, global = true)]
    debug: bool,
    /// Use the systemd cgroup driver (needs a running systemd)
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility (criu is not used)
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a container from a bundle; it waits for `start`
    Create(commands::create::Args),
    /// Start the user process of a created container
    Start(commands::start::Args),
    /// Create and start a container
    Run(commands::run::Args),
    /// Print a container's state as JSON
    State(commands::state::Args),
    /// Send a signal to a container's init (or to all its processes)
    Kill(commands::kill::Args),
    /// Run a new process inside a running container
    Exec(Box<commands::exec::Args>),
    /// List the processes of a container
    Ps(commands::ps::Args),
    /// Freeze every process of a running container
    Pause(commands::pause::Args),
    /// Thaw a paused container
    Resume(commands::resume::Args),
    /// Change the resource limits of a container
    Update(Box<commands::update::Args>),
    /// Print resource statistics and OOM events as JSON lines
    Events(commands::events::Args),
    /// Delete a container and everything it holds
    Delete(commands::delete::Args),
    /// List containers
    List(commands::list::Args),
    /// Write a default config.json
    Spec(commands::spec::Args),
    /// Print the features this runtime supports as JSON
    Features,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let g = &cli.global;
    if let Err(e) = logging::init(g.log.as_deref(), g.log_format, g.debug) {
        eprintln!("berth-runtime: opening log file: {e}");
        return ExitCode::FAILURE;
    }
    // Every command's `run` is `#[inline(never)]`: inlined here, all of them made one 80 KiB
    // function whose pages every invocation touched. Apart, the link order
    // (runtime/link/symbol-order.txt, hack/order-runtime) keeps what a `run` never executes out
    // of the pages it does.
    let result = match cli.command {
        Command::Create(a) => commands::create::run(g, a),
        Command::Start(a) => commands::start::run(g, a),
        Command::Run(a) => commands::run::run(g, a),
        Command::State(a) => commands::state::run(g, a),
        Command::Kill(a) => commands::kill::run(g, a),
        Command::Exec(a) => commands::exec::run(g, *a),
        Command::Ps(a) => commands::ps::run(g, a),
        Command::Pause(a) => commands::pause::run(g, a),
        Command::Resume(a) => commands::resume::run(g, a),
        Command::Update(a) => commands::update::run(g, *a),
        Command::Events(a) => commands::events::run(g, a),
        Command::Delete(a) => commands::delete::run(g, a),
        Command::List(a) => commands::list::run(g, a),
        Command::Spec(a) => commands::spec::run(a),
        Command::Features => commands::features::run(),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let msg = format!("{e:#}");
            logging::error(&msg);
            if logging::has_file() {
                eprintln!("{msg}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
