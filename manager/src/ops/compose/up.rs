//! `up` and `create`: networks and volumes first, then per service a plan (create,
//! recreate, start, remove) from the containers found and their config hashes, run with
//! every service in a thread of its own that starts once its dependencies' conditions
//! hold (`service_started`, `service_healthy`, `service_completed_successfully`). A second
//! `up` with nothing changed touches nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::compose::model::{Condition, Project, Service};
use crate::compose::order::dependencies;
use crate::compose::{config_hash, ComposeError};
use crate::ops::cancel::Cancel;
use crate::ops::containers::{self, CreateOptions, RemoveOptions, RunMode, StopOptions};
use crate::ops::error::{chain, OpsError, Result};
use crate::ops::images::{self, PullOptions};
use crate::ops::models::{
    Ipam, IpamConfig, NetworkCreateRequest, VolumeCreateRequest, WaitCondition,
};
use crate::ops::{networks, volumes, Engine, ErrorClass, Progress};

use super::convert::{container_name, create_request, image_name};
use super::{containers as observed, labels, say, ProjectContainer};

/// `up`'s flags.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Only these services (and their dependencies unless `no_deps`); all when empty.
    pub services: Vec<String>,
    pub no_deps: bool,
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub remove_orphans: bool,
    /// `--scale SERVICE=N`.
    pub scale: BTreeMap<String, u32>,
    /// False for `create`: containers are made, not started.
    pub start: bool,
    /// `--build`: build images before starting.
    pub build: bool,
    /// `--no-build`: never build, even when the image is missing.
    pub no_build: bool,
    /// `--wait`: return once every container runs (and is healthy, with a check).
    pub wait: bool,
    /// How long a dependency (and `--wait`) may take to become healthy.
    pub timeout: Duration,
    /// `-t`: seconds a replaced or removed container gets to stop; its own setting when
    /// `None`.
    pub stop_timeout: Option<i64>,
}

impl Default for UpOptions {
    fn default() -> Self {
        Self {
            services: Vec::new(),
            no_deps: false,
            force_recreate: false,
            no_recreate: false,
            remove_orphans: false,
            scale: BTreeMap::new(),
            start: true,
            build: false,
            no_build: false,
            wait: false,
            timeout: Duration::from_secs(120),
            stop_timeout: None,
        }
    }
}

/// The selected services and, unless `no_deps`, what they depend on.
pub(crate) fn selection(
    p: &Project,
    services: &[String],
    no_deps: bool,
) -> Result<BTreeSet<String>> {
    if services.is_empty() {
        return Ok(p.services.keys().cloned().collect());
    }
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = services.to_vec();
    while let Some(s) = todo.pop() {
        let Some(svc) = p.services.get(&s) else {
            return Err(ComposeError::NoSuchService { name: s }.into());
        };
        if out.insert(s.clone()) && !no_deps {
            todo.extend(dependencies(svc));
        }
    }
    Ok(out)
}

/// Makes and checks every selected service's create request before anything is made: a bad
/// value (a duration, a size, a device) stops `up` with nothing created or pulled.
fn check(p: &Project, selected: &BTreeSet<String>) -> Result<()> {
    // Inline secrets and configs get their files only when `up` runs.
    let mut p = p.clone();
    for o in p.secrets.values_mut().chain(p.configs.values_mut()) {
        if o.file.is_none() && o.content.is_some() {
            o.file = Some("/dev/null".into());
        }
    }
    let p = &p;
    for name in selected {
        let svc = &p.services[name];
        let placeholder = |_: &str| Some("placeholder".to_string());
        let req = create_request(p, name, svc, 1, false, &placeholder)?;
        containers::check(&req).map_err(|e| ComposeError::Field {
            field: format!("services.{name}"),
            message: chain(&e),
        })?;
    }
    Ok(())
}

