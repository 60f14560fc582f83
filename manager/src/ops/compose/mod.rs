//! `berth compose`'s engine: a loaded [`Project`] (the model in [`crate::compose`]) is run
//! with the container, network, volume and image operations of this layer. The project's
//! state is what the store holds, found by docker compose's labels: no state file, so
//! `berth ps` and `berth compose ps` agree and docker compose's own labels mean the same.
//!
//! ```text
//!   observed (containers labelled com.docker.compose.project=NAME) + model
//!     → plan per service (create, recreate, start, remove) by config hash
//!     → executor: services in parallel, each after its dependencies' conditions
//! ```

mod build;
mod convert;
mod down;
mod events;
mod up;
mod verbs;

pub use crate::compose::model;
pub use crate::compose::order::start_order;
pub use crate::compose::{
    config_hash, load, render, volume_names, ComposeError, Condition, Format, Project,
    ProjectOptions, Service,
};
pub use build::build;
pub use convert::{container_name, create_request, image_name};
pub use down::{down, DownOptions, RemoveImages};
pub use events::{events, ProjectEvent};
pub use up::{create_networks_and_volumes, pull_missing, up, UpOptions};
pub use verbs::{list_projects, run_request, select, ProjectSummary, RunOptions};

use crate::ops::containers::{self, ListOptions};
use crate::ops::error::Result;
use crate::ops::models::{ContainerSummary, Filters};
use crate::ops::{Engine, Progress};

/// docker compose's labels.
pub mod labels {
    pub const PROJECT: &str = "com.docker.compose.project";
    pub const SERVICE: &str = "com.docker.compose.service";
    pub const NUMBER: &str = "com.docker.compose.container-number";
    pub const HASH: &str = "com.docker.compose.config-hash";
    pub const ONEOFF: &str = "com.docker.compose.oneoff";
    pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
    pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
    pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
    pub const IMAGE: &str = "com.docker.compose.image";
    pub const VERSION: &str = "com.docker.compose.version";
    pub const NETWORK: &str = "com.docker.compose.network";
    pub const VOLUME: &str = "com.docker.compose.volume";
}

/// The compose version berth's labels and `version` report.
pub const COMPOSE_VERSION: &str = "2.29.0";

/// A container of a project, as found in the store.
#[derive(Debug, Clone)]
pub struct ProjectContainer {
    pub summary: ContainerSummary,
    pub name: String,
    pub service: String,
    pub number: u32,
    pub oneoff: bool,
    pub hash: String,
}

impl ProjectContainer {
    pub fn running(&self) -> bool {
        matches!(self.summary.state.as_str(), "running" | "restarting")
    }
}

/// The project's containers (stopped ones too), by service and number; one-off `run`
/// containers only with `oneoff`.
pub fn containers(engine: &Engine, project: &str, oneoff: bool) -> Result<Vec<ProjectContainer>> {
    let mut filters = Filters::new();
    filters.add("label", &format!("{}={project}", labels::PROJECT));
    let list = containers::list(
        engine,
        &ListOptions {
            all: true,
            limit: None,
            filters,
            size: false,
        },
    )?;
    let mut out: Vec<ProjectContainer> = list
        .into_iter()
        .map(|s| {
            let l = &s.labels;
            ProjectContainer {
                name: s
                    .names
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                service: l.get(labels::SERVICE).cloned().unwrap_or_default(),
                number: l
                    .get(labels::NUMBER)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                oneoff: l.get(labels::ONEOFF).is_some_and(|v| v == "True"),
                hash: l.get(labels::HASH).cloned().unwrap_or_default(),
                summary: s,
            }
        })
        .filter(|c| oneoff || !c.oneoff)
        .collect();
    out.sort_by(|a, b| (&a.service, a.number, &a.name).cmp(&(&b.service, b.number, &b.name)));
    Ok(out)
}

/// A progress line about one resource, as docker compose prints them
/// (`Container demo-web-1  Started`).
pub(crate) fn say(progress: &Progress, kind: &str, name: &str, text: &str) {
    progress.status_of(&format!("{kind} {name}"), text);
}
