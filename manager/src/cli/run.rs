//! `berth create` and `berth run`: the flags become docker's create request, the image is
//! pulled when missing (per `--pull`), and the operation makes the container; `run` then
//! starts it and, unless detached, streams it to this terminal.

use anyhow::{anyhow, bail, Result};
use berth::ops::containers::{self, RunMode, Running};
use berth::ops::images;
use berth::ops::OpsError;

use super::attach::{stream, Shown};
use super::run_flags::{Flags, Translated};
use super::{Ctx, Exit};

#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    #[command(flatten)]
    flags: Flags,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// IMAGE then its COMMAND: one list, so that every word after the image belongs to the
    /// command, as docker reads it (`run busybox -c x` runs `-c x`, not --cpu-shares).
    #[arg(
        value_name = "IMAGE [COMMAND] [ARG...]",
        required = true,
        trailing_var_arg = true
    )]
    image_and_command: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Proxy received signals to the process
    #[arg(long, default_value = "true", action = clap::ArgAction::Set)]
    sig_proxy: bool,
    #[command(flatten)]
    flags: Flags,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// IMAGE then its COMMAND: one list, so that every word after the image belongs to the
    /// command, as docker reads it (`run busybox -c x` runs `-c x`, not --cpu-shares).
    #[arg(
        value_name = "IMAGE [COMMAND] [ARG...]",
        required = true,
        trailing_var_arg = true
    )]
    image_and_command: Vec<String>,
}

fn image_of(words: &[String]) -> &str {
    words.first().map_or("", String::as_str)
}

fn command_of(words: &[String]) -> &[String] {
    words.get(1..).unwrap_or_default()
}

/// docker's CLI exits 125 when `run`/`create` fail before the container runs.
fn as_125(e: anyhow::Error) -> anyhow::Error {
    if e.downcast_ref::<Exit>().is_some() {
        return e;
    }
    if let Some(ops) = e.downcast_ref::<OpsError>() {
        super::print_also(ops);
    }
    Exit::with_message(125, format!("{e:#}")).into()
}

/// An operation's error as the exit `run`/`create` leave with: a failed start keeps its
/// exit status (126, 127, ...), everything else is 125.
pub fn exit_for(e: OpsError) -> anyhow::Error {
    super::print_also(&e);
    match e {
        OpsError::StartFailed { code, message } => Exit::with_message(code, message).into(),
        OpsError::Undo(u) => exit_for(u.error),
        e => Exit::with_message(125, format!("{:#}", anyhow!(e))).into(),
    }
}

pub fn create(ctx: &mut Ctx, args: CreateArgs) -> Result<()> {
    create_inner(ctx, args).map_err(as_125)
}

pub fn run(ctx: &mut Ctx, args: RunArgs) -> Result<()> {
    run_inner(ctx, args).map_err(as_125)
}

/// The request, checked (its warnings printed) and its image present, before anything is
/// made.
fn prepare(
    ctx: &mut Ctx,
    flags: &Flags,
    image: &str,
    command: &[String],
    rm: bool,
) -> Result<Translated> {
    let t = flags.translate(image, command, rm)?;
    let warnings = containers::check(&t.request).map_err(exit_for)?;
    for w in warnings {
        eprintln!("WARNING: {w}");
    }
    ensure_image(ctx, image, &flags.pull, flags.platform.as_deref())?;
    if let Some(p) = &flags.platform {
        images::check_platform(&ctx.engine, image, p).map_err(exit_for)?;
    }
    Ok(t)
}

/// `--cidfile`: made before the container (docker refuses a file that is already there),
/// written once the id is known, removed again when the container could not be made.
struct CidFile(Option<std::path::PathBuf>);

impl CidFile {
    fn open(path: Option<&std::path::Path>) -> Result<Self> {
        let Some(p) = path else { return Ok(Self(None)) };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
        {
            Ok(_) => Ok(Self(Some(p.to_path_buf()))),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
                "Container ID file found, make sure the other container isn't running or delete {}",
                p.display()
            ),
            Err(e) => bail!("flag --cidfile: creating {}: {e}", p.display()),
        }
    }

    fn write(mut self, id: &str) -> Result<()> {
        if let Some(p) = self.0.take() {
            std::fs::write(&p, id)
                .map_err(|e| anyhow!("flag --cidfile: writing {}: {e}", p.display()))?;
        }
        Ok(())
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn create_inner(ctx: &mut Ctx, args: CreateArgs) -> Result<()> {
    let t = prepare(
        ctx,
        &args.flags,
        image_of(&args.image_and_command),
        command_of(&args.image_and_command),
        false,
    )?;
    let cid = CidFile::open(args.flags.cidfile.as_deref())?;
    let created = containers::create(&ctx.engine, &t.request, &t.options).map_err(exit_for)?;
    cid.write(&created.id)?;
    println!("{}", created.id);
    Ok(())
}

fn run_inner(ctx: &mut Ctx, args: RunArgs) -> Result<()> {
    let mut t = prepare(
        ctx,
        &args.flags,
        image_of(&args.image_and_command),
        command_of(&args.image_and_command),
        args.rm,
    )?;
    if args.detach && !args.flags.attach.is_empty() {
        return Err(Exit::with_message(1, "Conflicting options: -a and -d".into()).into());
    }
    if args.detach {
        // docker's CLI attaches nothing for -d, and the container records so.
        let c = &mut t.request.config;
        (
            c.attach_stdin,
            c.attach_stdout,
            c.attach_stderr,
            c.stdin_once,
        ) = (false, false, false, false);
    }
    let mode = if args.detach {
        RunMode::Detached
    } else {
        RunMode::Attached {
            stdin: args.flags.interactive,
        }
    };
    let cid = CidFile::open(args.flags.cidfile.as_deref())?;
    let attached =
        match containers::run(&ctx.engine, &t.request, &t.options, mode).map_err(exit_for)? {
            Running::Detached { id, .. } => {
                cid.write(&id)?;
                println!("{id}");
                return Ok(());
            }
            Running::Attached { attached, .. } => {
                cid.write(attached.id())?;
                attached
            }
        };
    let sig_proxy = args.sig_proxy && !args.flags.tty;
    let shown = Shown {
        stdout: t.request.config.attach_stdout,
        stderr: t.request.config.attach_stderr,
    };
    let code = stream(attached, sig_proxy, shown)?;
    if code != 0 {
        return Err(Exit::silent(code).into());
    }
    Ok(())
}

/// Makes sure the image is in the store per `--pull`, pulling it like `berth pull` would.
fn ensure_image(ctx: &mut Ctx, image: &str, policy: &str, platform: Option<&str>) -> Result<()> {
    let present = images::exists(&ctx.engine, image).map_err(exit_for)?;
    let pull = match policy {
        "always" => true,
        "missing" => !present,
        "never" => {
            if !present {
                bail!("No such image: {image}");
            }
            false
        }
        other => bail!("flag --pull: invalid value {other:?} (always, missing or never)"),
    };
    if pull {
        if !present {
            eprintln!("Unable to find image '{image}' locally");
        }
        let mut args = super::pull::Args::for_image(image);
        args.platform = platform.map(str::to_string);
        super::block_on(super::pull::run(ctx, args))
            .map_err(|e| anyhow!(Exit::with_message(125, format!("pulling {image}: {e:#}"))))?;
    }
    Ok(())
}
