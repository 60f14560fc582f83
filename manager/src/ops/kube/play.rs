//! `kube play`: the pods of a manifest planned in full first (a bad manifest makes
//! nothing), then made pod by pod; a failure removes everything this play made. `kube
//! down`: what `play` made for the pods of a manifest, found by its labels, removed.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::kube::{KubeError, Manifest};
use crate::ops::containers::{self, CreateOptions, ListOptions, RemoveOptions, RunMode};
use crate::ops::error::chain;
use crate::ops::models::{
    ContainerCreateRequest, EndpointSettings, Filters, VolumeCreateRequest, WaitCondition,
};
use crate::ops::{volumes, Cancel, Engine};

use super::translate::{
    plan_pod, pod_files_dir, PodPlan, PodSource, VolumePlan, LABEL_CLAIM, LABEL_DEPLOYMENT,
    LABEL_POD, LABEL_ROLE,
};
use super::{Error, Result};

/// How to play.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlayOptions {
    /// Remove pods of the same names first (what an earlier play made).
    pub replace: bool,
    /// The network the pods join (the default bridge when `None`); on it each pod is
    /// reachable by its name.
    pub network: Option<String>,
}

/// A pod `play` started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlayedPod {
    pub name: String,
    /// The names of its containers, infra and init containers included, in start order.
    pub containers: Vec<String>,
}

/// What `play` made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlayReport {
    pub pods: Vec<PlayedPod>,
    /// Volumes it created (existing ones are used as they are).
    pub volumes: Vec<String>,
    /// Fields it did not use (the manifest's unknown fields are in [`Manifest::warnings`]).
    pub warnings: Vec<String>,
}

/// How to take pods down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DownOptions {
    /// Remove the volumes of the manifest's PersistentVolumeClaims too (podman's
    /// `--force`); only those `play` created.
    pub volumes: bool,
}

/// What `down` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownReport {
    pub pods: Vec<String>,
    pub containers: Vec<String>,
    pub volumes: Vec<String>,
}

/// The files of configMap and secret volumes live under the root.
fn files_root(engine: &Engine) -> PathBuf {
    engine.root().join("kube")
}

/// The pods of a manifest: each Pod, and each Deployment's replicas (`NAME-pod`, or
/// `NAME-pod-0`... when there are several).
fn pod_sources(manifest: &Manifest) -> Result<Vec<PodSource<'_>>, KubeError> {
    let mut out = Vec::new();
    for (at, p) in manifest.pods() {
        out.push(PodSource {
            name: p.metadata.name.clone(),
            at,
            prefix: "spec",
            spec: &p.spec,
            labels: BTreeMap::new(),
        });
    }
    for (at, d) in manifest.deployments() {
        let invalid = |path: &str, reason: String| KubeError::Invalid {
            at: at.to_string(),
            path: path.into(),
            reason,
        };
        let template = &d.spec.template;
        for (k, v) in &d.spec.selector.match_labels {
            if template.metadata.labels.get(k) != Some(v) {
                return Err(invalid(
                    "spec.selector.matchLabels",
                    format!("{k}={v} does not match spec.template.metadata.labels"),
                ));
            }
        }
        let replicas = d.spec.replicas.unwrap_or(1);
        let host_ports = template
            .spec
            .containers
            .iter()
            .any(|c| c.ports.iter().any(|p| p.host_port.is_some()));
        if replicas > 1 && host_ports {
            return Err(invalid(
                "spec.replicas",
                format!("{replicas} replicas cannot all publish the same hostPort on one machine"),
            ));
        }
        for i in 0..replicas {
            let name = if replicas == 1 {
                format!("{}-pod", d.metadata.name)
            } else {
                format!("{}-pod-{i}", d.metadata.name)
            };
            let mut labels = BTreeMap::new();
            labels.insert(LABEL_DEPLOYMENT.to_string(), d.metadata.name.clone());
            out.push(PodSource {
                name,
                at,
                prefix: "spec.template.spec",
                spec: &template.spec,
                labels,
            });
        }
    }
    Ok(out)
}

/// The names of the pods a manifest describes.
pub fn pod_names(manifest: &Manifest) -> Result<Vec<String>, KubeError> {
    Ok(pod_sources(manifest)?.into_iter().map(|s| s.name).collect())
}

/// The images a manifest's containers use, each once, with its `imagePullPolicy`
/// (`Always`, `IfNotPresent`, `Never`; empty when not given).
pub fn images(manifest: &Manifest) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let specs = manifest
        .pods()
        .map(|(_, p)| &p.spec)
        .chain(manifest.deployments().map(|(_, d)| &d.spec.template.spec));
    for spec in specs {
        for c in spec.init_containers.iter().chain(&spec.containers) {
            let policy = c.image_pull_policy.clone().unwrap_or_default();
            match out.iter_mut().find(|(i, _)| *i == c.image) {
                Some(e) if policy == "Always" => e.1 = policy,
                Some(_) => {}
                None => out.push((c.image.clone(), policy)),
            }
        }
    }
    out
}

