//! Berth's own iptables rules and the host-wide pieces the CNI plugins leave behind.
//!
//! The bridge plugin routes between bridges, so without rules of ours every container could
//! reach every network through its gateway. Two chains, as docker's isolation stages: packets
//! coming from one berth bridge and leaving by another go from BERTH-ISOLATION-1 to
//! BERTH-ISOLATION-2, which drops them when they leave by any berth bridge. Traffic DNATed to a
//! published port is let through first, so published ports answer from every network. An
//! internal network's bridge also drops everything that enters or leaves it through another
//! interface. Every per-network rule carries the comment `berth:<bridge>`.
//!
//! The plugins never delete their shared chains (portmap's CNI-HOSTPORT-*, firewall's
//! CNI-FORWARD/CNI-ADMIN); [`remove_network`] does when the last berth network on the host goes
//! and they hold nothing but their own scaffolding. A host-wide lock (`HOST_LOCK`) serialises
//! this with every attach and detach of every berth store on the host.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::lock::{FileLock, LockError};

pub(crate) const ISOLATION_1: &str = "BERTH-ISOLATION-1";
pub(crate) const ISOLATION_2: &str = "BERTH-ISOLATION-2";
/// The environment variable that moves the host directory (rootless berth's helper in its
/// network namespace keeps that namespace's state beside it, see rootless::netns).
pub const HOST_DIR_ENV: &str = "BERTH_NETWORK_HOST_DIR";

