//! What the other verbs need beyond the container operations: picking a project's
//! containers by service, the projects in the store (`ls`), and the one-off container of
//! `run`.

use std::collections::BTreeMap;

use crate::compose::model::Project;
use crate::compose::ComposeError;
use crate::ops::containers::{self, ListOptions};
use crate::ops::error::Result;
use crate::ops::models::{ContainerCreateRequest, Filters};
use crate::ops::{parse, Engine};

use super::convert::create_request;
use super::{containers as observed, labels, ProjectContainer};

/// The project's containers of `services` (all when empty), in service and number order;
/// a service the model does not have is an error.
pub fn select(
    engine: &Engine,
    project: &str,
    model: Option<&Project>,
    services: &[String],
    oneoff: bool,
) -> Result<Vec<ProjectContainer>> {
    if let Some(p) = model {
        for s in services {
            if !p.services.contains_key(s) && !p.disabled.contains_key(s) {
                return Err(ComposeError::NoSuchService { name: s.clone() }.into());
            }
        }
    }
    let all = observed(engine, project, oneoff)?;
    let mut out: Vec<ProjectContainer> = all
        .into_iter()
        .filter(|c| services.is_empty() || services.contains(&c.service))
        .collect();
    // Dependencies first, when the model says what they are.
    if let Some(p) = model {
        if let Ok(order) = super::start_order(p) {
            out.sort_by_key(|c| {
                (
                    order
                        .iter()
                        .position(|s| *s == c.service)
                        .unwrap_or(usize::MAX),
                    c.number,
                )
            });
        }
    }
    Ok(out)
}

/// A project found in the store (`ls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectSummary {
    pub name: String,
    /// `running(2), exited(1)`, as docker compose writes it.
    pub status: String,
    pub config_files: String,
}

/// Every project with a container in the store; stopped-only ones with `all`.
pub fn list_projects(engine: &Engine, all: bool) -> Result<Vec<ProjectSummary>> {
    let mut filters = Filters::new();
    filters.add("label", labels::PROJECT);
    let list = containers::list(
        engine,
        &ListOptions {
            all: true,
            limit: None,
            filters,
            size: false,
        },
    )?;
    let mut by: BTreeMap<String, (BTreeMap<String, usize>, String)> = BTreeMap::new();
    for c in list {
        let Some(p) = c.labels.get(labels::PROJECT) else {
            continue;
        };
        let e = by.entry(p.clone()).or_default();
        *e.0.entry(c.state.clone()).or_default() += 1;
        if let Some(f) = c.labels.get(labels::CONFIG_FILES) {
            e.1 = f.clone();
        }
    }
    Ok(by
        .into_iter()
        .filter(|(_, (states, _))| all || states.contains_key("running"))
        .map(|(name, (states, files))| ProjectSummary {
            name,
            status: states
                .iter()
                .map(|(s, n)| format!("{s}({n})"))
                .collect::<Vec<_>>()
                .join(", "),
            config_files: files,
        })
        .collect())
}

/// `run`'s flags.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Replaces the service's command when not empty.
    pub command: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    /// `-e KEY=VALUE`.
    pub env: Vec<String>,
    pub name: Option<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// `--service-ports`: publish the service's ports (not published otherwise).
    pub service_ports: bool,
    /// `-p`: further ports.
    pub publish: Vec<String>,
    pub tty: bool,
    pub interactive: bool,
    pub rm: bool,
    /// `-l KEY=VALUE`.
    pub labels: Vec<String>,
}

/// The one-off container of `run SERVICE`: its name (`PROJECT-SERVICE-run-XXXXXXXXXXXX`)
/// and create request.
pub fn run_request(
    engine: &Engine,
    p: &Project,
    service: &str,
    opts: &RunOptions,
) -> Result<(String, ContainerCreateRequest)> {
    let with_files = super::up::inline_files(engine, p)?;
    let p = &with_files;
    let Some(svc) = p.services.get(service).or_else(|| p.disabled.get(service)) else {
        return Err(ComposeError::NoSuchService {
            name: service.into(),
        }
        .into());
    };
    let mut svc = svc.clone();
    if !opts.service_ports {
        svc.ports.clear();
    }
    svc.container_name = None;
    let running = |target: &str| -> Option<String> {
        observed(engine, &p.name, false)
            .ok()?
            .into_iter()
            .find(|c| c.service == target && c.running())
            .map(|c| c.name)
    };
    let mut req = create_request(p, service, &svc, 1, true, &running)?;
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => {
            let mut b = [0u8; 6];
            getrandom::fill(&mut b).map_err(|source| crate::ops::OpsError::Random {
                what: "name",
                source,
            })?;
            format!("{}-{service}-run-{}", p.name, hex::encode(b))
        }
    };
    req.config.labels.remove(labels::NUMBER);
    req.config.labels.insert(labels::NUMBER.into(), "1".into());
    for l in &opts.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        req.config.labels.insert(k.into(), v.into());
    }
    if !opts.command.is_empty() {
        req.config.cmd = Some(opts.command.clone());
    }
    if let Some(e) = &opts.entrypoint {
        req.config.entrypoint = Some(e.clone());
    }
    req.config.env.extend(opts.env.iter().cloned());
    if let Some(u) = &opts.user {
        req.config.user = u.clone();
    }
    if let Some(w) = &opts.workdir {
        req.config.working_dir = w.clone();
    }
    req.config.tty = opts.tty;
    req.config.open_stdin = opts.interactive;
    req.config.attach_stdin = opts.interactive;
    req.config.attach_stdout = true;
    req.config.attach_stderr = true;
    req.host_config.auto_remove = opts.rm;
    for pub_ in &opts.publish {
        parse::publish(
            pub_,
            &mut req.config.exposed_ports,
            &mut req.host_config.port_bindings,
        )?;
    }
    Ok((name, req))
}