/// Runs the pods of a manifest.
pub fn play(engine: &Engine, manifest: &Manifest, opts: PlayOptions) -> Result<PlayReport> {
    let root = files_root(engine);
    let mut plans = Vec::new();
    for s in pod_sources(manifest)? {
        let mut plan = plan_pod(&s, manifest, &root)?;
        let infra = &mut plan.infra.1;
        if let Some(net) = &opts.network {
            if infra.host_config.network_mode != "host" {
                infra.host_config.network_mode = net.clone();
                infra.networking_config.endpoints_config.insert(
                    net.clone(),
                    EndpointSettings {
                        aliases: vec![plan.name.clone()],
                        ..EndpointSettings::default()
                    },
                );
            }
        }
        plans.push(plan);
    }
    // Every request as a create would check it, before anything is made.
    for p in &plans {
        for (_, req) in std::iter::once(&p.infra).chain(&p.init).chain(&p.apps) {
            containers::check(req)?;
        }
    }
    for p in &plans {
        if !pod_containers(engine, &p.name)?.is_empty() {
            if !opts.replace {
                return Err(Error::PodExists {
                    pod: p.name.clone(),
                });
            }
            let mut report = DownReport::default();
            down_pod(engine, &p.name, &mut report)?;
        }
    }
    let mut report = PlayReport::default();
    for p in &plans {
        report.warnings.extend(p.warnings.iter().cloned());
    }
    // A cluster would publish a Service's node ports; on one machine a pod's hostPorts do.
    for o in &manifest.objects {
        if let crate::kube::Object::Service(svc) = &o.object {
            for (i, port) in svc.spec.ports.iter().enumerate() {
                if let Some(n) = port.node_port {
                    report.warnings.push(format!(
                        "{}: spec.ports[{i}].nodePort: {n} is not published (give the container port a hostPort)",
                        o.at
                    ));
                }
            }
        }
    }
    let made = (|| -> Result<()> {
        for c in manifest.claims() {
            let mut labels = c.metadata.labels.clone();
            labels.insert(LABEL_CLAIM.into(), c.metadata.name.clone());
            let v = VolumePlan {
                name: c.metadata.name.clone(),
                driver_opts: BTreeMap::new(),
                labels,
            };
            ensure_volume(engine, &v, &mut report.volumes)?;
        }
        for p in &plans {
            report.pods.push(PlayedPod {
                name: p.name.clone(),
                containers: Vec::new(),
            });
            run_pod(engine, p, &mut report)?;
        }
        Ok(())
    })();
    match made {
        Ok(()) => Ok(report),
        Err(error) => {
            let also = undo(engine, &report);
            if also.is_empty() {
                Err(error)
            } else {
                Err(Error::Undone {
                    error: Box::new(error),
                    also,
                })
            }
        }
    }
}

fn ensure_volume(engine: &Engine, v: &VolumePlan, made: &mut Vec<String>) -> Result<()> {
    if volumes::inspect(engine, &v.name).is_ok() {
        return Ok(());
    }
    volumes::create(
        engine,
        &VolumeCreateRequest {
            name: v.name.clone(),
            driver: String::new(),
            driver_opts: v.driver_opts.clone(),
            labels: v.labels.clone(),
        },
    )?;
    made.push(v.name.clone());
    Ok(())
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn run_pod(engine: &Engine, p: &PodPlan, report: &mut PlayReport) -> Result<()> {
    for d in &p.host_dirs {
        std::fs::create_dir_all(d).map_err(io_err("creating the hostPath directory", d))?;
    }
    for f in &p.host_files {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(f)
            .map_err(io_err("creating the hostPath file", f))?;
    }
    for f in &p.files {
        if let Some(dir) = f.path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        }
        let mut file = std::fs::File::create(&f.path).map_err(io_err("writing", &f.path))?;
        file.write_all(&f.content)
            .map_err(io_err("writing", &f.path))?;
        file.set_permissions(std::fs::Permissions::from_mode(f.mode))
            .map_err(io_err("setting the mode of", &f.path))?;
    }
    for v in &p.volumes {
        ensure_volume(engine, v, &mut report.volumes)?;
    }
    let run = |name: &str, req: &ContainerCreateRequest, report: &mut PlayReport| -> Result<()> {
        let opts = CreateOptions {
            name: Some(name.to_string()),
            ..CreateOptions::default()
        };
        containers::run(engine, req, &opts, RunMode::Detached)?;
        if let Some(last) = report.pods.last_mut() {
            last.containers.push(name.to_string());
        }
        Ok(())
    };
    run(&p.infra.0, &p.infra.1, report).map_err(|e| match e {
        Error::Ops(source) => Error::Infra {
            pod: p.name.clone(),
            image: p.infra.1.config.image.clone(),
            source: Box::new(source),
        },
        e => e,
    })?;
    for (name, req) in &p.init {
        run(name, req, report)?;
        let status = containers::wait(engine, name, WaitCondition::NotRunning, &Cancel::new())?;
        if status.status_code != 0 {
            return Err(Error::InitFailed {
                pod: p.name.clone(),
                container: name.clone(),
                code: status.status_code,
            });
        }
    }
    for (name, req) in &p.apps {
        run(name, req, report)?;
    }
    Ok(())
}

