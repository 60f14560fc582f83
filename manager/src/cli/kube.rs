//! `berth kube play|down|generate`: Kubernetes YAML run as berth pods, and containers
//! written as Kubernetes YAML.

use std::io::{Read, Write};

use anyhow::{anyhow, bail, Context, Result};
use berth::ops::images;
use berth::ops::kube::{self, DownOptions, GenerateOptions, PlayOptions, PodKind};

use super::{Ctx, Exit};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the Pods and Deployments of a Kubernetes YAML file ("-" reads stdin)
    Play(PlayArgs),
    /// Remove the pods a `kube play` of the file made
    Down(DownArgs),
    /// Write Kubernetes YAML (a Pod or Deployment) for containers or pods
    Generate(GenerateArgs),
}

#[derive(Debug, clap::Args)]
pub struct PlayArgs {
    /// The YAML file
    file: String,
    /// Remove the pods of the file instead (as `kube down`)
    #[arg(long)]
    down: bool,
    /// Replace pods that exist already
    #[arg(long)]
    replace: bool,
    /// With --down: remove the volumes made for PersistentVolumeClaims too
    #[arg(long)]
    force: bool,
    /// Also take the ConfigMaps and Secrets of this YAML file (repeatable)
    #[arg(long = "configmap", value_name = "FILE")]
    configmaps: Vec<String>,
    /// Connect the pods to this network (each reachable there by its name)
    #[arg(long)]
    network: Option<String>,
    /// Print nothing but errors and warnings
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// The YAML file given to `kube play`
    file: String,
    /// Remove the volumes made for PersistentVolumeClaims too
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Containers, pods (made by `kube play`) or compose projects
    #[arg(required = true)]
    names: Vec<String>,
    /// Also write a Service for the published ports
    #[arg(short, long)]
    service: bool,
    /// The workload: pod or deployment
    #[arg(short = 't', long = "type", default_value = "pod")]
    kind: String,
    /// Write the YAML to this file instead of stdout
    #[arg(short, long)]
    filename: Option<std::path::PathBuf>,
}

pub fn run(ctx: &mut Ctx, cmd: Command) -> Result<()> {
    match cmd {
        Command::Play(a) if a.down => down(ctx, &a.file, a.force),
        Command::Play(a) => play(ctx, a),
        Command::Down(a) => down(ctx, &a.file, a.force),
        Command::Generate(a) => generate(ctx, a),
    }
}

fn load(file: &str) -> Result<kube::Manifest> {
    let mut text = String::new();
    if file == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the YAML from stdin")?;
    } else {
        text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    }
    let name = if file == "-" { "stdin" } else { file };
    let manifest =
        kube::parse(&text, name).map_err(|e| anyhow!(Exit::with_message(125, e.to_string())))?;
    for w in &manifest.warnings {
        eprintln!("WARNING: {w}");
    }
    Ok(manifest)
}

/// An error of the kube operations, with what its cleanup reported printed first.
fn fail(e: kube::Error) -> anyhow::Error {
    for line in e.also() {
        eprintln!("{line}");
    }
    match e {
        kube::Error::Ops(o) => anyhow!(o),
        kube::Error::Undone { error, .. } => anyhow!(Exit::with_message(125, error.to_string())),
        e => anyhow!(Exit::with_message(125, e.to_string())),
    }
}

fn play(ctx: &mut Ctx, a: PlayArgs) -> Result<()> {
    let mut manifest = load(&a.file)?;
    for file in &a.configmaps {
        let extra = load(file)?;
        manifest
            .add_config(extra)
            .map_err(|e| anyhow!(Exit::with_message(125, e.to_string())))?;
    }
    // The images first, pulled as `run` pulls them.
    for (image, policy) in kube::images(&manifest) {
        let present = images::exists(&ctx.engine, &image)?;
        match policy.as_str() {
            "Never" if !present => bail!("No such image: {image} (imagePullPolicy: Never)"),
            "Always" => {}
            _ if present => continue,
            _ => {}
        }
        if policy == "Never" {
            continue;
        }
        let args = super::pull::Args::for_image(&image);
        super::block_on(super::pull::run(ctx, args))
            .map_err(|e| anyhow!(Exit::with_message(125, format!("pulling {image}: {e:#}"))))?;
    }
    let opts = PlayOptions {
        replace: a.replace,
        network: a.network,
    };
    let report = kube::play(&ctx.engine, &manifest, opts).map_err(fail)?;
    for w in &report.warnings {
        eprintln!("WARNING: {w}");
    }
    if a.quiet {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    if !report.volumes.is_empty() {
        writeln!(out, "Volumes:")?;
        for v in &report.volumes {
            writeln!(out, "{v}")?;
        }
    }
    for p in &report.pods {
        writeln!(out, "Pod:\n{}\nContainers:", p.name)?;
        for c in &p.containers {
            writeln!(out, "{c}")?;
        }
    }
    Ok(())
}

fn down(ctx: &mut Ctx, file: &str, force: bool) -> Result<()> {
    let manifest = load(file)?;
    let report =
        kube::down(&ctx.engine, &manifest, DownOptions { volumes: force }).map_err(fail)?;
    let mut out = std::io::stdout().lock();
    if !report.pods.is_empty() {
        writeln!(out, "Pods stopped and removed:")?;
        for p in &report.pods {
            writeln!(out, "{p}")?;
        }
    }
    if !report.volumes.is_empty() {
        writeln!(out, "Volumes removed:")?;
        for v in &report.volumes {
            writeln!(out, "{v}")?;
        }
    }
    Ok(())
}

fn generate(ctx: &mut Ctx, a: GenerateArgs) -> Result<()> {
    let kind = match a.kind.as_str() {
        "pod" => PodKind::Pod,
        "deployment" => PodKind::Deployment,
        other => {
            return Err(anyhow!(Exit::with_message(
                125,
                format!("invalid argument \"{other}\" for \"--type\" flag: pod or deployment")
            )))
        }
    };
    let yaml = kube::generate(
        &ctx.engine,
        &a.names,
        GenerateOptions {
            kind,
            service: a.service,
        },
    )
    .map_err(fail)?;
    match a.filename {
        Some(path) => {
            std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?
        }
        None => std::io::stdout().lock().write_all(yaml.as_bytes())?,
    }
    Ok(())
}
