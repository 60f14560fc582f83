//! Listing, inspecting and pruning containers: their records as docker's `ContainerSummary`
//! and `ContainerJSON`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::container::lifecycle::{self, refresh};
use crate::container::record::{Config, MountPoint as RecordMount, PortBinding as RecordPort};
use crate::container::{Record, Status};
use crate::ops::error::{chain, OpsError, Result};
use crate::ops::models::{
    ContainerSummary, EndpointSettings, Filters, MountPoint, Port, PortBinding, SummaryHostConfig,
    SummaryNetworkSettings,
};
use crate::ops::Engine;

use super::stop::{remove_record, RemoveOptions};

/// What to list (docker's `all`, `limit` and `filters`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Stopped containers too (a status filter or a limit implies it).
    pub all: bool,
    /// Only the newest N.
    pub limit: Option<usize>,
    /// `status`, `name`, `id`, `label`, `ancestor`, `exited`; every term must match.
    pub filters: Filters,
    /// Fill in `SizeRw` and `SizeRootFs` (walks each container's own layer).
    pub size: bool,
}

const FILTER_KEYS: &str = "status, name, id, label, ancestor, exited";
const STATUSES: [&str; 7] = [
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

fn check_filters(filters: &Filters) -> Result<()> {
    for (k, v) in filters.terms() {
        if !matches!(
            k,
            "status" | "name" | "id" | "label" | "ancestor" | "exited"
        ) {
            return Err(OpsError::FilterKey {
                key: k.to_string(),
                allowed: FILTER_KEYS,
            });
        }
        if k == "status" && !STATUSES.contains(&v) {
            return Err(OpsError::FilterStatus {
                value: v.to_string(),
            });
        }
    }
    Ok(())
}

fn matches(r: &Record, key: &str, value: &str) -> bool {
    match key {
        "status" => r.state.status.as_str() == value,
        "name" => r.name.contains(value.trim_start_matches('/')),
        "id" => r.id.starts_with(value),
        "label" => Filters::label_matches(&r.config.labels, value),
        "ancestor" => {
            r.image == value
                || r.image.trim_end_matches(":latest") == value.trim_end_matches(":latest")
                || r.image_id
                    .trim_start_matches("sha256:")
                    .starts_with(value.trim_start_matches("sha256:"))
        }
        "exited" => r.state.status == Status::Exited && r.state.exit_code.to_string() == value,
        _ => false,
    }
}

/// `GET /containers/json`: newest first.
pub fn list(engine: &Engine, opts: &ListOptions) -> Result<Vec<ContainerSummary>> {
    check_filters(&opts.filters)?;
    let store = engine.containers()?;
    let mut list = Vec::new();
    for r in store.list()? {
        list.push(refresh(&store, r)?);
    }
    let all = opts.all || opts.limit.is_some();
    let has_status_filter = opts.filters.contains("status") || opts.filters.contains("exited");
    list.retain(|r| {
        (all || has_status_filter || r.state.status == Status::Running)
            && opts.filters.terms().all(|(k, v)| matches(r, k, v))
    });
    list.reverse();
    if let Some(n) = opts.limit {
        list.truncate(n);
    }
    let mut out: Vec<ContainerSummary> = list.iter().map(summary).collect();
    if opts.size {
        let images: std::collections::HashMap<String, i64> =
            crate::ops::images::list(engine, None)?
                .into_iter()
                .map(|i| (i.id, i.size))
                .collect();
        for (c, r) in out.iter_mut().zip(&list) {
            let rw = rw_size(engine, r);
            c.size_rw = Some(rw);
            c.size_root_fs = Some(rw + images.get(&c.image_id).copied().unwrap_or(0));
        }
    }
    Ok(out)
}

/// The bytes a container's own layer holds, 0 when unknown: an overlay upper directory as
/// it is; a copy snapshot holds the whole tree, so only what changed against its parent
/// counts (added and modified files).
pub(crate) fn rw_size(engine: &Engine, r: &Record) -> i64 {
    let target = r
        .snapshotter
        .parse::<crate::snapshot::Backend>()
        .ok()
        .and_then(|b| b.open(engine.root()).ok())
        .and_then(|sn| sn.apply_target(&r.id).ok());
    let Some(target) = target else { return 0 };
    if target.whiteouts == crate::unpack::Whiteouts::Overlay {
        return crate::ops::df::dir_size(&target.dir) as i64;
    }
    let Ok(changes) = super::changes::record_changes(engine, r) else {
        return 0;
    };
    changes
        .iter()
        .filter(|c| c.kind != 2)
        .filter_map(|c| {
            std::fs::symlink_metadata(target.dir.join(c.path.trim_start_matches('/'))).ok()
        })
        .filter(|m| !m.is_dir())
        .map(|m| m.len() as i64)
        .sum()
}

/// Seconds since an RFC 3339 time, in docker's words ("5 seconds", "About a minute").
pub(crate) fn since(t: &str) -> String {
    let age = humantime::parse_rfc3339_weak(t)
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match age {
        0 => "Less than a second".into(),
        1..=59 => plural(age, "second"),
        60..=119 => "About a minute".into(),
        120..=3599 => plural(age / 60, "minute"),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => plural(age / 3600, "hour"),
        172_800..=1_209_599 => plural(age / 86_400, "day"),
        _ => plural(age / 604_800, "week"),
    }
}

/// docker's human status (`Up 5 seconds (healthy)`, `Exited (0) 2 minutes ago`).
pub(crate) fn status_text(r: &Record) -> String {
    let health = r
        .state
        .health
        .as_ref()
        .map(|h| {
            format!(
                " ({})",
                if h.status == "starting" {
                    "health: starting"
                } else {
                    &h.status
                }
            )
        })
        .unwrap_or_default();
    match r.state.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}{health}", since(&r.state.started_at)),
        Status::Paused => format!("Up {} (Paused)", since(&r.state.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            since(&r.state.finished_at)
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            since(&r.state.finished_at)
        ),
        Status::Dead => "Dead".into(),
    }
}