/// Pulls the images of the selected services that are missing (or all with
/// `policy = always`), per service `pull_policy`.
pub async fn pull_missing(
    engine: &Engine,
    p: &Project,
    services: &[String],
    always: bool,
    progress: &Progress,
    cancel: &Cancel,
) -> Result<()> {
    let selected = selection(p, services, false)?;
    check(p, &selected)?;
    let mut done = BTreeSet::new();
    for name in &selected {
        let svc = &p.services[name];
        let Some(image) = &svc.image else { continue };
        let policy = svc.pull_policy.as_deref().unwrap_or("missing");
        let pull = match policy {
            "always" => true,
            "never" | "build" => false,
            _ if svc.build.is_some() && !always => false,
            _ => always || !images::exists(engine, image)?,
        };
        if !pull || !done.insert(image.clone()) {
            continue;
        }
        say(progress, "Image", image, "Pulling");
        let opts = PullOptions {
            reference: image.clone(),
            platform: svc.platform.clone(),
            ..PullOptions::default()
        };
        images::pull(engine, &opts, &Progress::discard(), cancel).await?;
        say(progress, "Image", image, "Pulled");
    }
    Ok(())
}

/// Creates the project's networks and volumes that do not exist yet; external ones must.
pub fn create_networks_and_volumes(
    engine: &Engine,
    p: &Project,
    progress: &Progress,
) -> Result<()> {
    let used: BTreeSet<&String> = p
        .services
        .values()
        .flat_map(|s| s.networks.keys())
        .collect();
    for (key, n) in &p.networks {
        if !used.contains(key) {
            continue;
        }
        let name = n.name.clone().unwrap_or_else(|| key.clone());
        match networks::inspect(engine, &name) {
            Ok(_) => continue,
            Err(e) if e.class() == ErrorClass::NotFound => {}
            Err(e) => return Err(e),
        }
        if n.external == Some(true) {
            return Err(ComposeError::ExternalMissing {
                what: "network",
                name,
            }
            .into());
        }
        let mut labels_map: BTreeMap<String, String> = n
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
            .collect();
        labels_map.insert(labels::PROJECT.into(), p.name.clone());
        labels_map.insert(labels::NETWORK.into(), key.clone());
        labels_map.insert(labels::VERSION.into(), super::COMPOSE_VERSION.into());
        let ipam = n.ipam.as_ref().map(|i| Ipam {
            driver: i.driver.clone().unwrap_or_default(),
            options: None,
            config: i
                .config
                .iter()
                .map(|c| IpamConfig {
                    subnet: c.subnet.clone().unwrap_or_default(),
                    gateway: c.gateway.clone().unwrap_or_default(),
                    ip_range: c.ip_range.clone().unwrap_or_default(),
                })
                .collect(),
        });
        let req = NetworkCreateRequest {
            name: name.clone(),
            driver: n.driver.clone().unwrap_or_default(),
            internal: n.internal.unwrap_or(false),
            enable_ipv6: n.enable_ipv6.unwrap_or(false),
            ipam: ipam.unwrap_or_default(),
            labels: labels_map,
            options: n
                .driver_opts
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
                .collect(),
        };
        say(progress, "Network", &name, "Creating");
        networks::create(engine, &req)?;
        say(progress, "Network", &name, "Created");
    }
    let used: BTreeSet<&String> = p
        .services
        .values()
        .flat_map(|s| s.volumes.iter())
        .filter(|v| v.kind == "volume")
        .filter_map(|v| v.source.as_ref())
        .collect();
    for (key, v) in &p.volumes {
        if !used.contains(key) {
            continue;
        }
        let name = v.name.clone().unwrap_or_else(|| key.clone());
        match volumes::inspect(engine, &name) {
            Ok(_) => continue,
            Err(e) if e.class() == ErrorClass::NotFound => {}
            Err(e) => return Err(e),
        }
        if v.external == Some(true) {
            return Err(ComposeError::ExternalMissing {
                what: "volume",
                name,
            }
            .into());
        }
        let mut labels_map: BTreeMap<String, String> = v
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
            .collect();
        labels_map.insert(labels::PROJECT.into(), p.name.clone());
        labels_map.insert(labels::VOLUME.into(), key.clone());
        labels_map.insert(labels::VERSION.into(), super::COMPOSE_VERSION.into());
        say(progress, "Volume", &name, "Creating");
        volumes::create(
            engine,
            &VolumeCreateRequest {
                name: name.clone(),
                driver: v.driver.clone().unwrap_or_default(),
                driver_opts: v
                    .driver_opts
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
                    .collect(),
                labels: labels_map,
            },
        )?;
        say(progress, "Volume", &name, "Created");
    }
    Ok(())
}

