//! `berth build`: docker's flags into a build request; progress as BuildKit shows it (its
//! terminal view, or its plain lines when stderr is not a terminal), or docker's classic
//! builder's lines (`Step 1/3 : ...`) on stdout with `DOCKER_BUILDKIT=0`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use berth::ops::images::{self, BuildRequest};
use berth::ops::{Cancel, Progress};
use berth::render::buildkit::{PlainSink, Tty};

use super::{Ctx, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name and optionally a tag in the 'name:tag' format
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// Name of the Dockerfile (default: 'PATH/Dockerfile'); '-' reads it from stdin
    #[arg(short = 'f', long = "file")]
    file: Option<String>,
    /// Set build-time variables (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pull: bool,
    /// Set metadata for an image (KEY=VALUE)
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Networking mode for the RUN instructions during build (default, none, host, NAME)
    #[arg(long)]
    network: Option<String>,
    /// Write the image ID to the file
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    quiet: bool,
    /// Type of progress output (auto, plain, tty, quiet)
    #[arg(long, default_value = "auto")]
    progress: String,
    /// The runtime of RUN steps
    #[arg(long)]
    runtime: Option<String>,
    /// Secret file to expose to RUN --mount=type=secret (id=ID,src=FILE or id=ID,env=VAR)
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// Output destination: type=docker|oci,dest=FILE (a save archive, - for stdout),
    /// type=local,dest=DIR (the files) or type=image; the image is stored as well
    /// (compression=zstd: with zstd layers)
    #[arg(short = 'o', long = "output")]
    outputs: Vec<String>,
    /// Push the image (every -t) after the build
    #[arg(long)]
    push: bool,
    /// Set the target platform for the build (os/arch[/variant])
    #[arg(long)]
    platform: Option<String>,
    /// Remove intermediate containers after a successful build (always)
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    rm: Option<bool>,
    /// Always remove intermediate containers (always)
    #[arg(long)]
    force_rm: bool,
    /// PATH, or '-' for a tar (or a Dockerfile) on stdin
    context: String,
}

