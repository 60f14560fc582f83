//! Helpers shared by the container verbs.

use anyhow::Result;
use berth::ops::OpsError;

/// Runs `f` for every named container, printing each name as docker does on success and
/// each error on stderr; fails at the end when any failed.
pub fn each(names: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<()> {
    let mut failed = 0;
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                super::report(&e);
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(super::Exit::silent(1).into());
    }
    Ok(())
}

/// A start's error: a failed start exits with docker's status for it.
pub fn start_error(e: OpsError) -> anyhow::Error {
    match e {
        OpsError::StartFailed { code, message } => super::Exit::with_message(code, message).into(),
        e => e.into(),
    }
}
