//! The native backend's packet filter rules, written in batches with `iptables-restore
//! --noflush` (and `ip6tables-restore`): one batch when a network is set up, one when it is
//! removed, and per start only the container's port mappings, when it publishes any.
//!
//! Chains, shared by every berth network on the host:
//! - filter `BERTH-ISOLATION-1`/`-2` (see `firewall`: traffic between two berth bridges is
//!   dropped), jumped to first from FORWARD, then `BERTH-FORWARD`, which accepts what enters a
//!   bridge (a container's traffic) and what is answered or DNATed to it: hosts whose FORWARD
//!   policy is DROP (dockerd sets that) still route containers.
//! - nat `BERTH-POSTROUTING` (masquerade of the subnets leaving by another interface, of
//!   loopback-sourced traffic DNATed into a bridge, and of DNATed traffic between containers
//!   of one bridge) and `BERTH-DNAT` (published ports, jumped to from PREROUTING and OUTPUT for
//!   local destinations).
//!
//! Every rule of one network carries the comment `berth:<bridge>`, every port mapping
//! `berth:<container-id>`: teardown deletes exactly those lines of `iptables-save`, whatever
//! state a crash left. A batch is atomic per table, so a network's rules are all there or none.
//! Declaring an existing chain in a `--noflush` batch flushes it, so chains are declared only
//! when `iptables-save` does not list them (under the host lock, see `firewall::host_lock`).

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use ipnet::IpNet;

use super::firewall::{FirewallError, ISOLATION_1, ISOLATION_2};
use super::ports::PortMapping;

pub(crate) const FORWARD: &str = "BERTH-FORWARD";
pub(crate) const POSTROUTING: &str = "BERTH-POSTROUTING";
pub(crate) const DNAT: &str = "BERTH-DNAT";
const DNAT_RETURN: &str = "-m conntrack --ctstate DNAT -j RETURN";