fn key_values(flag: &str, items: &[String], from_env: bool) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for i in items {
        match i.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            None if from_env && !i.is_empty() => {
                // docker: `--build-arg KEY` takes the value from the environment, and is
                // left out when the variable is unset.
                if let Ok(v) = std::env::var(i) {
                    out.insert(i.clone(), v);
                }
            }
            None if !from_env && !i.is_empty() => {
                out.insert(i.clone(), String::new());
            }
            _ => bail!("flag {flag}: invalid value {i:?}: expected KEY=VALUE"),
        }
    }
    Ok(out)
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let quiet = args.quiet || args.progress == "quiet";
    if !matches!(args.progress.as_str(), "auto" | "plain" | "tty" | "quiet") {
        bail!(
            "flag --progress: invalid value {:?} (auto, plain, tty or quiet)",
            args.progress
        );
    }
    let platform = args.platform.clone();
    let mut req = BuildRequest {
        build_args: key_values("--build-arg", &args.build_args, true)?,
        labels: key_values("--label", &args.labels, false)?,
        tags: args.tags.clone(),
        target: args.target.clone(),
        no_cache: args.no_cache,
        pull: args.pull,
        network: args.network.clone(),
        runtime: args.runtime.clone(),
        platform,
        ..BuildRequest::default()
    };
    // `compression=zstd` on an output makes the stored image's layers zstd.
    for o in &args.outputs {
        for part in o.split(',') {
            match part.split_once('=') {
                Some(("compression", "zstd")) => req.zstd = true,
                Some(("compression", "gzip" | "uncompressed")) => {}
                Some(("force-compression", v)) => {
                    req.force_compression = match v {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => bail!("flag --output: force-compression={v:?} is not a boolean"),
                    }
                }
                Some(("compression", other)) => {
                    bail!("flag --output: unsupported compression {other:?} (gzip or zstd)")
                }
                _ => {}
            }
        }
    }
    for s in &args.secrets {
        let mut id = None;
        let mut src = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("env", v)) => {
                    // An environment variable's value, in a private file for the build.
                    let value = std::env::var(v)
                        .with_context(|| format!("flag --secret: ${v} is not set"))?;
                    let f = std::env::temp_dir()
                        .join(format!("berth-secret-{}-{v}", std::process::id()));
                    std::fs::write(&f, value)?;
                    src = Some(f);
                }
                Some(("type", "file")) => {}
                _ => bail!("flag --secret: invalid value {s:?}: expected id=ID,src=FILE"),
            }
        }
        let id = id.or_else(|| {
            src.as_ref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        });
        match (id, src) {
            (Some(id), Some(src)) => {
                req.secrets.insert(id, src);
            }
            _ => bail!("flag --secret: invalid value {s:?}: expected id=ID,src=FILE"),
        }
    }
    for t in &req.tags {
        images::check_reference(t)
            .with_context(|| format!("invalid argument {t:?} for \"-t, --tag\" flag"))?;
    }
    let stdin_df = args.file.as_deref() == Some("-");
    if stdin_df && args.context == "-" {
        bail!("invalid argument: can't use stdin for both build context and dockerfile");
    }
    let _tar;
    if args.context == "-" {
        let t = images::context_from_tar(&ctx.engine, std::io::stdin().lock())?;
        req.context = t.dir.clone();
        req.dockerfile_text = t.dockerfile_text.clone();
        _tar = Some(t);
    } else {
        let dir = PathBuf::from(&args.context);
        if !dir.is_dir() {
            bail!(
                "unable to prepare context: path {:?} not found",
                args.context
            );
        }
        req.context = dir;
    }
    if stdin_df {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)
            .context("reading the Dockerfile from stdin")?;
        req.dockerfile_text = Some(text);
    } else if let (Some(f), true) = (&args.file, args.context == "-") {
        // With a tar context, -f names a file inside it.
        req.dockerfile = Some(PathBuf::from(f));
    } else if let Some(f) = &args.file {
        // docker: a relative -f is relative to the current directory.
        let p = PathBuf::from(f);
        let p = if p.is_absolute() {
            p
        } else {
            std::env::current_dir()?.join(p)
        };
        req.dockerfile = Some(p);
    }
    let view = View::choose(quiet, &args.progress);
    let progress = view.progress();
    let cancel = Cancel::new();
    let watcher = {
        let cancel = cancel.clone();
        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
        ])?;
        let handle = signals.handle();
        std::thread::spawn(move || {
            if signals.forever().next().is_some() {
                cancel.cancel();
            }
        });
        handle
    };
    let result = images::build(&ctx.engine, &req, &progress, &cancel);
    watcher.close();
    view.finish();
    match result {
        Ok(r) => {
            if quiet {
                println!("{}", r.id);
            }
            if view.buildkit() {
                // The classic stream told them between the steps.
                for w in &r.warnings {
                    eprintln!("{w}");
                }
            }
            if let Some(f) = &args.iidfile {
                std::fs::write(f, &r.id)
                    .with_context(|| format!("writing --iidfile {}", f.display()))?;
            }
            for o in &args.outputs {
                output(ctx, &r.id, o)?;
            }
            if args.push {
                if r.tags.is_empty() {
                    bail!("--push needs a name: give one with -t");
                }
                for t in &r.tags {
                    let progress = super::progress_for(quiet);
                    super::block_on(async {
                        images::push(&ctx.engine, t, false, &progress, &Cancel::new()).await?;
                        Ok(())
                    })?;
                }
            }
            Ok(())
        }
        Err(e) => {
            // docker: a failed RUN prints its message as is and exits with its status.
            let code = match (&e, images::build_exit_code(&e)) {
                (_, Some(code)) => code,
                (berth::ops::OpsError::Cancelled, None) => 130,
                _ => return Err(e.into()),
            };
            super::print_also(&e);
            eprintln!("{e}");
            Err(Exit::silent(code).into())
        }
    }
}