/// Secrets and configs given as `content:` (or `environment:`) become files under the
/// store (`compose/PROJECT/secrets/NAME`), so containers can mount them like the others.
pub(crate) fn inline_files(engine: &Engine, p: &Project) -> Result<Project> {
    let mut p = p.clone();
    let base = engine.root().join("compose").join(&p.name);
    for (kind, objects) in [("secrets", &mut p.secrets), ("configs", &mut p.configs)] {
        for (name, o) in objects.iter_mut() {
            let Some(content) = o.content.take() else {
                continue;
            };
            let dir = base.join(kind);
            std::fs::create_dir_all(&dir)
                .map_err(|e| OpsError::io(format!("creating {}", dir.display()), e))?;
            let path = dir.join(name);
            std::fs::write(&path, content)
                .map_err(|e| OpsError::io(format!("writing {}", path.display()), e))?;
            o.file = Some(path.display().to_string());
        }
    }
    Ok(p)
}

/// What became of a service in this `up`: its containers, or why it failed.
#[derive(Debug, Clone)]
enum Outcome {
    /// Its containers, and whether any was made anew in this `up`.
    Ready(Vec<String>, bool),
    Failed(String),
}

struct Board {
    outcomes: Mutex<BTreeMap<String, Outcome>>,
    changed: Condvar,
}

impl Board {
    fn set(&self, service: &str, o: Outcome) {
        if let Ok(mut m) = self.outcomes.lock() {
            m.insert(service.to_string(), o);
        }
        self.changed.notify_all();
    }

    fn wait_for(&self, service: &str, cancel: &Cancel) -> Result<Outcome> {
        let mut m = self
            .outcomes
            .lock()
            .map_err(|_| ComposeError::Interrupted)?;
        loop {
            if let Some(o) = m.get(service) {
                return Ok(o.clone());
            }
            crate::ops::cancel::check(cancel)?;
            m = self
                .changed
                .wait_timeout(m, Duration::from_millis(200))
                .map_err(|_| ComposeError::Interrupted)?
                .0;
        }
    }
}

/// `up` (and `create`, with `start: false`).
pub fn up(
    engine: &Engine,
    p: &Project,
    opts: &UpOptions,
    progress: &Progress,
    cancel: &Cancel,
) -> Result<()> {
    let selected = selection(p, &opts.services, opts.no_deps)?;
    let with_files = inline_files(engine, p)?;
    let p = &with_files;
    for name in &selected {
        let svc = &p.services[name];
        let image = image_name(p, name, svc);
        if svc.build.is_some() && !opts.no_build && (opts.build || !images::exists(engine, &image)?)
        {
            super::build::build(engine, p, name, progress)?;
        }
    }
    check(p, &selected)?;
    create_networks_and_volumes(engine, p, progress)?;
    let found = observed(engine, &p.name, false)?;
    let orphans: Vec<&ProjectContainer> = found
        .iter()
        .filter(|c| !p.services.contains_key(&c.service) && !p.disabled.contains_key(&c.service))
        .collect();
    if !orphans.is_empty() {
        if opts.remove_orphans {
            for c in orphans {
                remove_container(engine, &c.name, opts.stop_timeout, progress)?;
            }
        } else {
            let names: Vec<&str> = orphans.iter().map(|c| c.name.as_str()).collect();
            progress.status(&format!(
                "Found orphan containers ({}) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
                names.join(", ")
            ));
        }
    }
    let board = Board {
        outcomes: Mutex::new(BTreeMap::new()),
        changed: Condvar::new(),
    };
    // Services outside the selection (`--no-deps`) count as ready with what runs now.
    for name in p.services.keys().filter(|s| !selected.contains(*s)) {
        let names = found
            .iter()
            .filter(|c| &c.service == name)
            .map(|c| c.name.clone())
            .collect();
        board.set(name, Outcome::Ready(names, false));
    }
    let errors: Mutex<Vec<OpsError>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for name in &selected {
            let board = &board;
            let found = &found;
            let errors = &errors;
            scope.spawn(move || {
                let r = run_service(engine, p, name, opts, found, board, progress, cancel);
                match r {
                    Ok((names, changed)) => board.set(name, Outcome::Ready(names, changed)),
                    Err(e) => {
                        board.set(name, Outcome::Failed(chain(&e)));
                        if let Ok(mut v) = errors.lock() {
                            v.push(e);
                        }
                    }
                }
            });
        }
    });
    let mut errors = errors.into_inner().unwrap_or_default();
    if !errors.is_empty() {
        // The root cause first: a dependency's own failure before its dependents'.
        errors
            .sort_by_key(|e| matches!(e, OpsError::Compose(ComposeError::DependencyFailed { .. })));
        return Err(errors.remove(0));
    }
    if opts.wait && opts.start {
        // Jobs others wait for to complete are done when they exited with 0.
        let jobs: BTreeSet<&String> = p
            .services
            .values()
            .flat_map(|s| s.depends_on.iter())
            .filter(|(_, d)| d.condition == Condition::ServiceCompletedSuccessfully)
            .map(|(n, _)| n)
            .collect();
        for c in observed(engine, &p.name, false)? {
            if !selected.contains(&c.service) {
                continue;
            }
            if jobs.contains(&c.service)
                && containers::inspect(engine, &c.name)?.state.exit_code == 0
                && !c.running()
            {
                continue;
            }
            say(progress, "Container", &c.name, "Waiting");
            if !containers::wait_healthy(engine, &c.name, Some(opts.timeout), cancel)? {
                return Err(ComposeError::DependencyFailed {
                    reason: format!("container {} is unhealthy or not running", c.name),
                }
                .into());
            }
            say(progress, "Container", &c.name, "Healthy");
        }
    }
    Ok(())
}

