//! Published ports: `-p` parsing, EXPOSE entries for `-P`, and random free host ports.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("invalid publish spec {spec:?}: {reason}")]
    Publish { spec: String, reason: &'static str },
    #[error("invalid exposed port {spec:?}: {reason}")]
    Exposed { spec: String, reason: &'static str },
    #[error("no free {protocol} port on {ip}")]
    NoFreePort {
        ip: IpAddr,
        protocol: Protocol,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

impl FromStr for Protocol {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            _ => Err(()),
        }
    }
}

/// One host port forwarded to one container port. `host_port` 0 means "pick a free one"
/// ([`assign_host_ports`] does before the mapping reaches the plugins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address to listen on; `None` is every address.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = self.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        write!(
            f,
            "{}/{} -> {}",
            self.container_port,
            self.protocol,
            SocketAddr::new(ip, self.host_port)
        )
    }
}

/// Parses one `-p` value: `[[ip:]hostPort:]containerPort[/proto]`, where ports may be ranges
/// (`8000-8001:80-81`, equal lengths) and an empty or absent host port means a random one
/// (`80`, `127.0.0.1::80`). IPv6 host addresses are written in brackets (`[::1]:8080:80`).
pub fn parse_publish(spec: &str) -> Result<Vec<PortMapping>, PortError> {
    let err = |reason| PortError::Publish {
        spec: spec.to_string(),
        reason,
    };
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((rest, proto)) => (
            rest,
            proto
                .parse::<Protocol>()
                .map_err(|()| err("protocol must be tcp or udp"))?,
        ),
        None => (spec, Protocol::Tcp),
    };
    let (host_ip, rest) = split_host_ip(rest).map_err(err)?;
    let (host, container) = match rest.rsplit_once(':') {
        Some((host, container)) => (host, container),
        None if host_ip.is_some() => return Err(err("missing container port")),
        None => ("", rest),
    };
    if host.contains(':') {
        return Err(err(
            "too many ':'-separated fields (IPv6 addresses need brackets)",
        ));
    }
    let container = parse_range(container).ok_or_else(|| err("bad container port"))?;
    if container.0 == 0 {
        return Err(err("container port must not be 0"));
    }
    let host = if host.is_empty() {
        None
    } else {
        Some(parse_range(host).ok_or_else(|| err("bad host port"))?)
    };
    let count = container.1 - container.0 + 1;
    if let Some((lo, hi)) = host {
        if hi - lo + 1 != count && !(lo == hi && count == 1) {
            return Err(err("host and container port ranges differ in length"));
        }
    }
    Ok((0..count)
        .map(|i| PortMapping {
            host_ip,
            host_port: host.map_or(0, |(lo, _)| lo + i),
            container_port: container.0 + i,
            protocol,
        })
        .collect())
}

/// Splits a leading host address (`1.2.3.4:` or `[::1]:`) off `s`.
fn split_host_ip(s: &str) -> Result<(Option<IpAddr>, &str), &'static str> {
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, rest) = rest
            .split_once("]:")
            .ok_or("unterminated '[' host address")?;
        let ip = ip.parse().map_err(|_| "bad host address")?;
        return Ok((Some(ip), rest));
    }
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() == 3 {
        let ip = parts[0].parse().map_err(|_| "bad host address")?;
        let rest = &s[parts[0].len() + 1..];
        return Ok((Some(ip), rest));
    }
    Ok((None, s))
}

/// `N` or `N-M` with N <= M, each 0..=65535.
fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (lo, hi) = match s.split_once('-') {
        Some((lo, hi)) => (lo.parse().ok()?, hi.parse().ok()?),
        None => {
            let p = s.parse().ok()?;
            (p, p)
        }
    };
    (lo <= hi).then_some((lo, hi))
}

/// Parses an image config's `ExposedPorts` key (`80/tcp`, `53/udp`, `8000-8001/tcp`, or a bare
/// port meaning tcp).
pub fn parse_exposed(spec: &str) -> Result<Vec<(u16, Protocol)>, PortError> {
    let err = |reason| PortError::Exposed {
        spec: spec.to_string(),
        reason,
    };
    let (ports, protocol) = match spec.split_once('/') {
        Some((p, proto)) => (
            p,
            proto
                .parse::<Protocol>()
                .map_err(|()| err("protocol must be tcp or udp"))?,
        ),
        None => (spec, Protocol::Tcp),
    };
    let (lo, hi) = parse_range(ports).ok_or_else(|| err("bad port"))?;
    if lo == 0 {
        return Err(err("port must not be 0"));
    }
    Ok((lo..=hi).map(|p| (p, protocol)).collect())
}