pub(super) fn mount_point(c: &Config, m: &RecordMount) -> MountPoint {
    let (mode, propagation) = mount_mode(c, m);
    MountPoint {
        r#type: m.kind.clone(),
        name: m.name.clone(),
        source: m.source.clone(),
        destination: m.destination.clone(),
        driver: if m.kind == "volume" {
            "local".into()
        } else {
            String::new()
        },
        mode,
        rw: m.rw,
        propagation,
        anonymous: m.anonymous,
    }
}

/// Propagation modes a bind's options may name.
const PROPAGATIONS: [&str; 6] = [
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// docker's `Mode` and `Propagation` of a mount, from the create request that made it: a
/// `-v` bind's options (`ro`, `z`, `rshared`, ...) are its mode, a volume named in `-v` has
/// mode `z`; a bind propagates `rprivate` unless the request chose otherwise, the others
/// show none.
fn mount_mode(c: &Config, m: &RecordMount) -> (String, String) {
    let req = &c.host_request;
    let mut mode = String::new();
    let mut propagation = String::new();
    let binds = req.get("Binds").and_then(serde_json::Value::as_array);
    for b in binds
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
    {
        let parts: Vec<&str> = b.split(':').collect();
        let (dest, opts) = match parts.as_slice() {
            [_, d] => (*d, ""),
            [_, d, o] => (*d, *o),
            _ => continue,
        };
        if dest.trim_end_matches('/') != m.destination.trim_end_matches('/') {
            continue;
        }
        mode = if opts.is_empty() && m.kind == "volume" {
            "z".into()
        } else {
            opts.to_string()
        };
        if let Some(p) = opts.split(',').find(|o| PROPAGATIONS.contains(o)) {
            propagation = p.to_string();
        }
    }
    let mounts = req.get("Mounts").and_then(serde_json::Value::as_array);
    for mt in mounts.into_iter().flatten() {
        let target = mt.get("Target").and_then(serde_json::Value::as_str);
        if target.map(|t| t.trim_end_matches('/')) != Some(m.destination.trim_end_matches('/')) {
            continue;
        }
        if let Some(p) = mt
            .pointer("/BindOptions/Propagation")
            .and_then(serde_json::Value::as_str)
            .filter(|p| !p.is_empty())
        {
            propagation = p.to_string();
        }
    }
    if m.kind == "bind" && propagation.is_empty() {
        propagation = "rprivate".into();
    }
    (mode, propagation)
}

pub(super) fn networks(r: &Record) -> BTreeMap<String, EndpointSettings> {
    let mut map: BTreeMap<String, EndpointSettings> = r
        .networks
        .iter()
        .map(|(name, v)| {
            let ep: EndpointSettings = serde_json::from_value(v.clone()).unwrap_or_default();
            (name.clone(), ep)
        })
        .collect();
    // A container that is not attached now still belongs to the networks it was made for,
    // as docker shows them (docker-compose decides from this whether to connect it).
    let mode = r.config.network_mode.as_str();
    let configured = match mode {
        "" | "default" => Some("bridge"),
        "none" | "host" => None,
        m if m.starts_with("container:") => None,
        m => Some(m),
    };
    let short_id = r.id.get(..12).unwrap_or(&r.id).to_string();
    for name in configured
        .into_iter()
        .chain(r.config.extra_networks.iter().map(String::as_str))
    {
        let ep = map.entry(name.to_string()).or_default();
        if name != "bridge" {
            let mut aliases: Vec<String> = r.config.aliases.clone();
            if let Some(e) = r.config.endpoints.get(name) {
                aliases.extend(e.aliases.iter().cloned());
            }
            aliases.push(short_id.clone());
            for a in aliases {
                if !ep.aliases.contains(&a) {
                    ep.aliases.push(a);
                }
            }
        }
    }
    map
}

pub(super) fn port_bindings(ports: &[RecordPort]) -> BTreeMap<String, Vec<PortBinding>> {
    let mut map: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
    for p in ports {
        map.entry(format!("{}/{}", p.container_port, p.protocol))
            .or_default()
            .push(PortBinding {
                host_ip: p.host_ip.clone(),
                host_port: p.host_port.to_string(),
            });
    }
    map
}

fn unix_seconds(t: &str) -> i64 {
    humantime::parse_rfc3339_weak(t)
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

/// One list entry.
pub(crate) fn summary(r: &Record) -> ContainerSummary {
    ContainerSummary {
        size_rw: None,
        size_root_fs: None,
        id: r.id.clone(),
        names: vec![format!("/{}", r.name)],
        image: r.image.clone(),
        image_id: r.image_id.clone(),
        command: r.config.args.join(" "),
        created: unix_seconds(&r.created),
        ports: r
            .config
            .ports
            .iter()
            .map(|p| Port {
                ip: p.host_ip.clone(),
                private_port: p.container_port,
                public_port: p.host_port,
                r#type: p.protocol.clone(),
            })
            .collect(),
        labels: r.config.labels.clone(),
        state: r.state.status.as_str().to_string(),
        status: status_text(r),
        host_config: SummaryHostConfig {
            network_mode: r.config.network_mode.clone(),
        },
        network_settings: SummaryNetworkSettings {
            networks: networks(r),
        },
        mounts: r
            .config
            .mounts
            .iter()
            .map(|m| mount_point(&r.config, m))
            .collect(),
        created_at: r.created.clone(),
    }
}

/// `POST /containers/prune`: removes every stopped container matching `filters`
/// (`label=k`, `label=k=v`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerPruneResponse {
    pub containers_deleted: Vec<String>,
    pub space_reclaimed: u64,
    /// Lines for the user about containers that could not be removed; not part of
    /// docker's JSON.
    #[serde(skip)]
    pub errors: Vec<String>,
}

pub fn prune(engine: &Engine, filters: &Filters) -> Result<ContainerPruneResponse> {
    let mut labels: Vec<&str> = Vec::new();
    let mut not_labels: Vec<&str> = Vec::new();
    let mut until: Option<SystemTime> = None;
    for (k, v) in filters.terms() {
        match k {
            "label" => labels.push(v),
            "label!" => not_labels.push(v),
            "until" => {
                until = Some(Filters::until(v, SystemTime::now()).ok_or_else(|| {
                    OpsError::FilterTerm {
                        term: format!("{k}={v}"),
                        hint: "until=<timestamp, date or duration such as 24h>",
                    }
                })?);
            }
            _ => {
                return Err(OpsError::FilterTerm {
                    term: format!("{k}={v}"),
                    hint: "label=..., label!=... or until=...",
                })
            }
        }
    }
    let has = |r: &Record, term: &&str| Filters::label_matches(&r.config.labels, term);
    let store = engine.containers()?;
    let mut out = ContainerPruneResponse::default();
    for r in store.list()? {
        let r = refresh(&store, r)?;
        if !matches!(
            r.state.status,
            Status::Exited | Status::Created | Status::Dead
        ) || lifecycle::monitor_alive(&r)
        {
            continue;
        }
        let old_enough = until.is_none_or(|cutoff| {
            humantime::parse_rfc3339_weak(&r.created).is_ok_and(|t| t < cutoff)
        });
        let wanted = labels.iter().all(|l| has(&r, l)) && !not_labels.iter().any(|l| has(&r, l));
        if !wanted || !old_enough {
            continue;
        }
        let size = rw_size(engine, &r).max(0) as u64;
        match remove_record(engine, &store, &r, RemoveOptions::default()) {
            Ok(()) => {
                out.containers_deleted.push(r.id.clone());
                out.space_reclaimed += size;
            }
            Err(e) => {
                out.errors.extend(e.also());
                out.errors.push(format!("Error: {}", chain(&e)));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::error::ErrorClass;

    fn filters(terms: &[&str]) -> Filters {
        Filters::parse(&terms.iter().map(|t| t.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn filters_are_validated() {
        assert!(check_filters(&filters(&["status=running"])).is_ok());
        let e = check_filters(&filters(&["status=bogus"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "flag --filter: invalid status filter \"bogus\""
        );
        assert_eq!(e.class(), ErrorClass::InvalidParameter);
        let e = check_filters(&filters(&["color=red"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "flag --filter: invalid filter \"color\" (status, name, id, label, ancestor, exited)"
        );
    }

    #[test]
    fn ages_read_like_docker() {
        assert!(since("1970-01-01T00:00:00Z").ends_with("weeks"));
        assert_eq!(
            since(&crate::container::record::now_rfc3339()),
            "Less than a second"
        );
    }
}