/// One service: wait for its dependencies, then bring its containers to the model.
#[allow(clippy::too_many_arguments)]
fn run_service(
    engine: &Engine,
    p: &Project,
    name: &str,
    opts: &UpOptions,
    found: &[ProjectContainer],
    board: &Board,
    progress: &Progress,
    cancel: &Cancel,
) -> Result<(Vec<String>, bool)> {
    let svc = &p.services[name];
    let follow = if opts.start {
        wait_dependencies(engine, svc, name, board, opts, progress, cancel)?
    } else {
        FollowUp::default()
    };
    let mut changed = false;
    let hash = config_hash(svc);
    let want = opts
        .scale
        .get(name)
        .copied()
        .unwrap_or_else(|| svc.replicas());
    let mine: Vec<&ProjectContainer> = found.iter().filter(|c| c.service == name).collect();
    let mut names = Vec::new();
    // Scaled down: the highest numbers go, all at once.
    let extra: Vec<&&ProjectContainer> = mine
        .iter()
        .filter(|c| c.number > want || c.number == 0)
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = extra
            .iter()
            .map(|c| s.spawn(|| remove_container(engine, &c.name, opts.stop_timeout, progress)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(ComposeError::Interrupted.into())))
            .collect::<Result<Vec<()>>>()
    })?;
    let service_container = |target: &str| -> Option<String> {
        match board.wait_for(target, cancel) {
            Ok(Outcome::Ready(n, _)) => n.first().cloned(),
            _ => None,
        }
    };
    let recreate = |c: &ProjectContainer| {
        !opts.no_recreate && (c.hash != hash || opts.force_recreate || follow.recreate)
    };
    for number in 1..=want {
        crate::ops::cancel::check(cancel)?;
        let existing = mine.iter().find(|c| c.number == number);
        let cname = container_name(p, name, svc, number);
        match existing {
            Some(c) if !recreate(c) => {
                if opts.start && c.running() && follow.restart {
                    say(progress, "Container", &c.name, "Restarting");
                    let stop = StopOptions {
                        signal: None,
                        timeout: opts.stop_timeout,
                    };
                    containers::restart(engine, &c.name, &stop)?;
                    say(progress, "Container", &c.name, "Started");
                } else if opts.start && !c.running() {
                    say(progress, "Container", &c.name, "Starting");
                    containers::start(engine, &c.name)?;
                    say(progress, "Container", &c.name, "Started");
                } else {
                    say(progress, "Container", &c.name, "Running");
                }
                names.push(c.name.clone());
            }
            Some(c) => {
                say(progress, "Container", &c.name, "Recreate");
                stop_and_remove(engine, &c.name, opts.stop_timeout)?;
                let req = create_request(p, name, svc, number, false, &service_container)?;
                make(engine, &req, &cname, opts.start, progress, "Recreated")?;
                names.push(cname);
                changed = true;
            }
            None => {
                say(progress, "Container", &cname, "Creating");
                let req = create_request(p, name, svc, number, false, &service_container)?;
                make(engine, &req, &cname, opts.start, progress, "Created")?;
                names.push(cname);
                changed = true;
            }
        }
    }
    Ok((names, changed))
}

