//! `berth-runtime`: a runc-compatible command line over the `berth_runtime` library.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use berth_runtime::logging;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// berth-runtime: a low-level OCI container runtime, a drop-in for runc.
#[derive(Debug, Parser)]
#[command(name = "berth-runtime", disable_version_flag = true, about)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The runc release whose command line this one implements, as `-v` reports it.
const RUNC_VERSION: &str = "1.1.15";
/// The runtime-spec version of the configs this runtime reads.
const SPEC_VERSION: &str = "1.2.0";

/// `-v` in runc's three lines, which tools parse (docker's `info` takes the name and version
/// from the "version" line and the commit from "commit:"). The first names the runc release
/// whose command line this is, then ours.
fn version_text() -> String {
    format!(
        "runc version {RUNC_VERSION} (berth-runtime {})\ncommit: {}\nspec: {SPEC_VERSION}",
        env!("CARGO_PKG_VERSION"),
        option_env!("BERTH_COMMIT").unwrap_or("unknown"),
    )
}

/// Help laid out as runc's (urfave/cli): a `NAME:` section first, whose line gives both
/// names this program answers to, as containerd, docker and runc's own tests expect of a
/// runc in its place.
fn command() -> clap::Command {
    let mut cmd = Cli::command().help_template(
        "NAME:\n   berth-runtime, runc - Open Container Initiative runtime\n\n\
         USAGE:\n   berth-runtime [global options] command [command options] [arguments...]\n\n\
         DESCRIPTION:\n   {about}\n\n\
         COMMANDS:\n{subcommands}\n\n\
         GLOBAL OPTIONS:\n{options}\n",
    );
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(&name, |c| {
            let template = format!(
                "NAME:\n   berth-runtime {name}, runc {name} - {{about}}\n\n\
                 USAGE:\n   {{usage}}\n\n\
                 OPTIONS:\n{{all-args}}\n"
            );
            c.help_template(template)
        });
    }
    cmd
}

/// Parses the command line; what runc answers without running anything (help, version, an
/// unknown command) is answered here.
fn parse() -> Result<(Global, Command), ExitCode> {
    let mut cmd = command();
    let matches = match cmd.try_get_matches_from_mut(std::env::args_os()) {
        Ok(m) => m,
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidSubcommand => {
            let name = e
                .get(clap::error::ContextKind::InvalidSubcommand)
                .map(|v| v.to_string())
                .unwrap_or_default();
            eprintln!("No help topic for '{name}'");
            return Err(ExitCode::from(3));
        }
        Err(e) => e.exit(),
    };
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // runc: a non-root caller's state lives under $XDG_RUNTIME_DIR (runc/ there, ours here).
    if matches.value_source("root") != Some(clap::parser::ValueSource::CommandLine) {
        if let Some(dir) = berth_runtime::rootless::default_state_root() {
            cli.global.root = dir;
        }
    }
    if cli.version {
        println!("{}", version_text());
        return Err(ExitCode::SUCCESS);
    }
    match cli.command {
        Some(command) => Ok((cli.global, command)),
        None => {
            let _ = cmd.print_help();
            Err(ExitCode::SUCCESS)
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Global {
    /// Directory for container state ($XDG_RUNTIME_DIR/berth for a non-root user)
    #[arg(long, global = true, default_value = "/run/berth")]
    root: PathBuf,
    /// Rootless mode: true, false or auto (auto: when not run as root). Before the command,
    /// as in runc (`spec --rootless` is another flag)
    #[arg(long, value_enum, default_value = "auto")]
    rootless: RootlessFlag,
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

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RootlessFlag {
    True,
    False,
    Auto,
}

impl Global {
    /// Whether to behave as a rootless runtime (runc's --rootless): cgroups that cannot be
    /// made are skipped with a warning rather than failing the container.
    pub fn rootless(&self) -> bool {
        match self.rootless {
            RootlessFlag::True => true,
            RootlessFlag::False => false,
            RootlessFlag::Auto => berth_runtime::rootless::is_rootless(),
        }
    }
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
    /// Checkpoint a running container (not supported: no CRIU integration)
    Checkpoint(commands::checkpoint::Args),
    /// Restore a container from a checkpoint (not supported: no CRIU integration)
    Restore(Box<commands::restore::Args>),
}

fn main() -> ExitCode {
    let (global, command) = match parse() {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let g = &global;
    if let Err(e) = logging::init(g.log.as_deref(), g.log_format, g.debug) {
        eprintln!("berth-runtime: opening log file: {e}");
        return ExitCode::FAILURE;
    }
    // Every command's `run` is `#[inline(never)]`: inlined here, all of them made one 80 KiB
    // function whose pages every invocation touched. Apart, the link order
    // (runtime/link/symbol-order.txt, hack/order-runtime) keeps what a `run` never executes out
    // of the pages it does.
    // runc: a runtime error of `exec` exits 255, so it cannot be mistaken for the status of
    // the process (which is what `exec` exits with otherwise).
    let error_code = if matches!(command, Command::Exec(_)) {
        255
    } else {
        1
    };
    let result = match command {
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
        Command::Checkpoint(a) => commands::checkpoint::run(g, a),
        Command::Restore(a) => commands::restore::run(g, *a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let msg = format!("{e:#}");
            logging::error(&msg);
            if logging::has_file() {
                eprintln!("{msg}");
            }
            ExitCode::from(error_code)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        super::command().debug_assert();
    }

    #[test]
    fn version_names_the_runc_release_first_then_commit_and_spec() {
        let text = super::version_text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("runc version 1.1.15 (berth-runtime "),
            "{text}"
        );
        assert!(lines[1].starts_with("commit: "), "{text}");
        assert_eq!(lines[2], "spec: 1.2.0");
    }

    #[test]
    fn help_starts_with_runc_s_name_section() {
        let mut cmd = super::command();
        let help = cmd.render_help().to_string();
        let lines: Vec<&str> = help.lines().collect();
        assert_eq!(lines[0], "NAME:");
        assert!(
            lines[1].contains("runc - Open Container Initiative runtime"),
            "{help}"
        );
        let sub = cmd
            .find_subcommand_mut("delete")
            .expect("delete")
            .render_help()
            .to_string();
        assert!(
            sub.lines()
                .nth(1)
                .is_some_and(|l| l.contains("runc delete")),
            "{sub}"
        );
    }
}
