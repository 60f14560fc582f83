//! `down`: the project's containers stopped (all at once) and removed, then its networks,
//! with `-v` its volumes and with `--rmi` its images. Without a model (no compose file,
//! only `-p`), what the labels name goes.

use std::sync::Mutex;

use crate::compose::model::Project;
use crate::ops::containers::{self, RemoveOptions, StopOptions};
use crate::ops::error::{OpsError, Result};
use crate::ops::models::Filters;
use crate::ops::{images, networks, volumes, Engine, ErrorClass, Progress};

use super::{containers as observed, labels, say};

/// `--rmi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveImages {
    /// Images without a custom tag (the ones `build` named `PROJECT-SERVICE`).
    Local,
    All,
}

#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub volumes: bool,
    pub remove_orphans: bool,
    pub images: Option<RemoveImages>,
    /// `-t`: seconds before SIGKILL; the container's own setting when `None`.
    pub timeout: Option<i64>,
}

pub fn down(
    engine: &Engine,
    project: &str,
    model: Option<&Project>,
    opts: &DownOptions,
    progress: &Progress,
) -> Result<()> {
    let all = observed(engine, project, true)?;
    let (mine, orphans): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| match model {
        Some(p) => p.services.contains_key(&c.service) || p.disabled.contains_key(&c.service),
        None => true,
    });
    let mut doomed = mine;
    if opts.remove_orphans {
        doomed.extend(orphans);
    } else if !orphans.is_empty() {
        let names: Vec<&str> = orphans.iter().map(|c| c.name.as_str()).collect();
        progress.status(&format!(
            "Found orphan containers ({}) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            names.join(", ")
        ));
    }
    let errors: Mutex<Vec<OpsError>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for c in &doomed {
            let errors = &errors;
            s.spawn(move || {
                let stop = StopOptions {
                    signal: None,
                    timeout: opts.timeout,
                };
                if c.running() {
                    say(progress, "Container", &c.name, "Stopping");
                }
                let r = containers::stop(engine, &c.name, &stop).and_then(|_| {
                    say(progress, "Container", &c.name, "Removing");
                    containers::remove(
                        engine,
                        &c.name,
                        RemoveOptions {
                            force: true,
                            volumes: opts.volumes,
                        },
                    )
                });
                match r {
                    Ok(()) => say(progress, "Container", &c.name, "Removed"),
                    Err(e) if e.class() == ErrorClass::NotFound => {}
                    Err(e) => {
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
        return Err(errors.remove(0));
    }
    // Networks: the model's, else those labelled with the project.
    let nets: Vec<String> = match model {
        Some(p) => p
            .networks
            .iter()
            .filter(|(_, n)| n.external != Some(true))
            .map(|(k, n)| n.name.clone().unwrap_or_else(|| k.clone()))
            .collect(),
        None => networks::list(engine)?
            .into_iter()
            .filter(|n| n.labels.get(labels::PROJECT).is_some_and(|v| v == project))
            .map(|n| n.name)
            .collect(),
    };
    for n in nets {
        match networks::inspect(engine, &n) {
            Ok(_) => {}
            Err(e) if e.class() == ErrorClass::NotFound => continue,
            Err(e) => return Err(e),
        }
        say(progress, "Network", &n, "Removing");
        networks::remove(engine, &n)?;
        say(progress, "Network", &n, "Removed");
    }
    if opts.volumes {
        let vols: Vec<String> = match model {
            Some(p) => p
                .volumes
                .iter()
                .filter(|(_, v)| v.external != Some(true))
                .map(|(k, v)| v.name.clone().unwrap_or_else(|| k.clone()))
                .collect(),
            None => {
                let mut f = Filters::new();
                f.add("label", &format!("{}={project}", labels::PROJECT));
                volumes::list(engine, &f)?
                    .volumes
                    .into_iter()
                    .map(|v| v.name)
                    .collect()
            }
        };
        for v in vols {
            match volumes::remove(engine, &v) {
                Ok(()) => say(progress, "Volume", &v, "Removed"),
                Err(e) if e.class() == ErrorClass::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    if let (Some(which), Some(p)) = (opts.images, model) {
        let mut names: Vec<String> = p
            .services
            .iter()
            .filter(|(_, s)| which == RemoveImages::All || s.image.is_none())
            .map(|(n, s)| super::image_name(p, n, s))
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            if !images::exists(engine, &name)? {
                continue;
            }
            let report = images::remove(engine, std::slice::from_ref(&name), false)?;
            if let Some(e) = report.errors.into_iter().next() {
                return Err(e);
            }
            say(progress, "Image", &name, "Removed");
        }
    }
    Ok(())
}
