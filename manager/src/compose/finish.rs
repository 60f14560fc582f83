//! The last stage of loading: the project's name, profiles applied, environment resolved
//! (`env_file`s and bare names), default network and resource names, and the checks that
//! need the whole project (dependencies, cycles, undefined networks and volumes).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::env::{project_name_from_dir, read_env_file, valid_project_name};
use super::error::{ComposeError, Result};
use super::interpolate::Vars;
use super::load::ProjectOptions;
use super::model::{Condition, DependsOn, Network, Project, Service};

pub fn finish(
    mut p: Project,
    opts: &ProjectOptions,
    vars: &Vars,
    files: &[PathBuf],
    project_dir: &Path,
) -> Result<Project> {
    p.name = project_name(&p, opts, vars, project_dir)?;
    p.working_dir = project_dir.display().to_string();
    p.config_files = files.iter().map(|f| f.display().to_string()).collect();
    apply_profiles(&mut p, opts, vars);
    for (name, svc) in p.services.iter_mut() {
        resolve_environment(name, svc, vars)?;
        // As docker compose: a link is also a dependency (started, restarted with it).
        for link in &svc.links {
            let target = link.split(':').next().unwrap_or(link).to_string();
            svc.depends_on.entry(target).or_insert(DependsOn {
                condition: Condition::ServiceStarted,
                required: true,
                restart: Some(true),
            });
        }
        if svc.image.is_none() && svc.build.is_none() {
            return Err(ComposeError::NoImage {
                service: name.clone(),
            });
        }
        if svc.container_name.is_some() && svc.replicas() > 1 {
            return Err(ComposeError::Invalid {
                path: files.first().cloned().unwrap_or_default(),
                field: format!("services.{name}.container_name"),
                message: format!("services.{name} can't set container_name and scale above 1 as container names must be unique"),
            });
        }
    }
    check_dependencies(&mut p)?;
    default_network(&mut p);
    check_resources(&p)?;
    for (key, n) in p.networks.iter_mut() {
        if n.name.is_none() {
            n.name = Some(if n.external == Some(true) {
                key.clone()
            } else {
                format!("{}_{key}", p.name)
            });
        }
    }
    for (key, v) in p.volumes.iter_mut() {
        if v.name.is_none() {
            v.name = Some(if v.external == Some(true) {
                key.clone()
            } else {
                format!("{}_{key}", p.name)
            });
        }
    }
    for (key, s) in p.secrets.iter_mut().chain(p.configs.iter_mut()) {
        if s.name.is_none() {
            s.name = Some(format!("{}_{key}", p.name));
        }
        // An `environment:` secret is its variable's value, read now like the rest.
        if let Some(var) = s.environment.take() {
            s.content = Some(vars.get(&var).cloned().unwrap_or_default());
        }
    }
    Ok(p)
}

fn project_name(p: &Project, opts: &ProjectOptions, vars: &Vars, dir: &Path) -> Result<String> {
    let explicit = opts
        .project_name
        .clone()
        .or_else(|| {
            vars.get("COMPOSE_PROJECT_NAME")
                .filter(|s| !s.is_empty())
                .cloned()
        })
        .or_else(|| (!p.name.is_empty()).then(|| p.name.clone()));
    let name = match explicit {
        Some(n) => n,
        None => project_name_from_dir(dir),
    };
    if !valid_project_name(&name) {
        return Err(ComposeError::ProjectName { name });
    }
    Ok(name)
}