/// IPv4 (`iptables`) or IPv6 (`ip6tables`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn save(self) -> &'static str {
        match self {
            Family::V4 => "iptables-save",
            Family::V6 => "ip6tables-save",
        }
    }

    fn restore(self) -> &'static str {
        match self {
            Family::V4 => "iptables-restore",
            Family::V6 => "ip6tables-restore",
        }
    }

    pub fn of(ip: IpAddr) -> Self {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// The rules of `filter` and `nat` as `iptables-save` prints them.
#[derive(Debug, Default)]
pub(crate) struct Saved {
    filter: Vec<String>,
    nat: Vec<String>,
}

impl Saved {
    pub fn read(family: Family) -> Result<Self, FirewallError> {
        let text = run(family.save(), &[], None)?;
        Ok(Self::parse(&text))
    }

    fn parse(text: &str) -> Self {
        let mut saved = Saved::default();
        let mut table: Option<&mut Vec<String>> = None;
        for line in text.lines() {
            if let Some(name) = line.strip_prefix('*') {
                table = match name {
                    "filter" => Some(&mut saved.filter),
                    "nat" => Some(&mut saved.nat),
                    _ => None,
                };
            } else if line == "COMMIT" {
                table = None;
            } else if let Some(t) = table.as_deref_mut() {
                if line.starts_with(':') || line.starts_with("-A ") {
                    t.push(line.to_string());
                }
            }
        }
        saved
    }

    fn table(&self, table: &str) -> &[String] {
        match table {
            "filter" => &self.filter,
            _ => &self.nat,
        }
    }

    fn has_chain(&self, table: &str, chain: &str) -> bool {
        let decl = format!(":{chain} ");
        self.table(table).iter().any(|l| l.starts_with(&decl))
    }

    fn rules_of(&self, table: &str, chain: &str) -> Vec<&String> {
        let prefix = format!("-A {chain} ");
        self.table(table)
            .iter()
            .filter(|l| l.starts_with(&prefix))
            .collect()
    }

    /// Lines tagged with the comment `berth:<tag>` (iptables-save quotes comments).
    fn tagged(&self, table: &str, tag: &str) -> Vec<&String> {
        let quoted = format!("--comment \"berth:{tag}\"");
        let bare = format!("--comment berth:{tag} ");
        self.table(table)
            .iter()
            .filter(|l| l.starts_with("-A ") && (l.contains(&quoted) || l.contains(&bare)))
            .collect()
    }

    /// Bridges with berth-tagged network rules in this family.
    pub fn bridges(&self) -> std::collections::BTreeSet<String> {
        self.filter
            .iter()
            .chain(&self.nat)
            .filter(|l| {
                l.starts_with(&format!("-A {ISOLATION_1} "))
                    || l.starts_with(&format!("-A {ISOLATION_2} "))
                    || l.starts_with(&format!("-A {FORWARD} "))
                    || l.starts_with(&format!("-A {POSTROUTING} "))
            })
            .filter_map(|l| {
                let at = l.find("berth:")?;
                Some(l[at + 6..].split(['"', ' ']).next()?.to_string())
            })
            .collect()
    }
}

/// A `--noflush` batch of two tables.
#[derive(Debug, Default)]
struct Batch {
    filter: Vec<String>,
    nat: Vec<String>,
}

impl Batch {
    fn push(&mut self, table: &str, line: String) {
        match table {
            "filter" => self.filter.push(line),
            _ => self.nat.push(line),
        }
    }

    fn is_empty(&self) -> bool {
        self.filter.is_empty() && self.nat.is_empty()
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for (name, lines) in [("filter", &self.filter), ("nat", &self.nat)] {
            if lines.is_empty() {
                continue;
            }
            out.push_str(&format!("*{name}\n"));
            for l in lines {
                out.push_str(l);
                out.push('\n');
            }
            out.push_str("COMMIT\n");
        }
        out
    }

    fn apply(&self, family: Family) -> Result<(), FirewallError> {
        if self.is_empty() {
            return Ok(());
        }
        run(family.restore(), &["--noflush", "-w"], Some(&self.text())).map(drop)
    }
}

fn run(program: &'static str, args: &[&str], stdin: Option<&str>) -> Result<String, FirewallError> {
    let owned = || args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| FirewallError::Spawn {
            program,
            args: owned(),
            source,
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A restore that exits early reports why on stderr; the broken pipe adds nothing.
        let _ = pipe.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|source| FirewallError::Spawn {
            program,
            args: owned(),
            source,
        })?;
    if !out.status.success() {
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if let Some(text) = stdin {
            stderr.push_str(&format!(" (input: {text:?})"));
        }
        return Err(FirewallError::Failed {
            program,
            args: owned(),
            stderr,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What the rules of one network are made from.
#[derive(Debug, Clone)]
pub struct NetSpec<'a> {
    pub bridge: &'a str,
    pub subnet: IpNet,
    pub internal: bool,
}

fn tag(t: &str) -> String {
    format!("-m comment --comment berth:{t}")
}

/// The per-network rules of one family: (table, chain, rule after the chain name).
fn network_rules(n: &NetSpec<'_>) -> Vec<(&'static str, &'static str, String)> {
    let (b, s, c) = (n.bridge, n.subnet, tag(n.bridge));
    let mut r = Vec::new();
    if n.internal {
        r.push((
            "filter",
            ISOLATION_1,
            format!("-i {b} ! -o {b} {c} -j DROP"),
        ));
        r.push((
            "filter",
            ISOLATION_1,
            format!("-o {b} ! -i {b} {c} -j DROP"),
        ));
    }
    r.push((
        "filter",
        ISOLATION_1,
        format!("-i {b} ! -o {b} {c} -j {ISOLATION_2}"),
    ));
    r.push(("filter", ISOLATION_2, format!("-o {b} {c} -j DROP")));
    r.push((
        "filter",
        FORWARD,
        format!("-o {b} -m conntrack --ctstate RELATED,ESTABLISHED {c} -j ACCEPT"),
    ));
    r.push((
        "filter",
        FORWARD,
        format!("-o {b} -m conntrack --ctstate DNAT {c} -j ACCEPT"),
    ));
    r.push(("filter", FORWARD, format!("-i {b} {c} -j ACCEPT")));
    if !n.internal {
        r.push((
            "nat",
            POSTROUTING,
            format!("-s {s} ! -o {b} {c} -j MASQUERADE"),
        ));
    }
    if n.subnet.addr().is_ipv4() {
        // Published ports reached on 127.0.0.1 (the bridge has route_localnet set).
        r.push((
            "nat",
            POSTROUTING,
            format!("-s 127.0.0.0/8 -o {b} {c} -j MASQUERADE"),
        ));
    }
    r.push((
        "nat",
        POSTROUTING,
        format!("-s {s} -o {b} -m conntrack --ctstate DNAT {c} -j MASQUERADE"),
    ));
    r
}

/// Adds what is missing of the shared chains and jumps and of `net`'s rules. Idempotent;
/// call with the host lock held.
pub fn setup_network(family: Family, net: &NetSpec<'_>) -> Result<(), FirewallError> {
    let saved = Saved::read(family)?;
    let mut b = Batch::default();
    for (table, chain) in [
        ("filter", ISOLATION_1),
        ("filter", ISOLATION_2),
        ("filter", FORWARD),
        ("nat", POSTROUTING),
        ("nat", DNAT),
    ] {
        if !saved.has_chain(table, chain) {
            b.push(table, format!(":{chain} - [0:0]"));
        }
    }
    let iso = saved.rules_of("filter", ISOLATION_1);
    if !iso.iter().any(|l| l.ends_with(DNAT_RETURN)) {
        b.push("filter", format!("-I {ISOLATION_1} 1 {DNAT_RETURN}"));
    }
    // FORWARD: our isolation first (before the CNI firewall plugin's ACCEPTs), then ours.
    let fwd = saved.rules_of("filter", "FORWARD");
    let jump_iso = format!("-A FORWARD -j {ISOLATION_1}");
    let jump_fwd = format!("-A FORWARD -j {FORWARD}");
    if !fwd.iter().any(|l| **l == jump_fwd) {
        b.push("filter", format!("-I FORWARD 1 -j {FORWARD}"));
    }
    if fwd.first().map(|l| l.as_str()) != Some(jump_iso.as_str()) {
        if fwd.iter().any(|l| **l == jump_iso) {
            b.push("filter", format!("-D FORWARD -j {ISOLATION_1}"));
        }
        b.push("filter", format!("-I FORWARD 1 -j {ISOLATION_1}"));
    }
    let jumps = [
        ("POSTROUTING", format!("-j {POSTROUTING}")),
        (
            "PREROUTING",
            format!("-m addrtype --dst-type LOCAL -j {DNAT}"),
        ),
        ("OUTPUT", format!("-m addrtype --dst-type LOCAL -j {DNAT}")),
    ];
    for (chain, rule) in jumps {
        let line = format!("-A {chain} {rule}");
        if !saved.table("nat").contains(&line) {
            b.push("nat", line);
        }
    }
    for table in ["filter", "nat"] {
        if !saved.tagged(table, net.bridge).is_empty() {
            continue;
        }
        for (t, chain, rule) in network_rules(net).into_iter().filter(|r| r.0 == table) {
            b.push(t, format!("-A {chain} {rule}"));
        }
    }
    b.apply(family)
}

/// Deletes every rule tagged `berth:<tag>` (a network's by its bridge, a container's port
/// mappings by its id).
pub fn delete_tagged(family: Family, tag: &str) -> Result<(), FirewallError> {
    let saved = Saved::read(family)?;
    delete_tagged_in(&saved, family, tag)
}

fn delete_tagged_in(saved: &Saved, family: Family, tag: &str) -> Result<(), FirewallError> {
    let mut b = Batch::default();
    for table in ["filter", "nat"] {
        for l in saved.tagged(table, tag) {
            b.push(table, format!("-D {}", &l[3..]));
        }
    }
    b.apply(family)
}

/// Removes the shared chains and jumps once no berth network has rules left in this family
/// (a port mapping left in BERTH-DNAT keeps them). Returns whether it did.
pub fn remove_shared_if_unused(family: Family) -> Result<bool, FirewallError> {
    let saved = Saved::read(family)?;
    let in_use = !saved.bridges().is_empty() || !saved.rules_of("nat", DNAT).is_empty();
    if in_use {
        return Ok(false);
    }
    let mut b = Batch::default();
    let fwd = saved.rules_of("filter", "FORWARD");
    for chain in [ISOLATION_1, FORWARD] {
        let jump = format!("-A FORWARD -j {chain}");
        if fwd.iter().any(|l| **l == jump) {
            b.push("filter", format!("-D FORWARD -j {chain}"));
        }
    }
    for (chain, rule) in [
        ("POSTROUTING", format!("-j {POSTROUTING}")),
        (
            "PREROUTING",
            format!("-m addrtype --dst-type LOCAL -j {DNAT}"),
        ),
        ("OUTPUT", format!("-m addrtype --dst-type LOCAL -j {DNAT}")),
    ] {
        let line = format!("-A {chain} {rule}");
        if saved.table("nat").contains(&line) {
            b.push("nat", format!("-D {chain} {rule}"));
        }
    }
    for (table, chain) in [
        ("filter", ISOLATION_1),
        ("filter", ISOLATION_2),
        ("filter", FORWARD),
        ("nat", POSTROUTING),
        ("nat", DNAT),
    ] {
        if saved.has_chain(table, chain) {
            for l in saved.rules_of(table, chain) {
                b.push(table, format!("-D {}", &l[3..]));
            }
            b.push(table, format!("-X {chain}"));
        }
    }
    b.apply(family)?;
    Ok(true)
}

/// The DNAT rule lines of a container's port mappings (`ip` is its address in that family).
fn port_rules(container_id: &str, ip: IpAddr, ports: &[PortMapping]) -> Vec<String> {
    let c = tag(container_id);
    ports
        .iter()
        .filter(|p| p.host_ip.is_none_or(|h| h.is_ipv4() == ip.is_ipv4()))
        .map(|p| {
            let dest = match p.host_ip {
                Some(IpAddr::V4(h)) => format!("-d {h}/32 "),
                Some(IpAddr::V6(h)) => format!("-d {h}/128 "),
                None => String::new(),
            };
            let to = match ip {
                IpAddr::V4(a) => format!("{a}:{}", p.container_port),
                IpAddr::V6(a) => format!("[{a}]:{}", p.container_port),
            };
            let proto = p.protocol;
            format!(
                "{DNAT} {dest}-p {proto} -m {proto} --dport {} {c} -j DNAT --to-destination {to}",
                p.host_port
            )
        })
        .collect()
}

/// Publishes `ports` for the container at `ip`: one batch.
pub fn add_ports(
    container_id: &str,
    ip: IpAddr,
    ports: &[PortMapping],
) -> Result<(), FirewallError> {
    let mut b = Batch::default();
    for r in port_rules(container_id, ip, ports) {
        b.push("nat", format!("-A {r}"));
    }
    b.apply(Family::of(ip))
}

/// Withdraws what [`add_ports`] added; when the exact lines are not all there (a crash, a
/// flushed table), whatever is left tagged with the container's id.
pub fn remove_ports(
    container_id: &str,
    ip: Option<IpAddr>,
    family: Family,
    ports: &[PortMapping],
) -> Result<(), FirewallError> {
    if let Some(ip) = ip {
        let mut b = Batch::default();
        for r in port_rules(container_id, ip, ports) {
            b.push("nat", format!("-D {r}"));
        }
        if b.apply(family).is_ok() {
            return Ok(());
        }
    }
    delete_tagged(family, container_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ports::Protocol;

    #[test]
    fn saved_rules_are_found_by_table_chain_and_tag() {
        let text = "*filter\n:INPUT ACCEPT [0:0]\n:BERTH-FORWARD - [0:0]\n\
            -A BERTH-FORWARD -i bx1 -m comment --comment \"berth:bx1\" -j ACCEPT\nCOMMIT\n\
            *nat\n:BERTH-DNAT - [0:0]\n\
            -A BERTH-DNAT -p tcp -m tcp --dport 80 -m comment --comment \"berth:abc\" -j DNAT --to-destination 10.0.0.2:80\n\
            COMMIT\n*mangle\n-A PREROUTING -j X\nCOMMIT\n";
        let s = Saved::parse(text);
        assert!(s.has_chain("filter", FORWARD));
        assert!(!s.has_chain("filter", ISOLATION_1));
        assert_eq!(s.tagged("filter", "bx1").len(), 1);
        assert_eq!(s.tagged("nat", "abc").len(), 1);
        assert!(s.tagged("nat", "ab").is_empty());
        assert_eq!(s.bridges().into_iter().collect::<Vec<_>>(), ["bx1"]);
    }

    #[test]
    fn port_rules_follow_the_family_and_host_address() {
        let m = |host_ip: Option<&str>| PortMapping {
            host_ip: host_ip.map(|h| h.parse().unwrap()),
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
        };
        let ports = [m(None), m(Some("127.0.0.1")), m(Some("::1"))];
        let v4 = port_rules("c1", "10.0.0.2".parse().unwrap(), &ports);
        assert_eq!(v4.len(), 2);
        assert_eq!(
            v4[1],
            "BERTH-DNAT -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -m comment --comment berth:c1 -j DNAT --to-destination 10.0.0.2:80"
        );
        let v6 = port_rules("c1", "fd00::2".parse().unwrap(), &ports);
        assert_eq!(v6.len(), 2);
        assert!(
            v6[0].ends_with("--to-destination [fd00::2]:80"),
            "{}",
            v6[0]
        );
    }

    #[test]
    fn internal_networks_drop_and_do_not_masquerade() {
        let n = NetSpec {
            bridge: "bx2",
            subnet: "10.9.0.0/24".parse().unwrap(),
            internal: true,
        };
        let r = network_rules(&n);
        assert!(r
            .iter()
            .any(|(_, _, l)| l.contains("-j DROP") && l.starts_with("-i bx2 ! -o bx2")));
        assert!(!r
            .iter()
            .any(|(_, _, l)| l.starts_with("-s 10.9.0.0/24 ! -o")));
        assert!(r.iter().all(|(_, _, l)| l.contains("berth:bx2")));
    }
}