fn make(
    engine: &Engine,
    req: &crate::ops::models::ContainerCreateRequest,
    name: &str,
    start: bool,
    progress: &Progress,
    made: &str,
) -> Result<()> {
    let opts = CreateOptions {
        name: Some(name.to_string()),
        ..CreateOptions::default()
    };
    if start {
        containers::run(engine, req, &opts, RunMode::Detached)?;
        say(progress, "Container", name, made);
        say(progress, "Container", name, "Started");
    } else {
        containers::create(engine, req, &opts)?;
        say(progress, "Container", name, made);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn wait_dependencies(
    engine: &Engine,
    svc: &Service,
    name: &str,
    board: &Board,
    opts: &UpOptions,
    progress: &Progress,
    cancel: &Cancel,
) -> Result<FollowUp> {
    let mut follow = FollowUp::default();
    for dep in dependencies(svc) {
        let outcome = board.wait_for(&dep, cancel)?;
        let d = svc.depends_on.get(&dep);
        let required = d.is_none_or(|d| d.required);
        let failed = |reason: String| -> Result<()> {
            if required {
                Err(ComposeError::DependencyFailed { reason }.into())
            } else {
                progress.status(&format!(
                    "WARN: optional dependency {dep:?} of {name:?}: {reason}"
                ));
                Ok(())
            }
        };
        let containers_of = match outcome {
            Outcome::Ready(n, changed) => {
                // A dependency made anew: `restart: true` restarts this service, sharing its
                // network namespace (`network_mode: service:X`) needs new containers.
                if changed {
                    if d.is_some_and(|d| d.restart == Some(true)) {
                        follow.restart = true;
                    }
                    if svc.network_mode.as_deref() == Some(&format!("service:{dep}")) {
                        follow.recreate = true;
                    }
                }
                n
            }
            Outcome::Failed(why) => {
                failed(format!("service {dep:?} failed: {why}"))?;
                continue;
            }
        };
        let condition = d.map(|d| d.condition).unwrap_or(Condition::ServiceStarted);
        for c in &containers_of {
            match condition {
                Condition::ServiceStarted => {}
                Condition::ServiceHealthy => {
                    // As docker compose: waiting for health needs a check to wait for.
                    let i = containers::inspect(engine, c)?;
                    let has_check = i.state.health.is_some()
                        || i.config.healthcheck.as_ref().is_some_and(|h| {
                            !h.test.is_empty() && h.test.first().is_some_and(|t| t != "NONE")
                        });
                    if !has_check {
                        failed(format!("container {c} has no healthcheck configured"))?;
                        continue;
                    }
                    say(progress, "Container", c, "Waiting");
                    if containers::wait_healthy(engine, c, Some(opts.timeout), cancel)? {
                        say(progress, "Container", c, "Healthy");
                    } else {
                        say(progress, "Container", c, "Error");
                        failed(format!("container {c} is unhealthy"))?;
                    }
                }
                Condition::ServiceCompletedSuccessfully => {
                    say(progress, "Container", c, "Waiting");
                    let r = containers::wait(engine, c, WaitCondition::NotRunning, cancel)?;
                    if r.status_code == 0 {
                        say(progress, "Container", c, "Exited");
                    } else {
                        failed(format!(
                            "service {dep:?} didn't complete successfully: exit {}",
                            r.status_code
                        ))?;
                    }
                }
            }
        }
    }
    Ok(follow)
}

/// What a service must do because a dependency was made anew.
#[derive(Debug, Default, Clone, Copy)]
struct FollowUp {
    restart: bool,
    recreate: bool,
}

/// Stops (gracefully, the container's own timeout) and removes a container.
pub(crate) fn stop_and_remove(engine: &Engine, name: &str, timeout: Option<i64>) -> Result<()> {
    let opts = StopOptions {
        signal: None,
        timeout,
    };
    match containers::stop(engine, name, &opts) {
        Ok(_) => {}
        Err(e) if e.class() == ErrorClass::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    containers::remove(
        engine,
        name,
        RemoveOptions {
            force: true,
            volumes: false,
        },
    )
}

fn remove_container(
    engine: &Engine,
    name: &str,
    timeout: Option<i64>,
    progress: &Progress,
) -> Result<()> {
    say(progress, "Container", name, "Stopping");
    stop_and_remove(engine, name, timeout)?;
    say(progress, "Container", name, "Removed");
    Ok(())
}
