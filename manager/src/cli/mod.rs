//! Command-line interface: one file per verb, each a thin layer over the library.

mod format;
mod images;
mod inspect;
mod load;
mod login;
mod mount;
mod network;
mod prune;
mod pull;
mod push;
mod registry;
mod rmi;
mod save;
mod tag;

use std::path::PathBuf;

use anyhow::Result;
use berth::config::Settings;
use berth::image::ImageStore;
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
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(network::Command),
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
    /// Mount an image's root filesystem read-only on a directory
    Mount(mount::MountArgs),
    /// Unmount an image mounted by `image mount`
    #[command(alias = "umount")]
    Unmount(mount::UnmountArgs),
}

/// What every verb gets: validated settings and the store (opened on first use).
pub struct Ctx {
    pub settings: Settings,
    store: Option<ImageStore>,
}

impl Ctx {
    pub fn store(&mut self) -> Result<&ImageStore> {
        if self.store.is_none() {
            let store = ImageStore::open(&self.settings.root)?;
            self.store = Some(store);
        }
        self.store.as_ref().ok_or_else(|| {
            anyhow::anyhow!("image store at {} not open", self.settings.root.display())
        })
    }
}

pub async fn run(cli: Cli) -> Result<()> {
    let concurrency = match &cli.command {
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => a.max_concurrent_downloads,
        _ => None,
    };
    let settings = Settings::load(cli.root, cli.config_dir, concurrency)?;
    let mut ctx = Ctx {
        settings,
        store: None,
    };
    match cli.command {
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => pull::run(&mut ctx, a).await,
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => push::run(&mut ctx, a).await,
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::run(&mut ctx, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => rmi::run(&mut ctx, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => tag::run(&mut ctx, a),
        Command::Login(a) => login::login(&mut ctx, a).await,
        Command::Logout(a) => login::logout(&mut ctx, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => save::run(&mut ctx, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => load::run(&mut ctx, a).await,
        Command::Image(ImageCommand::Inspect(a)) => inspect::run(&mut ctx, a),
        Command::Image(ImageCommand::Prune(a)) => prune::run(&mut ctx, a),
        Command::Image(ImageCommand::Mount(a)) => mount::mount(&mut ctx, a),
        Command::Image(ImageCommand::Unmount(a)) => mount::unmount_cmd(&mut ctx, a),
        Command::Network(c) => network::run(&mut ctx, c),
    }
}
