//! `berth login` / `berth logout`: credentials in docker's config.json (or its helpers).

use std::io::{IsTerminal, Read};

use anyhow::{bail, Context, Result};
use berth::ops::images;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Registry (default: Docker Hub)
    server: Option<String>,
    /// Username
    #[arg(short, long)]
    username: Option<String>,
    /// Password (prefer --password-stdin)
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// Registry (default: Docker Hub)
    server: Option<String>,
}

pub async fn login(ctx: &mut Ctx, args: LoginArgs) -> Result<()> {
    let password = match (args.password, args.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => Some(p),
        (None, true) => Some(read_stdin()?),
        (None, false) => None,
    };
    let password = match (&args.username, password) {
        (Some(_), None) if std::io::stdin().is_terminal() => {
            bail!("password required: use --password-stdin (interactive prompts are not supported)")
        }
        (Some(_), None) => Some(read_stdin()?),
        (_, p) => p,
    };
    images::login(&ctx.engine, args.server.as_deref(), args.username, password).await?;
    println!("Login Succeeded");
    Ok(())
}

/// The password on stdin, without its line end.
fn read_stdin() -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the password from stdin")?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}

pub fn logout(ctx: &mut Ctx, args: LogoutArgs) -> Result<()> {
    let (registry, erased) = images::logout(&ctx.engine, args.server.as_deref())?;
    if erased {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(())
}