/// The lock and saved host state shared by all berth stores on the host: /run/berth-network,
/// or `$BERTH_NETWORK_HOST_DIR`.
pub(crate) fn host_dir() -> PathBuf {
    std::env::var_os(HOST_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("/run/berth-network"), PathBuf::from)
}

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("running {program} {args:?}")]
    Spawn {
        program: &'static str,
        args: Vec<String>,
        #[source]
        source: io::Error,
    },
    #[error("{program} {args:?} failed: {stderr}")]
    Failed {
        program: &'static str,
        args: Vec<String>,
        stderr: String,
    },
    #[error("creating {path}")]
    HostDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("writing {path}")]
    Sysctl {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Takes the host-wide network lock.
pub fn host_lock() -> Result<FileLock, FirewallError> {
    let dir = host_dir();
    fs::create_dir_all(&dir).map_err(|source| FirewallError::HostDir {
        path: dir.clone(),
        source,
    })?;
    Ok(FileLock::exclusive(&dir.join("lock"))?)
}

fn run(program: &'static str, args: &[&str]) -> Result<String, FirewallError> {
    let owned = || args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| FirewallError::Spawn {
            program,
            args: owned(),
            source,
        })?;
    if !out.status.success() {
        return Err(FirewallError::Failed {
            program,
            args: owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `iptables -w` (wait for the xtables lock the plugins also take).
fn ipt(table: &str, args: &[&str]) -> Result<String, FirewallError> {
    let mut all = vec!["-w", "-t", table];
    all.extend_from_slice(args);
    run("iptables", &all)
}

fn chain_exists(table: &str, chain: &str) -> bool {
    ipt(table, &["-S", chain]).is_ok()
}

/// The rules of a chain as `-A ...` lines (without the `-N`/`-P` line).
fn chain_rules(table: &str, chain: &str) -> Vec<String> {
    ipt(table, &["-S", chain])
        .map(|s| {
            s.lines()
                .filter(|l| l.starts_with("-A "))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Appends (or inserts at the top, with `first`) `rule` to `chain` unless it is there.
fn ensure_rule(table: &str, chain: &str, rule: &[&str], first: bool) -> Result<(), FirewallError> {
    let mut check = vec!["-C", chain];
    check.extend_from_slice(rule);
    if ipt(table, &check).is_ok() {
        return Ok(());
    }
    let mut add = if first {
        vec!["-I", chain, "1"]
    } else {
        vec!["-A", chain]
    };
    add.extend_from_slice(rule);
    ipt(table, &add).map(drop)
}

/// Deletes every copy of `rule` from `chain`; absent chains and rules are fine.
fn delete_rule(table: &str, chain: &str, rule: &[&str]) {
    let mut del = vec!["-D", chain];
    del.extend_from_slice(rule);
    while ipt(table, &del).is_ok() {}
}

fn delete_chain(table: &str, chain: &str) {
    if chain_exists(table, chain) {
        let _ = ipt(table, &["-F", chain]);
        let _ = ipt(table, &["-X", chain]);
    }
}

const JUMP_1: &[&str] = &["-j", ISOLATION_1];
const DNAT_RETURN: &[&str] = &["-m", "conntrack", "--ctstate", "DNAT", "-j", "RETURN"];

/// Installs the isolation rules of the network on `bridge`. Called after the plugins ran, so
/// the jump into our chain can be put in front of the firewall plugin's ACCEPTs.
pub fn add_network(bridge: &str, internal: bool) -> Result<(), FirewallError> {
    if !chain_exists("filter", ISOLATION_1) {
        ipt("filter", &["-N", ISOLATION_1])?;
    }
    if !chain_exists("filter", ISOLATION_2) {
        ipt("filter", &["-N", ISOLATION_2])?;
    }
    ensure_rule("filter", ISOLATION_1, DNAT_RETURN, true)?;
    for (chain, rule) in network_rules(bridge, internal) {
        let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
        ensure_rule("filter", chain, &rule, false)?;
    }
    // The firewall plugin inserts its CNI-FORWARD jump at the top of FORWARD when it first
    // runs; ours must come before it, or its per-container ACCEPTs would bypass isolation.
    let first = chain_rules("filter", "FORWARD").into_iter().next();
    if first.as_deref() != Some("-A FORWARD -j BERTH-ISOLATION-1") {
        delete_rule("filter", "FORWARD", JUMP_1);
        ipt("filter", &["-I", "FORWARD", "1", "-j", ISOLATION_1])?;
    }
    Ok(())
}

fn network_rules(bridge: &str, internal: bool) -> Vec<(&'static str, Vec<String>)> {
    let comment = format!("berth:{bridge}");
    let r = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|s| s.to_string())
            .chain(["-m", "comment", "--comment", &comment].map(String::from))
            .collect()
    };
    let mut rules = Vec::new();
    if internal {
        rules.push((
            ISOLATION_1,
            r(&["-i", bridge, "!", "-o", bridge, "-j", "DROP"]),
        ));
        rules.push((
            ISOLATION_1,
            r(&["-o", bridge, "!", "-i", bridge, "-j", "DROP"]),
        ));
    }
    rules.push((
        ISOLATION_1,
        r(&["-i", bridge, "!", "-o", bridge, "-j", ISOLATION_2]),
    ));
    rules.push((ISOLATION_2, r(&["-o", bridge, "-j", "DROP"])));
    rules
}

/// Removes the rules of the network on `bridge` and the bridge itself; when it was the last
/// berth network on the host, also the chains, the plugins' empty shared chains, and the
/// forwarding setting berth turned on. Errors are collected, not stopped at.
pub fn remove_network(bridge: &str, internal: bool) -> Vec<FirewallError> {
    let mut errors = Vec::new();
    for (chain, rule) in network_rules(bridge, internal) {
        let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
        delete_rule("filter", chain, &rule);
    }
    if link_exists(bridge) {
        if let Err(e) = run("ip", &["link", "del", bridge]) {
            errors.push(e);
        }
    }
    let only_scaffolding = chain_rules("filter", ISOLATION_2).is_empty()
        && chain_rules("filter", ISOLATION_1)
            .iter()
            .all(|l| l == "-A BERTH-ISOLATION-1 -m conntrack --ctstate DNAT -j RETURN");
    if only_scaffolding && chain_exists("filter", ISOLATION_1) {
        delete_rule("filter", "FORWARD", JUMP_1);
        delete_chain("filter", ISOLATION_1);
        delete_chain("filter", ISOLATION_2);
        remove_cni_scaffolding();
        if let Err(e) = restore_forwarding() {
            errors.push(e);
        }
    }
    errors
}

/// Deletes portmap's and firewall's shared chains when nothing but their own plumbing is left
/// in them (a mapping or admin rule of anyone else keeps them).
fn remove_cni_scaffolding() {
    if chain_exists("nat", "CNI-HOSTPORT-DNAT")
        && chain_rules("nat", "CNI-HOSTPORT-DNAT").is_empty()
    {
        let jump = [
            "-m",
            "addrtype",
            "--dst-type",
            "LOCAL",
            "-j",
            "CNI-HOSTPORT-DNAT",
        ];
        delete_rule("nat", "PREROUTING", &jump);
        delete_rule("nat", "OUTPUT", &jump);
        delete_chain("nat", "CNI-HOSTPORT-DNAT");
        let masq = [
            "-m",
            "comment",
            "--comment",
            "CNI portfwd requiring masquerade",
            "-j",
            "CNI-HOSTPORT-MASQ",
        ];
        delete_rule("nat", "POSTROUTING", &masq);
        delete_chain("nat", "CNI-HOSTPORT-MASQ");
        delete_chain("nat", "CNI-HOSTPORT-SETMARK");
    }
    let fwd = chain_rules("filter", "CNI-FORWARD");
    let admin_empty = chain_rules("filter", "CNI-ADMIN").is_empty();
    if chain_exists("filter", "CNI-FORWARD")
        && admin_empty
        && fwd.iter().all(|l| l.ends_with("-j CNI-ADMIN"))
    {
        let jump = [
            "-m",
            "comment",
            "--comment",
            "CNI firewall plugin rules",
            "-j",
            "CNI-FORWARD",
        ];
        delete_rule("filter", "FORWARD", &jump);
        delete_chain("filter", "CNI-FORWARD");
        delete_chain("filter", "CNI-ADMIN");
    }
}

/// Bridges named by berth's isolation rules (their `berth:<bridge>` comments).
pub(crate) fn bridges_with_rules() -> std::collections::BTreeSet<String> {
    [ISOLATION_1, ISOLATION_2]
        .iter()
        .flat_map(|c| chain_rules("filter", c))
        .filter_map(|l| {
            let at = l.find("berth:")?;
            let rest = &l[at + "berth:".len()..];
            Some(rest.split(['"', ' ']).next()?.to_string())
        })
        .collect()
}

pub(crate) fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Whether any interface is enslaved to `bridge` (sysfs lists them under `brif/`).
pub(crate) fn bridge_has_ports(bridge: &str) -> bool {
    fs::read_dir(Path::new("/sys/class/net").join(bridge).join("brif"))
        .is_ok_and(|mut d| d.next().is_some())
}

const FORWARDING: &str = "/proc/sys/net/ipv4/ip_forward";

/// Remembers whether IPv4 forwarding was off before berth's first network comes up (the
/// bridge plugin turns it on for gateways), so the last network's removal can turn it off
/// again. Called before every ADD; only the first one, with no berth network on the host yet,
/// records anything, and an earlier record (from a run that crashed) is kept.
pub fn save_forwarding() -> Result<(), FirewallError> {
    let saved = host_dir().join("ip_forward");
    if chain_exists("filter", ISOLATION_1) || saved.exists() {
        return Ok(());
    }
    let now = fs::read_to_string(FORWARDING).unwrap_or_default();
    fs::write(&saved, now.trim()).map_err(|source| FirewallError::Sysctl {
        path: saved,
        source,
    })
}

pub(crate) fn restore_forwarding() -> Result<(), FirewallError> {
    let saved = host_dir().join("ip_forward");
    let Ok(before) = fs::read_to_string(&saved) else {
        return Ok(());
    };
    if before.trim() == "0" {
        fs::write(FORWARDING, "0").map_err(|source| FirewallError::Sysctl {
            path: PathBuf::from(FORWARDING),
            source,
        })?;
    }
    let _ = fs::remove_file(&saved);
    Ok(())
}

/// Rules in the nat and filter tables whose comment names this CNI network and container (the
/// bridge plugin's masquerade chain, portmap's DNAT), for leak checks in tests and recovery.
pub fn rules_mentioning(needle: &str) -> Vec<String> {
    ["nat", "filter"]
        .iter()
        .flat_map(|t| {
            run("iptables-save", &["-t", t])
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(needle))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The bridge plugin's per-container masquerade chain: `CNI-` and the first 24 hex digits of
/// SHA-512 over network name and container id (the plugins' `utils.FormatChainName`).
pub fn masquerade_chain(network: &str, container_id: &str) -> String {
    use sha2::{Digest, Sha512};
    let digest = Sha512::digest(format!("{network}{container_id}").as_bytes());
    format!("CNI-{}", &hex::encode(digest)[..24])
}

/// Removes the masquerade chain of one container and the POSTROUTING rules jumping to it. The
/// bridge plugin's DEL only finds them through the container's address, which it reads from
/// the namespace; once that is gone they would stay forever.
pub fn sweep_masquerade(network: &str, container_id: &str) {
    let chain = masquerade_chain(network, container_id);
    if !chain_exists("nat", &chain) {
        return;
    }
    let jump = format!("-j {chain}");
    for rule in chain_rules("nat", "POSTROUTING") {
        if !rule.split_whitespace().any(|w| w == chain) || !rule.contains(&jump) {
            continue;
        }
        let Some(mut words) = shlex::split(&rule) else {
            continue;
        };
        if words.first().map(String::as_str) == Some("-A") {
            words[0] = "-D".into();
            let args: Vec<&str> = words.iter().map(String::as_str).collect();
            let _ = ipt("nat", &args);
        }
    }
    delete_chain("nat", &chain);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_rules_of_a_bridge_without_a_link_are_found_and_removed() {
        // A bridge name no real network has; its rules are made and removed here.
        let bridge = format!("bx{}", std::process::id() % 10_000_000);
        let _host = host_lock().unwrap();
        add_network(&bridge, true).unwrap();
        assert!(bridges_with_rules().contains(&bridge));
        assert!(remove_network(&bridge, true).is_empty());
        assert!(!bridges_with_rules().contains(&bridge));
        assert!(rules_mentioning(&format!("berth:{bridge}")).is_empty());
    }

    #[test]
    fn masquerade_chain_name_matches_the_bridge_plugin() {
        // Observed from the bridge plugin 1.1.1: network "trynet", container "abc".
        assert_eq!(
            masquerade_chain("trynet", "abc"),
            "CNI-cd4972a42e5546c3832691e0"
        );
    }
}
