//! The order services start in: dependencies first (`depends_on`, `network_mode:
//! service:X`, `volumes_from`), a cycle refused with its path.

use std::collections::{BTreeMap, BTreeSet};

use super::error::{ComposeError, Result};
use super::model::{Project, Service};

/// The services `svc` must wait for.
pub fn dependencies(svc: &Service) -> BTreeSet<String> {
    let mut deps: BTreeSet<String> = svc.depends_on.keys().cloned().collect();
    if let Some(t) = svc
        .network_mode
        .as_deref()
        .and_then(|m| m.strip_prefix("service:"))
    {
        deps.insert(t.to_string());
    }
    for v in &svc.volumes_from {
        if !v.starts_with("container:") {
            deps.insert(v.split(':').next().unwrap_or(v).to_string());
        }
    }
    deps
}

/// Every service after its dependencies; ties in name order.
pub fn start_order(p: &Project) -> Result<Vec<String>> {
    let deps: BTreeMap<&String, BTreeSet<String>> = p
        .services
        .iter()
        .map(|(n, s)| {
            let d = dependencies(s)
                .into_iter()
                .filter(|d| p.services.contains_key(d))
                .collect();
            (n, d)
        })
        .collect();
    let mut order: Vec<String> = Vec::new();
    let mut done = BTreeSet::new();
    let mut visiting = Vec::new();
    for name in deps.keys() {
        visit(name, &deps, &mut done, &mut visiting, &mut order)?;
    }
    Ok(order)
}

fn visit(
    name: &str,
    deps: &BTreeMap<&String, BTreeSet<String>>,
    done: &mut BTreeSet<String>,
    visiting: &mut Vec<String>,
    order: &mut Vec<String>,
) -> Result<()> {
    if done.contains(name) {
        return Ok(());
    }
    if let Some(i) = visiting.iter().position(|v| v == name) {
        let mut chain: Vec<String> = visiting[i..].to_vec();
        chain.push(name.to_string());
        return Err(ComposeError::DependencyCycle {
            chain: chain.join(" -> "),
        });
    }
    visiting.push(name.to_string());
    if let Some(ds) = deps.get(&name.to_string()) {
        for d in ds {
            visit(d, deps, done, visiting, order)?;
        }
    }
    visiting.pop();
    done.insert(name.to_string());
    order.push(name.to_string());
    Ok(())
}