/// One `-o` value: where the built image goes besides the store.
fn output(ctx: &Ctx, id: &str, spec: &str) -> Result<()> {
    let mut kind = None;
    let mut dest = None;
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("type", v)) => kind = Some(v.to_string()),
            Some(("dest", v)) => dest = Some(v.to_string()),
            // Read before the build (compression) or BuildKit's defaults here.
            Some((
                "compression" | "compression-level" | "force-compression" | "oci-mediatypes",
                _,
            )) => {}
            Some(_) => bail!("flag --output: unsupported attribute in {spec:?}"),
            None if dest.is_none() && kind.is_none() => dest = Some(part.to_string()),
            None => bail!("flag --output: invalid value {spec:?}"),
        }
    }
    let kind = kind.unwrap_or_else(|| "local".into());
    if kind == "image" {
        // The image is in the store already.
        return Ok(());
    }
    let Some(dest) = dest else {
        bail!("flag --output: {spec:?} has no dest=");
    };
    match kind.as_str() {
        "local" => Ok(images::export_local(
            &ctx.engine,
            id,
            std::path::Path::new(&dest),
        )?),
        "docker" | "oci" => {
            let format = if kind == "oci" {
                images::ArchiveFormat::Oci
            } else {
                images::ArchiveFormat::Docker
            };
            let names = [id.to_string()];
            if dest == "-" {
                Ok(images::save(
                    &ctx.engine,
                    &names,
                    format,
                    std::io::stdout().lock(),
                )?)
            } else {
                let f = std::fs::File::create(&dest)
                    .with_context(|| format!("flag --output: creating {dest}"))?;
                Ok(images::save(
                    &ctx.engine,
                    &names,
                    format,
                    std::io::BufWriter::new(f),
                )?)
            }
        }
        other => bail!("flag --output: unsupported type {other:?} (local, docker, oci or image)"),
    }
}

/// What the build's progress looks like.
enum View {
    /// `-q`, `--progress quiet`: nothing (the image ID at the end).
    Quiet,
    /// `DOCKER_BUILDKIT=0`: docker's classic builder's lines on stdout.
    Classic,
    /// `--progress plain` (and `auto` when stderr is not a terminal): BuildKit's lines.
    Plain(Arc<PlainSink>),
    /// `--progress tty` (and `auto` on a terminal): BuildKit's view, redrawn in place.
    Tty(Arc<Tty>),
}

impl View {
    fn choose(quiet: bool, progress: &str) -> Self {
        let classic = std::env::var("DOCKER_BUILDKIT")
            .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "0" | "false"));
        if quiet {
            Self::Quiet
        } else if classic {
            Self::Classic
        } else if progress == "tty" || (progress == "auto" && std::io::stderr().is_terminal()) {
            Self::Tty(Tty::start())
        } else {
            Self::Plain(Arc::new(PlainSink::new(std::io::stderr())))
        }
    }

    fn progress(&self) -> Progress {
        match self {
            Self::Quiet => Progress::discard(),
            Self::Classic => Progress::new(Arc::new(berth::render::Lines::stdout())),
            Self::Plain(p) => Progress::new(p.clone()),
            Self::Tty(t) => Progress::new(t.clone()),
        }
    }

    fn buildkit(&self) -> bool {
        matches!(self, Self::Plain(_) | Self::Tty(_))
    }

    /// Ends the view: the terminal's final screen; after a failure the failed step's
    /// output (the terminal's in full, plain's last lines as BuildKit repeats them).
    fn finish(&self) {
        match self {
            Self::Tty(t) => t.finish(),
            Self::Plain(p) => eprint!("{}", p.error_logs()),
            Self::Quiet | Self::Classic => {}
        }
    }
}