/// `-P`: every exposed port published on a random free host port of `host_ip` (every address
/// when `None`), ports already published with `-p` left out.
pub fn publish_all(
    exposed: &[(u16, Protocol)],
    already: &[PortMapping],
    host_ip: Option<IpAddr>,
) -> Result<Vec<PortMapping>, PortError> {
    let mut out: Vec<PortMapping> = exposed
        .iter()
        .filter(|(port, proto)| {
            !already
                .iter()
                .any(|m| m.container_port == *port && m.protocol == *proto)
        })
        .map(|&(container_port, protocol)| PortMapping {
            host_ip,
            host_port: 0,
            container_port,
            protocol,
        })
        .collect();
    out.dedup();
    assign_host_ports(&mut out)?;
    Ok(out)
}

/// Replaces every host port 0 with a port the kernel reports free right now: binding port 0
/// makes the kernel pick from its ephemeral range (`ip_local_port_range`), the same pool
/// docker's allocator draws from. The socket closes again before the plugins install DNAT,
/// so another program could take the port in between, as with docker's allocator.
pub fn assign_host_ports(mappings: &mut [PortMapping]) -> Result<(), PortError> {
    for m in mappings.iter_mut().filter(|m| m.host_port == 0) {
        let ip = m.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let bound = match m.protocol {
            Protocol::Tcp => TcpListener::bind(SocketAddr::new(ip, 0)).and_then(|l| l.local_addr()),
            Protocol::Udp => UdpSocket::bind(SocketAddr::new(ip, 0)).and_then(|s| s.local_addr()),
        };
        m.host_port = bound
            .map_err(|source| PortError::NoFreePort {
                ip,
                protocol: m.protocol,
                source,
            })?
            .port();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortMapping {
        let v = parse_publish(spec).unwrap();
        assert_eq!(v.len(), 1, "{spec}");
        v.into_iter().next().unwrap()
    }

    #[test]
    fn publish_forms_parse_to_host_and_container_ports() {
        let m = one("8080:80");
        assert_eq!((m.host_ip, m.host_port, m.container_port), (None, 8080, 80));
        assert_eq!(m.protocol, Protocol::Tcp);
        let m = one("127.0.0.1:8080:80/udp");
        assert_eq!(m.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(
            (m.host_port, m.container_port, m.protocol),
            (8080, 80, Protocol::Udp)
        );
        let m = one("80");
        assert_eq!((m.host_port, m.container_port), (0, 80));
        let m = one("127.0.0.1::80");
        assert_eq!((m.host_port, m.container_port), (0, 80));
        let m = one("[::1]:8080:80/tcp");
        assert_eq!(m.host_ip, Some("::1".parse().unwrap()));
    }

    #[test]
    fn publish_ranges_expand_pairwise() {
        let v = parse_publish("8000-8002:80-82").unwrap();
        let pairs: Vec<_> = v.iter().map(|m| (m.host_port, m.container_port)).collect();
        assert_eq!(pairs, [(8000, 80), (8001, 81), (8002, 82)]);
        assert!(parse_publish("8000-8001:80-82").is_err());
    }

    #[test]
    fn bad_publish_specs_name_the_problem() {
        for (spec, needle) in [
            ("", "container port"),
            ("80/sctp", "protocol"),
            ("abc:80", "host port"),
            ("1.2.3:80:80", "host address"),
            ("8080:0", "must not be 0"),
            ("70000:80", "host port"),
            ("1.2.3.4:5:6:7", "too many"),
        ] {
            let e = parse_publish(spec).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn exposed_ports_parse_with_default_tcp() {
        assert_eq!(parse_exposed("80/tcp").unwrap(), [(80, Protocol::Tcp)]);
        assert_eq!(parse_exposed("53/udp").unwrap(), [(53, Protocol::Udp)]);
        assert_eq!(parse_exposed("443").unwrap(), [(443, Protocol::Tcp)]);
        assert!(parse_exposed("x/tcp").is_err());
    }

    #[test]
    fn publish_all_picks_distinct_free_ports_and_skips_explicit_ones() {
        let exposed = [
            (80, Protocol::Tcp),
            (81, Protocol::Tcp),
            (53, Protocol::Udp),
        ];
        let explicit = one("127.0.0.1:9999:81");
        let lo = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let v = publish_all(&exposed, &[explicit], lo).unwrap();
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|m| m.host_port != 0 && m.host_ip == lo));
        assert!(v.iter().all(|m| m.container_port != 81));
    }
}
