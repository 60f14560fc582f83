//! Compose files as a model: discovery, YAML, interpolation, merging, `extends`, `include`,
//! profiles and validation, down to the canonical [`Project`] that `berth compose config`
//! prints and the engine (`ops::compose`) runs. Everything here is pure: files in, a
//! model or an error naming the file, line or path out.
//!
//! ```text
//!  discover (-f, COMPOSE_FILE, compose.yaml upwards) + .env
//!    → per file: parse (anchors, << merge keys, x- dropped) → interpolate → include
//!      → long forms (shape) → extends
//!    → merge files (!reset, !override) → typed model (unknown keys refused)
//!    → finish (name, profiles, environment, defaults, dependency checks)
//! ```

mod emit;
pub mod env;
pub mod error;
mod finish;
pub mod interpolate;
mod load;
pub mod merge;
pub mod model;
pub mod order;
pub mod shape;
pub mod yaml;

#[cfg(test)]
mod tests;

pub use error::ComposeError;
pub use load::{load, ProjectOptions};
pub use model::{Condition, Project, Service};

use sha2::{Digest, Sha256};

/// The hash `up` compares to decide whether a container is up to date
/// (`com.docker.compose.config-hash`): the service's model without what scaling changes.
pub fn config_hash(svc: &Service) -> String {
    let mut s = svc.clone();
    s.scale = None;
    if let Some(d) = s.deploy.as_mut() {
        d.replicas = None;
    }
    s.profiles.clear();
    s.pull_policy = None;
    let json = serde_json::to_vec(&s).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

/// Output formats of `config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// The project as `config` prints it.
pub fn render(p: &Project, format: Format) -> Result<String, ComposeError> {
    let usage = |e: String| ComposeError::Usage {
        what: "config".into(),
        message: e,
    };
    let mut p = p.clone();
    normalise_durations(&mut p);
    let p = &p;
    let text = match format {
        Format::Yaml => serde_norway::to_value(p)
            .map(|v| emit::to_yaml(&v))
            .map_err(|e| usage(e.to_string()))?,
        Format::Json => serde_json::to_string_pretty(p)
            .map(|s| s + "\n")
            .map_err(|e| usage(e.to_string()))?,
    };
    // As docker compose v2 (and 1.29): a literal `$` is written `$$`, so the output reads
    // back as the same model.
    Ok(text.replace('$', "$$"))
}

/// Durations as compose-go prints them (Go's `time.Duration`: `1m30s`, `1h0m0s`, `500ms`);
/// a value that does not parse is left for the container operations to refuse.
fn normalise_durations(p: &mut Project) {
    let norm = |v: &mut Option<String>| {
        if let Some(d) = v
            .as_deref()
            .and_then(|s| crate::specgen::flags::parse_duration("duration", s).ok())
        {
            *v = Some(emit::go_duration(d));
        }
    };
    for svc in p.services.values_mut() {
        if let Some(h) = svc.healthcheck.as_mut() {
            norm(&mut h.timeout);
            norm(&mut h.interval);
            norm(&mut h.start_period);
            norm(&mut h.start_interval);
        }
        norm(&mut svc.stop_grace_period);
        if let Some(r) = svc.deploy.as_mut().and_then(|d| d.restart_policy.as_mut()) {
            norm(&mut r.delay);
            norm(&mut r.window);
        }
    }
}

/// The names of the project's volumes (`config --volumes`).
pub fn volume_names(p: &Project) -> Vec<String> {
    p.volumes.keys().cloned().collect()
}
