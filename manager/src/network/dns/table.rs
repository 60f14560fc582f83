//! The names a resolver answers, built from the store's endpoint records: each container by its
//! name, short and full id, and its aliases on each network, seen from the container asking
//! (it resolves the containers that share one of its user networks, whichever resolver it
//! asks, as with docker's embedded DNS).

use std::net::IpAddr;

use super::super::endpoint::EndpointRecord;
use super::super::store::DEFAULT_NETWORK;

/// One container's side of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub networks: Vec<Membership>,
    /// Its `--dns` servers: where its other queries go (the host's servers when empty).
    pub upstream: Vec<IpAddr>,
    /// Its search domains: `name.<domain>` is answered like `name`.
    pub search: Vec<String>,
    /// Its links: `(alias, target)`, the alias answered as the target's name for it only.
    pub links: Vec<(String, String)>,
}

/// A container's attachment to one name-resolving network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub network: String,
    pub ips: Vec<IpAddr>,
    pub aliases: Vec<String>,
}

/// Every container of the store with a finished attachment to a name-resolving network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    containers: Vec<Container>,
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Table {
    pub fn from_records(records: &[EndpointRecord]) -> Self {
        let containers = records
            .iter()
            .filter_map(|r| {
                let networks: Vec<Membership> = r
                    .attachments()
                    .into_iter()
                    .filter(|a| a.network != DEFAULT_NETWORK)
                    .map(|a| Membership {
                        network: a.network.clone(),
                        ips: a.ips(),
                        aliases: a.aliases.iter().map(|s| normalize(s)).collect(),
                    })
                    .collect();
                if networks.is_empty() {
                    return None;
                }
                let dns = r.etc.as_ref().map(|e| e.dns.clone()).unwrap_or_default();
                Some(Container {
                    id: r.container_id.clone(),
                    name: normalize(&r.container_name),
                    networks,
                    upstream: dns.servers,
                    search: dns.search.iter().map(|s| normalize(s)).collect(),
                    links: dns
                        .links
                        .iter()
                        .map(|l| (normalize(&l.alias), normalize(&l.target)))
                        .collect(),
                })
            })
            .collect();
        Self { containers }
    }

    /// Whether any container is on `network` (an attachment in progress counts elsewhere).
    pub fn has_members(&self, network: &str) -> bool {
        self.containers
            .iter()
            .any(|c| c.networks.iter().any(|m| m.network == network))
    }

    /// The container that has address `src` on `network`.
    pub fn requester(&self, network: &str, src: IpAddr) -> Option<&Container> {
        self.containers.iter().find(|c| {
            c.networks
                .iter()
                .any(|m| m.network == network && m.ips.contains(&src))
        })
    }

    /// The requester's networks, the one asked through first.
    fn scope<'a>(requester: &'a Container, network: &'a str) -> Vec<&'a str> {
        let mut nets = vec![network];
        nets.extend(
            requester
                .networks
                .iter()
                .map(|m| m.network.as_str())
                .filter(|n| *n != network),
        );
        nets
    }

    /// The addresses `name` stands for, seen from `requester` asking through `network`;
    /// `None` when it is no container's name (then the query goes upstream). A container on
    /// several shared networks answers with its addresses on the first of them.
    pub fn lookup(&self, requester: &Container, network: &str, name: &str) -> Option<Vec<IpAddr>> {
        let name = normalize(name);
        let mut candidates = vec![name.clone()];
        for domain in &requester.search {
            if let Some(short) = name.strip_suffix(&format!(".{domain}")) {
                candidates.push(short.to_string());
            }
        }
        for (alias, target) in &requester.links {
            if candidates.contains(alias) && !candidates.contains(target) {
                candidates.push(target.clone());
            }
        }
        let scope = Self::scope(requester, network);
        let mut out: Vec<IpAddr> = Vec::new();
        let mut found = false;
        for c in &self.containers {
            let matches = |m: &Membership| {
                candidates.iter().any(|n| {
                    *n == c.name
                        || (n.len() == 12 && c.id.starts_with(n.as_str()))
                        || *n == c.id
                        || m.aliases.contains(n)
                })
            };
            let hit = scope.iter().find_map(|net| {
                c.networks
                    .iter()
                    .find(|m| m.network == *net)
                    .filter(|m| matches(m))
            });
            if let Some(m) = hit {
                found = true;
                for ip in &m.ips {
                    if !out.contains(ip) {
                        out.push(*ip);
                    }
                }
            }
        }
        found.then_some(out)
    }

    /// The container name of `ip`, when it is a container's address on one of the
    /// requester's networks.
    pub fn reverse(&self, requester: &Container, network: &str, ip: IpAddr) -> Option<String> {
        let scope = Self::scope(requester, network);
        self.containers.iter().find_map(|c| {
            c.networks
                .iter()
                .any(|m| scope.contains(&m.network.as_str()) && m.ips.contains(&ip))
                .then(|| c.name.clone())
        })
    }
}

