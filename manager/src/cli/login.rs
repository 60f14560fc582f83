//! `berth login` / `berth logout`: credentials in docker's config.json (or its helpers).

use std::io::{IsTerminal, Read};

use anyhow::{bail, Context, Result};
use berth::config::docker_config_file;
use berth::credentials::{Credentials, DockerConfig};
use berth::distribution::client::Registry;
use berth::reference::{normalise_registry, DOCKER_HUB};

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
    let registry = normalise_registry(args.server.as_deref().unwrap_or(DOCKER_HUB));
    let path = docker_config_file(&ctx.settings.docker_config_dir);
    let mut config = DockerConfig::load(&path)?;
    let password = match (args.password, args.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => Some(p),
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the password from stdin")?;
            Some(s.trim_end_matches(['\n', '\r']).to_string())
        }
        (None, false) => None,
    };
    let creds = match (args.username, password) {
        (Some(username), Some(password)) => Credentials { username, password },
        (None, None) => match config.get(&registry)? {
            // Like docker: with stored credentials, `login` re-checks them.
            Some(c) => c,
            None => bail!("username and password required: use --username and --password-stdin"),
        },
        (None, Some(_)) => bail!("flag --username is required with a password"),
        (Some(_), None) if std::io::stdin().is_terminal() => {
            bail!("password required: use --password-stdin (interactive prompts are not supported)")
        }
        (Some(username), None) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the password from stdin")?;
            Credentials {
                username,
                password: s.trim_end_matches(['\n', '\r']).to_string(),
            }
        }
    };
    if creds.password.is_empty() {
        bail!("empty password for {registry}");
    }
    let reg = Registry::connect(&registry, &ctx.settings.registries, Some(creds.clone()))
        .await
        .with_context(|| format!("login to {registry}"))?;
    reg.check_login()
        .await
        .with_context(|| format!("login to {registry}"))?;
    config.store(&registry, &creds)?;
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(ctx: &mut Ctx, args: LogoutArgs) -> Result<()> {
    let registry = normalise_registry(args.server.as_deref().unwrap_or(DOCKER_HUB));
    let path = docker_config_file(&ctx.settings.docker_config_dir);
    let mut config = DockerConfig::load(&path)?;
    if config.erase(&registry)? {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(())
}
