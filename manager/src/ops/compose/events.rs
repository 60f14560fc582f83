//! `compose events`: the journal's container events of one project (and, when named, only
//! of some of its services), as docker compose shows them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ops::cancel::Cancel;
use crate::ops::error::Result;
use crate::ops::events::{self as journal, EventsOptions, Message};
use crate::ops::models::Filters;
use crate::ops::Engine;

use super::labels;

/// A container event of a project, docker compose's `--json` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectEvent {
    /// RFC 3339 with nanoseconds, in UTC (a front end may write it in its local zone).
    pub time: String,
    /// Nanoseconds since the epoch (not in the JSON line).
    #[serde(skip)]
    pub time_nano: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub action: String,
    pub id: String,
    pub service: String,
    /// The container's attributes without compose's own labels.
    pub attributes: BTreeMap<String, String>,
}

impl ProjectEvent {
    /// The project event of a journal message (container events of `services` only, all
    /// services when empty).
    pub fn of(m: &Message, project: &str, services: &[String]) -> Option<Self> {
        let attrs = &m.actor.attributes;
        if m.kind != "container" || attrs.get(labels::PROJECT).map(String::as_str) != Some(project)
        {
            return None;
        }
        let service = attrs.get(labels::SERVICE).cloned().unwrap_or_default();
        if !services.is_empty() && !services.contains(&service) {
            return None;
        }
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(m.time_nano.max(0) as u64);
        Some(Self {
            time: humantime::format_rfc3339_nanos(t).to_string(),
            time_nano: m.time_nano,
            kind: m.kind.clone(),
            action: m.action.clone(),
            id: m.actor.id.clone(),
            service,
            attributes: attrs
                .iter()
                .filter(|(k, _)| !k.starts_with("com.docker.compose."))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }
}

/// The project's container events from now on, until `cancel` (or an error, yielded last).
pub fn events(
    engine: &Engine,
    project: &str,
    services: &[String],
    cancel: &Cancel,
) -> Result<impl Iterator<Item = Result<ProjectEvent>>> {
    let mut filters = Filters::new();
    filters.add("type", "container");
    filters.add("label", &format!("{}={project}", labels::PROJECT));
    let opts = EventsOptions {
        since: None,
        until: None,
        filters,
    };
    let (project, services) = (project.to_string(), services.to_vec());
    Ok(
        journal::events(engine, &opts, cancel)?.filter_map(move |r| match r {
            Ok(m) => ProjectEvent::of(&m, &project, &services).map(Ok),
            Err(e) => Some(Err(e)),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: &str, attrs: &[(&str, &str)]) -> Message {
        let a = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Message::new(kind, "start", "abc", a)
    }

    #[test]
    fn only_the_projects_containers_of_the_named_services() {
        let web = msg(
            "container",
            &[
                (labels::PROJECT, "demo"),
                (labels::SERVICE, "web"),
                ("name", "demo-web-1"),
                ("image", "busybox"),
            ],
        );
        let e = ProjectEvent::of(&web, "demo", &[]).unwrap();
        assert_eq!((e.service.as_str(), e.action.as_str()), ("web", "start"));
        assert_eq!(e.attributes.len(), 2, "{:?}", e.attributes);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "container");
        assert!(v.get("time_nano").is_none());
        assert!(ProjectEvent::of(&web, "demo", &["web".into()]).is_some());
        assert!(ProjectEvent::of(&web, "demo", &["db".into()]).is_none());
        assert!(ProjectEvent::of(&web, "other", &[]).is_none());
        let net = msg("network", &[(labels::PROJECT, "demo")]);
        assert!(ProjectEvent::of(&net, "demo", &[]).is_none());
    }
}