/// The address of a reverse-lookup name (`4.3.2.1.in-addr.arpa`, or 32 nibbles and
/// `ip6.arpa`).
pub fn parse_reverse(name: &str) -> Option<IpAddr> {
    let name = normalize(name);
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let mut octets: Vec<u8> = rest
            .split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        if octets.len() != 4 {
            return None;
        }
        octets.reverse();
        return Some(IpAddr::from([octets[0], octets[1], octets[2], octets[3]]));
    }
    let rest = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u8> = rest
        .split('.')
        .map(|p| u8::from_str_radix(p, 16).ok().filter(|_| p.len() == 1))
        .collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let v = nibbles
        .iter()
        .rev()
        .fold(0u128, |acc, n| (acc << 4) | u128::from(*n));
    Some(IpAddr::V6(v.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::endpoint::{Attachment, NetworkEndpoint, Phase};
    use crate::network::etc::{DnsConfig, EtcConfig};

    fn rec(id: &str, name: &str, nets: &[(&str, &str, &[&str])], dns: &[&str]) -> EndpointRecord {
        let networks = nets
            .iter()
            .enumerate()
            .map(|(i, (net, ip, aliases))| NetworkEndpoint {
                network: net.to_string(),
                bridge: String::new(),
                internal: false,
                interface: format!("eth{i}"),
                phase: Phase::Ready,
                backend: Default::default(),
                conflist: None,
                args: Vec::new(),
                result: serde_json::Value::Null,
                host_link: String::new(),
                ports: Vec::new(),
                attachment: Some(Attachment {
                    network: net.to_string(),
                    interface: format!("eth{i}"),
                    ip: ip.parse().unwrap(),
                    prefix: 24,
                    gateway: "10.0.0.1".parse().unwrap(),
                    mac: String::new(),
                    aliases: aliases.iter().map(|s| s.to_string()).collect(),
                    ipv6: None,
                    prefix6: 0,
                    gateway6: None,
                }),
                aliases: Vec::new(),
            })
            .collect();
        EndpointRecord {
            container_id: id.into(),
            container_name: name.into(),
            netns: Default::default(),
            etc: Some(EtcConfig {
                dns: DnsConfig {
                    servers: dns.iter().map(|s| s.parse().unwrap()).collect(),
                    search: vec!["corp.test".into()],
                    options: Vec::new(),
                    links: Vec::new(),
                },
                ..EtcConfig::default()
            }),
            ports: Vec::new(),
            networks,
        }
    }

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn table() -> Table {
        Table::from_records(&[
            rec(
                "aaaaaaaaaaaa1111",
                "web",
                &[("front", "10.0.0.2", &["www"])],
                &["192.0.2.53"],
            ),
            rec(
                "bbbbbbbbbbbb2222",
                "db",
                &[("back", "10.0.1.2", &["data"])],
                &[],
            ),
            rec(
                "cccccccccccc3333",
                "app",
                &[("front", "10.0.0.3", &["api"]), ("back", "10.0.1.3", &[])],
                &[],
            ),
            rec(
                "dddddddddddd4444",
                "web2",
                &[("front", "10.0.0.4", &["www"])],
                &[],
            ),
            rec(
                "eeeeeeeeeeee5555",
                "plain",
                &[("bridge", "10.213.0.2", &[])],
                &[],
            ),
        ])
    }

    #[test]
    fn names_aliases_and_ids_resolve_on_shared_networks_only() {
        let t = table();
        let web = t.requester("front", "10.0.0.2".parse().unwrap()).unwrap();
        assert_eq!(web.upstream, ips(&["192.0.2.53"]));
        assert_eq!(t.lookup(web, "front", "app"), Some(ips(&["10.0.0.3"])));
        assert_eq!(t.lookup(web, "front", "API."), Some(ips(&["10.0.0.3"])));
        assert_eq!(
            t.lookup(web, "front", "cccccccccccc"),
            Some(ips(&["10.0.0.3"]))
        );
        assert_eq!(t.lookup(web, "front", "ccccccccccc"), None);
        // Two containers share an alias: both addresses (compose's scaled services).
        assert_eq!(
            t.lookup(web, "front", "www"),
            Some(ips(&["10.0.0.2", "10.0.0.4"]))
        );
        // db is on back only: web does not share it.
        assert_eq!(t.lookup(web, "front", "db"), None);
        // A search domain of the asking container is stripped.
        assert_eq!(
            t.lookup(web, "front", "app.corp.test"),
            Some(ips(&["10.0.0.3"]))
        );
        // The default network resolves nothing.
        assert_eq!(t.lookup(web, "front", "plain"), None);
        assert!(t
            .requester("bridge", "10.213.0.2".parse().unwrap())
            .is_none());
    }

    #[test]
    fn a_container_on_two_networks_resolves_both_through_either_resolver() {
        let t = table();
        let app = t.requester("front", "10.0.0.3".parse().unwrap()).unwrap();
        assert_eq!(t.lookup(app, "front", "db"), Some(ips(&["10.0.1.2"])));
        assert_eq!(t.lookup(app, "front", "data"), Some(ips(&["10.0.1.2"])));
        let db = t.requester("back", "10.0.1.2".parse().unwrap()).unwrap();
        // Asked through back, app answers with its back address.
        assert_eq!(t.lookup(db, "back", "app"), Some(ips(&["10.0.1.3"])));
        assert_eq!(
            t.reverse(db, "back", "10.0.1.3".parse().unwrap()),
            Some("app".into())
        );
        assert_eq!(t.reverse(db, "back", "10.0.0.2".parse().unwrap()), None);
        assert!(t.has_members("back"));
        assert!(!t.has_members("elsewhere"));
    }

    #[test]
    fn reverse_names_parse_for_both_families() {
        assert_eq!(
            parse_reverse("3.1.0.10.in-addr.arpa."),
            Some("10.0.1.3".parse().unwrap())
        );
        let v6 = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa";
        assert_eq!(parse_reverse(v6), Some("fd00:1:2:3::2".parse().unwrap()));
        assert_eq!(parse_reverse("1.2.3.in-addr.arpa"), None);
        assert_eq!(parse_reverse("example.com"), None);
    }
}

#[cfg(test)]
mod link_tests {
    use super::*;

    #[test]
    fn a_link_alias_resolves_for_the_linking_container_only() {
        let member = |ip: &str| Membership {
            network: "front".into(),
            ips: vec![ip.parse().unwrap()],
            aliases: Vec::new(),
        };
        let container = |name: &str, ip: &str, links: &[(&str, &str)]| Container {
            id: format!("{name}000000000000"),
            name: name.into(),
            networks: vec![member(ip)],
            upstream: Vec::new(),
            search: Vec::new(),
            links: links
                .iter()
                .map(|(a, t)| (a.to_string(), t.to_string()))
                .collect(),
        };
        let t = Table {
            containers: vec![
                container("web", "10.0.0.2", &[("database", "db-1")]),
                container("db-1", "10.0.0.3", &[]),
                container("other", "10.0.0.4", &[]),
            ],
        };
        let web = &t.containers[0];
        assert_eq!(
            t.lookup(web, "front", "Database."),
            Some(vec!["10.0.0.3".parse().unwrap()])
        );
        assert_eq!(t.lookup(&t.containers[2], "front", "database"), None);
    }
}