/// Removes what a failed play made; returns what went wrong doing so.
fn undo(engine: &Engine, report: &PlayReport) -> Vec<String> {
    let mut also = Vec::new();
    for p in report.pods.iter().rev() {
        let mut r = DownReport::default();
        if let Err(e) = down_pod(engine, &p.name, &mut r) {
            also.extend(e.also());
            also.push(format!("Error: removing pod {}: {e}", p.name));
        }
    }
    for v in &report.volumes {
        if let Err(e) = volumes::remove(engine, v) {
            if volumes::inspect(engine, v).is_ok() {
                also.push(format!("Error: removing volume {v}: {}", chain(&e)));
            }
        }
    }
    also
}

/// The containers of a pod (summaries), whatever their state.
fn pod_containers(engine: &Engine, pod: &str) -> Result<Vec<crate::ops::models::ContainerSummary>> {
    let mut filters = Filters::new();
    filters.add("label", &format!("{LABEL_POD}={pod}"));
    Ok(containers::list(
        engine,
        &ListOptions {
            all: true,
            limit: None,
            filters,
            size: false,
        },
    )?)
}

/// Removes a pod: its containers (infra last: the others are in its network namespace),
/// its emptyDir volumes and its configMap and secret files. Goes on after an error and
/// reports every one.
fn down_pod(engine: &Engine, pod: &str, report: &mut DownReport) -> Result<()> {
    let mut list = pod_containers(engine, pod)?;
    list.sort_by_key(|c| c.labels.get(LABEL_ROLE).map(String::as_str) == Some("infra"));
    let mut errors: Vec<Error> = Vec::new();
    let found = !list.is_empty();
    for c in list {
        let name = c
            .names
            .first()
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_else(|| c.id.clone());
        let opts = RemoveOptions {
            force: true,
            volumes: true,
        };
        match containers::remove(engine, &c.id, opts) {
            Ok(()) => report.containers.push(name),
            Err(e) => errors.push(e.into()),
        }
    }
    let mut filters = Filters::new();
    filters.add("label", &format!("{LABEL_POD}={pod}"));
    match volumes::list(engine, &filters) {
        Ok(vols) => {
            for v in vols.volumes {
                match volumes::remove(engine, &v.name) {
                    Ok(()) => report.volumes.push(v.name),
                    Err(e) => errors.push(e.into()),
                }
            }
        }
        Err(e) => errors.push(e.into()),
    }
    let dir = pod_files_dir(&files_root(engine), pod);
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            errors.push(Error::Io {
                what: "removing",
                path: dir,
                source: e,
            });
        }
    }
    if found {
        report.pods.push(pod.to_string());
    }
    collect(errors)
}

fn collect(mut errors: Vec<Error>) -> Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    let first = errors.remove(0);
    if errors.is_empty() {
        return Err(first);
    }
    let also = errors
        .iter()
        .flat_map(|e| {
            let mut l = e.also();
            l.push(format!("Error: {e}"));
            l
        })
        .collect();
    Err(Error::Undone {
        error: Box::new(first),
        also,
    })
}

/// Removes the pods of a manifest (and with `volumes`, the volumes `play` made for its
/// claims). Pods that are not there are skipped.
pub fn down(engine: &Engine, manifest: &Manifest, opts: DownOptions) -> Result<DownReport> {
    let mut report = DownReport::default();
    let mut errors = Vec::new();
    for pod in pod_names(manifest)? {
        if let Err(e) = down_pod(engine, &pod, &mut report) {
            errors.push(e);
        }
    }
    if opts.volumes {
        let mut claims: Vec<String> = manifest.claims().map(|c| c.metadata.name.clone()).collect();
        let specs = manifest
            .pods()
            .map(|(_, p)| &p.spec)
            .chain(manifest.deployments().map(|(_, d)| &d.spec.template.spec));
        for spec in specs {
            for v in &spec.volumes {
                if let Some(c) = &v.persistent_volume_claim {
                    claims.push(c.claim_name.clone());
                }
            }
        }
        claims.sort();
        claims.dedup();
        for name in claims {
            let made_by_play = volumes::inspect(engine, &name)
                .ok()
                .and_then(|v| v.labels)
                .is_some_and(|l| l.contains_key(LABEL_CLAIM));
            if made_by_play {
                match volumes::remove(engine, &name) {
                    Ok(()) => report.volumes.push(name),
                    Err(e) => errors.push(e.into()),
                }
            }
        }
    }
    collect(errors)?;
    Ok(report)
}