/// Services whose profiles are all inactive leave the project (into `disabled`), unless
/// named on the command line.
fn apply_profiles(p: &mut Project, opts: &ProjectOptions, vars: &Vars) {
    let mut active: BTreeSet<String> = opts.profiles.iter().cloned().collect();
    if active.is_empty() {
        if let Some(env) = vars.get("COMPOSE_PROFILES") {
            active.extend(
                env.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
    }
    let all = active.contains("*");
    let names: Vec<String> = p.services.keys().cloned().collect();
    for name in names {
        let svc = &p.services[&name];
        let enabled = svc.profiles.is_empty()
            || all
            || svc.profiles.iter().any(|pr| active.contains(pr))
            || opts.services.contains(&name);
        if !enabled {
            if let Some(s) = p.services.remove(&name) {
                p.disabled.insert(name, s);
            }
        }
    }
}

/// `env_file`s under `environment` (which wins), bare names from the variables; the
/// files are read now, so `config` and the config hash show what the container gets.
fn resolve_environment(name: &str, svc: &mut Service, vars: &Vars) -> Result<()> {
    let mut env: BTreeMap<String, Option<String>> = BTreeMap::new();
    for f in std::mem::take(&mut svc.env_file) {
        let path = PathBuf::from(&f.path);
        if !path.is_file() {
            if f.required {
                return Err(ComposeError::Invalid {
                    path,
                    field: format!("services.{name}.env_file"),
                    message: "env file not found".into(),
                });
            }
            continue;
        }
        for (k, v) in read_env_file(&path, vars)? {
            env.insert(k, Some(v));
        }
    }
    for (k, v) in std::mem::take(&mut svc.environment) {
        match v {
            Some(v) => {
                env.insert(k, Some(v));
            }
            None => {
                if let Some(v) = vars.get(&k) {
                    env.insert(k, Some(v.clone()));
                } else {
                    env.remove(&k);
                }
            }
        }
    }
    svc.environment = env;
    Ok(())
}

/// Unknown dependencies, dependencies disabled by profiles, and cycles.
fn check_dependencies(p: &mut Project) -> Result<()> {
    let enabled: BTreeSet<String> = p.services.keys().cloned().collect();
    for (name, svc) in p.services.iter_mut() {
        let mut drop = Vec::new();
        for (dep, d) in svc.depends_on.iter() {
            if enabled.contains(dep) {
                continue;
            }
            if !d.required {
                drop.push(dep.clone());
            } else if p.disabled.contains_key(dep) {
                return Err(ComposeError::DisabledDependency {
                    service: name.clone(),
                    dependency: dep.clone(),
                });
            } else {
                return Err(ComposeError::UnknownDependency {
                    service: name.clone(),
                    dependency: dep.clone(),
                });
            }
        }
        for d in drop {
            svc.depends_on.shift_remove(&d);
        }
        if let Some(target) = svc
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("service:"))
        {
            if !enabled.contains(target) {
                return Err(ComposeError::UnknownDependency {
                    service: name.clone(),
                    dependency: target.into(),
                });
            }
        }
    }
    let _ = super::order::start_order(p)?;
    Ok(())
}

/// Services without `network_mode` or `networks` join `default`, which the project
/// then has.
fn default_network(p: &mut Project) {
    let mut used = false;
    for svc in p.services.values_mut() {
        if svc.network_mode.is_none() && svc.networks.is_empty() {
            svc.networks.insert("default".into(), None);
        }
        used |= svc.networks.contains_key("default");
    }
    if used && !p.networks.contains_key("default") {
        p.networks.insert("default".into(), Network::default());
    }
}

/// Networks and named volumes a service uses must be declared at the top level.
fn check_resources(p: &Project) -> Result<()> {
    for (name, svc) in &p.services {
        for net in svc.networks.keys() {
            if !p.networks.contains_key(net) {
                return Err(ComposeError::UndefinedResource {
                    service: name.clone(),
                    what: "network",
                    name: net.clone(),
                });
            }
        }
        for v in &svc.volumes {
            if v.kind == "volume" {
                if let Some(src) = v.source.as_deref().filter(|s| !s.is_empty()) {
                    if !p.volumes.contains_key(src) {
                        return Err(ComposeError::UndefinedResource {
                            service: name.clone(),
                            what: "volume",
                            name: src.into(),
                        });
                    }
                }
            }
        }
        for s in &svc.secrets {
            if !p.secrets.contains_key(&s.source) {
                return Err(ComposeError::UndefinedResource {
                    service: name.clone(),
                    what: "secret",
                    name: s.source.clone(),
                });
            }
        }
        for s in &svc.configs {
            if !p.configs.contains_key(&s.source) {
                return Err(ComposeError::UndefinedResource {
                    service: name.clone(),
                    what: "config",
                    name: s.source.clone(),
                });
            }
        }
    }
    Ok(())
}
