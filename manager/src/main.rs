//! `berth`: a daemonless, docker-like container manager.

mod cli;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

fn main() -> ExitCode {
    // Rootless berth's helper in the user's namespace (see rootless::userns): one job, no CLI.
    if let Some(code) = berth::ops::system::userns_job() {
        return ExitCode::from(code);
    }
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            cli::report(&e);
            match e.downcast_ref::<cli::Exit>() {
                Some(exit) => ExitCode::from(exit.code.clamp(0, 255) as u8),
                None => ExitCode::FAILURE,
            }
        }
    }
}

/// Help and version print and succeed (`berth` alone too, as `docker` alone); a missing
/// argument exits 1 as docker's "requires at least 1 argument"; any other bad command line
/// exits 125, docker's status for a flag error.
fn usage_error(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ExitCode::SUCCESS,
        ErrorKind::MissingRequiredArgument => ExitCode::FAILURE,
        _ => ExitCode::from(125),
    }
}
