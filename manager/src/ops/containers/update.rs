//! `POST /containers/{id}/update`, `berth update`: new resource limits and restart policy,
//! recorded for later starts and applied to a running container's cgroup through the
//! runtime's `update`.

use serde::{Deserialize, Serialize};

use super::plan::restart_policy;
use crate::container::record::RestartPolicy as RecordRestart;
use crate::container::Status;
use crate::ops::error::{OpsError, Result};
use crate::ops::models::RestartPolicy;
use crate::ops::Engine;

/// The body of `POST /containers/{id}/update` (what berth applies; other fields are
/// ignored). Zero or absent means "leave as it is".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateConfig {
    pub cpu_shares: Option<i64>,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub restart_policy: Option<RestartPolicy>,
}

/// `{"Warnings": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateResponse {
    pub warnings: Vec<String>,
}

fn set(v: Option<i64>) -> Option<i64> {
    v.filter(|n| *n != 0)
}

/// Applies `u` to the container.
pub fn update(engine: &Engine, what: &str, u: &UpdateConfig) -> Result<UpdateResponse> {
    let (store, r) = super::find(engine, what)?;
    let bad = |field: &'static str, value: String, reason: &str| OpsError::InvalidField {
        field,
        value,
        reason: reason.into(),
    };
    if let Some(m) = set(u.memory) {
        if m < 6 * 1024 * 1024 {
            return Err(bad(
                "Memory",
                m.to_string(),
                "Minimum memory limit allowed is 6MB",
            ));
        }
    }
    if set(u.nano_cpus).is_some() && (set(u.cpu_quota).is_some() || set(u.cpu_period).is_some()) {
        return Err(bad(
            "NanoCpus",
            u.nano_cpus.unwrap_or(0).to_string(),
            "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set",
        ));
    }
    if let Some(n) = set(u.nano_cpus) {
        let max =
            std::thread::available_parallelism().map_or(1, |n| n.get() as i64) * 1_000_000_000;
        if n < 0 || n > max {
            return Err(bad(
                "NanoCpus",
                n.to_string(),
                &format!(
                    "Range of CPUs is from 0.01 to {}.00, as there are only {} CPUs available",
                    max / 1_000_000_000,
                    max / 1_000_000_000
                ),
            ));
        }
    }
    let restart = match &u.restart_policy {
        Some(p) if !p.name.is_empty() => Some(restart_policy(p)?),
        _ => None,
    };
    if restart.as_ref().is_some_and(|p| *p != RecordRestart::No) && r.config.auto_remove {
        return Err(OpsError::InvalidField {
            field: "RestartPolicy",
            value: u
                .restart_policy
                .as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            reason:
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
        });
    }
    if matches!(r.state.status, Status::Running | Status::Paused) {
        let runtime = super::runtime(engine, &store, &r);
        let mut cmd = runtime.command("update");
        let mut any = false;
        let mut arg = |flag: &str, v: String| {
            cmd.arg(flag).arg(v);
            any = true;
        };
        if let Some(m) = set(u.memory) {
            arg("--memory", m.to_string());
            // Swap follows the memory unless given: unlimited, as the limit may only grow.
            arg(
                "--memory-swap",
                set(u.memory_swap).unwrap_or(-1).to_string(),
            );
        } else if let Some(s) = set(u.memory_swap) {
            arg("--memory-swap", s.to_string());
        }
        if let Some(m) = set(u.memory_reservation) {
            arg("--memory-reservation", m.to_string());
        }
        if let Some(n) = set(u.nano_cpus) {
            arg("--cpu-period", "100000".into());
            arg("--cpu-quota", (n / 10_000).to_string());
        }
        if let Some(p) = set(u.cpu_period) {
            arg("--cpu-period", p.to_string());
        }
        if let Some(q) = set(u.cpu_quota) {
            arg("--cpu-quota", q.to_string());
        }
        if let Some(s) = set(u.cpu_shares) {
            arg("--cpu-share", s.to_string());
        }
        if let Some(c) = u.cpuset_cpus.as_ref().filter(|c| !c.is_empty()) {
            arg("--cpuset-cpus", c.clone());
        }
        if let Some(c) = u.cpuset_mems.as_ref().filter(|c| !c.is_empty()) {
            arg("--cpuset-mems", c.clone());
        }
        if let Some(p) = set(u.pids_limit) {
            arg("--pids-limit", p.to_string());
        }
        if let Some(w) = u.blkio_weight.filter(|w| *w != 0) {
            arg("--blkio-weight", w.to_string());
        }
        if any {
            cmd.arg(&r.id);
            runtime.check("update", cmd)?;
        }
    }
    let updated = store.update(&r.id, |rec| {
        if let Some(m) = set(u.memory) {
            rec.config.memory = m;
        }
        if let Some(n) = set(u.nano_cpus) {
            rec.config.nano_cpus = n;
        }
        if let Some(p) = set(u.pids_limit) {
            rec.config.pids_limit = p;
        }
        if let Some(p) = &restart {
            rec.config.restart = p.clone();
        }
        // Inspect echoes the HostConfig: what changed shows there, as docker's does.
        if let (Ok(serde_json::Value::Object(changed)), Some(host)) = (
            serde_json::to_value(u),
            rec.config.host_request.as_object_mut(),
        ) {
            for (k, v) in changed {
                let unset = v.is_null()
                    || v.as_i64() == Some(0)
                    || v.as_str().is_some_and(str::is_empty)
                    || v.get("Name").and_then(|n| n.as_str()) == Some("");
                if !unset {
                    host.insert(k, v);
                }
            }
        }
    })?;
    crate::events::container(engine.root(), &updated, "update", &[]);
    Ok(UpdateResponse::default())
}
