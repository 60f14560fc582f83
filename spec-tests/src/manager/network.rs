//! Helpers for the networking tests of `berth`: unique subnets, `network` output parsed, and
//! probes of what is left on the host (links, iptables rules, mounts).

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};
use serde_json::Value;

use super::berth::Berth;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A /24 in 10.219.0.0/16 no other test of this process uses (and, through the pid, unlikely
/// to be used by a concurrent run): tests run in parallel and subnets must not overlap.
pub fn unique_subnet() -> String {
    let n = (std::process::id() * 13 + NEXT.fetch_add(1, Ordering::SeqCst)) % 256;
    format!("10.219.{n}.0/24")
}

/// A network name unique to this test process.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// `berth network ls --format json`, one object per network.
pub fn ls(berth: &Berth) -> Result<Vec<Value>> {
    berth
        .ok(&["network", "ls", "--format", "json"])?
        .lines()
        .map(|l| serde_json::from_str(l).context("parsing network ls --format json"))
        .collect()
}

/// Names from `network ls`.
pub fn names(berth: &Berth) -> Result<Vec<String>> {
    Ok(ls(berth)?
        .iter()
        .filter_map(|n| n["Name"].as_str().map(str::to_string))
        .collect())
}

/// The one object of `berth network inspect NAME`.
pub fn inspect(berth: &Berth, name: &str) -> Result<Value> {
    let out = berth.ok(&["network", "inspect", name])?;
    let v: Value = serde_json::from_str(&out).context("parsing network inspect")?;
    v.get(0)
        .cloned()
        .context("network inspect printed no object")
}

/// Whether a network interface of this name exists on the host.
pub fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// iptables rules (nat and filter) containing `needle`.
pub fn rules_mentioning(needle: &str) -> Vec<String> {
    ["nat", "filter"]
        .iter()
        .flat_map(|t| {
            Command::new("iptables-save")
                .args(["-t", t])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(needle))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Mount points under `dir` (from /proc/self/mountinfo).
pub fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&needle))
        .map(str::to_string)
        .collect()
}
