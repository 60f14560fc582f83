//! `berth`: a daemonless, docker-like container manager.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Rootless berth's helper in the user's namespace (see rootless::userns): one job, no CLI.
    if let Some(code) = berth::ops::system::userns_job() {
        return ExitCode::from(code);
    }
    let args = cli::Cli::parse();
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
