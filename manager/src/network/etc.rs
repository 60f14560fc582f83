//! The per-container `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`, generated into a
//! directory of the container's and bind-mounted by the caller.
//!
//! Rewrites keep the inode (truncate and write in place): the files are bind mounts inside
//! running containers, and a rename would leave the container looking at the old file.

use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum EtcError {
    #[error("creating directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid --add-host {spec:?}: expected host:ip")]
    AddHost { spec: String },
}

/// What a container's generated files are made from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcConfig {
    /// Directory the files are written to (`hosts`, `resolv.conf`, `hostname`).
    pub dir: PathBuf,
    pub hostname: String,
    /// `--add-host` entries.
    #[serde(default)]
    pub extra_hosts: Vec<ExtraHost>,
    #[serde(default)]
    pub dns: DnsConfig,
    /// `--network host`: the host's resolvers are reachable, loopback ones included.
    #[serde(default)]
    pub host_network: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraHost {
    pub name: String,
    pub ip: IpAddr,
}

/// Parses `--add-host name:ip` (also `name=ip`; the address may be IPv6 with colons).
pub fn parse_add_host(spec: &str) -> Result<ExtraHost, EtcError> {
    let err = || EtcError::AddHost { spec: spec.into() };
    let (name, ip) = spec
        .split_once('=')
        .or_else(|| spec.split_once(':'))
        .ok_or_else(err)?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() {
        return Err(err());
    }
    Ok(ExtraHost {
        name: name.into(),
        ip: ip.parse().map_err(|_| err())?,
    })
}

/// `--dns`, `--dns-search`, `--dns-option`; an empty list keeps the host's entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsConfig {
    #[serde(default)]
    pub servers: Vec<IpAddr>,
    #[serde(default)]
    pub search: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
    /// Legacy links (`--link`, compose's `links`): names only this container resolves, each
    /// to another container's addresses on a shared network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<DnsLink>,
}

/// One link: `alias` resolves to the container named `target`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsLink {
    pub target: String,
    pub alias: String,
}

/// One line of a hosts file: an address and its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub ip: IpAddr,
    pub names: Vec<String>,
}

/// Renders `/etc/hosts`: localhost, the extra hosts, the container's own addresses (first the
/// hostname), then `peers`.
pub fn render_hosts(cfg: &EtcConfig, own: &[HostEntry], peers: &[HostEntry]) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for h in &cfg.extra_hosts {
        out.push_str(&format!("{}\t{}\n", h.ip, h.name));
    }
    for e in own.iter().chain(peers) {
        if !e.names.is_empty() {
            out.push_str(&format!("{}\t{}\n", e.ip, e.names.join(" ")));
        }
    }
    out
}

/// `/etc/hosts` for `--network host`: the host's file, then the extra hosts.
pub fn render_host_network_hosts(cfg: &EtcConfig, host_hosts: &str) -> String {
    let mut out = host_hosts.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for h in &cfg.extra_hosts {
        out.push_str(&format!("{}\t{}\n", h.ip, h.name));
    }
    out
}

/// Fallback resolvers when the host has none a container could reach (docker's choice).
const FALLBACK_DNS: &[&str] = &["8.8.8.8", "8.8.4.4"];

/// Renders `/etc/resolv.conf` from the host's (`host_resolv`): loopback nameservers are dropped
/// unless on the host network (they would point at the container itself), and `--dns*`
/// replace the matching host lines. With `resolvers` (the embedded DNS of the container's
/// user networks) those are the nameservers instead: they answer the container names and
/// forward the rest to the `--dns` servers or the host's. Their `ndots:0` (as docker's)
/// makes a container name be asked as it is first, not after every search domain.
pub fn render_resolv(cfg: &EtcConfig, host_resolv: &str, resolvers: &[IpAddr]) -> String {
    let mut servers = Vec::new();
    let mut search = Vec::new();
    let mut options = Vec::new();
    for line in host_resolv.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => {
                if let Some(ip) = f.next().and_then(|s| s.parse::<IpAddr>().ok()) {
                    if cfg.host_network || !ip.is_loopback() {
                        servers.push(ip.to_string());
                    }
                }
            }
            Some("search") | Some("domain") => {
                search = f.map(str::to_string).collect();
            }
            Some("options") => options.extend(f.map(str::to_string)),
            _ => {}
        }
    }
    if !cfg.dns.servers.is_empty() {
        servers = cfg.dns.servers.iter().map(IpAddr::to_string).collect();
    }
    if servers.is_empty() {
        servers = FALLBACK_DNS.iter().map(|s| s.to_string()).collect();
    }
    if !cfg.dns.search.is_empty() {
        search = cfg.dns.search.clone();
    }
    if !cfg.dns.options.is_empty() {
        options = cfg.dns.options.clone();
    }
    if !resolvers.is_empty() {
        // resolv.conf takes three nameservers; more would only be ignored.
        servers = resolvers.iter().take(3).map(IpAddr::to_string).collect();
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.insert(0, "ndots:0".into());
        }
    }
    let mut out = String::new();
    if !search.is_empty() && search != ["."] {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// Writes all three files for a container: `own` are its addresses, `resolvers` the embedded
/// DNS servers of its user networks (see [`render_resolv`]).
pub fn write_files(
    cfg: &EtcConfig,
    own: &[HostEntry],
    resolvers: &[IpAddr],
) -> Result<(), EtcError> {
    fs::create_dir_all(&cfg.dir).map_err(|source| EtcError::CreateDir {
        path: cfg.dir.clone(),
        source,
    })?;
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let hosts = if cfg.host_network {
        // On the host's network the host's names are the container's, as in docker.
        let host_hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
        render_host_network_hosts(cfg, &host_hosts)
    } else {
        render_hosts(cfg, own, &[])
    };
    write_in_place(&cfg.dir.join("hosts"), &hosts)?;
    write_in_place(
        &cfg.dir.join("resolv.conf"),
        &render_resolv(cfg, &host_resolv, resolvers),
    )?;
    write_in_place(&cfg.dir.join("hostname"), &format!("{}\n", cfg.hostname))
}

/// Replaces the contents of `path` keeping its inode (see the module comment).
pub fn write_in_place(path: &Path, text: &str) -> Result<(), EtcError> {
    let err = |source| EtcError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> EtcConfig {
        EtcConfig {
            dir: PathBuf::from("/nonexistent"),
            hostname: "web1".into(),
            ..EtcConfig::default()
        }
    }

    #[test]
    fn hosts_lists_localhost_extra_hosts_self_and_peers() {
        let mut c = cfg();
        c.extra_hosts
            .push(parse_add_host("db.local:10.1.2.3").unwrap());
        let own = [HostEntry {
            ip: "10.0.0.2".parse().unwrap(),
            names: vec!["web1".into(), "web".into()],
        }];
        let peers = [HostEntry {
            ip: "10.0.0.3".parse().unwrap(),
            names: vec!["cache".into(), "redis".into()],
        }];
        let h = render_hosts(&c, &own, &peers);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.contains("10.1.2.3\tdb.local\n"));
        assert!(h.contains("10.0.0.2\tweb1 web\n"));
        assert!(h.contains("10.0.0.3\tcache redis\n"));
    }

    #[test]
    fn resolv_drops_loopback_servers_except_on_the_host_network() {
        let host =
            "search example.com\nnameserver 127.0.0.53\nnameserver 192.0.2.53\noptions ndots:2\n";
        let r = render_resolv(&cfg(), host, &[]);
        assert_eq!(
            r,
            "search example.com\nnameserver 192.0.2.53\noptions ndots:2\n"
        );
        let mut c = cfg();
        c.host_network = true;
        assert!(render_resolv(&c, host, &[]).contains("nameserver 127.0.0.53\n"));
        let only_loopback = "nameserver 127.0.0.1\n";
        assert!(render_resolv(&cfg(), only_loopback, &[]).contains("nameserver 8.8.8.8\n"));
    }

    #[test]
    fn host_network_hosts_is_the_hosts_file_of_the_host_plus_extra_hosts() {
        let mut c = cfg();
        c.host_network = true;
        c.extra_hosts
            .push(parse_add_host("extra:192.0.2.5").unwrap());
        let h = render_host_network_hosts(&c, "127.0.0.1 localhost\n192.0.2.2 vm");
        assert_eq!(h, "127.0.0.1 localhost\n192.0.2.2 vm\n192.0.2.5\textra\n");
    }

    #[test]
    fn dns_flags_replace_the_host_lines() {
        let mut c = cfg();
        c.dns = DnsConfig {
            servers: vec!["192.0.2.1".parse().unwrap()],
            search: vec!["a.test".into(), "b.test".into()],
            options: vec!["ndots:5".into()],
            links: Vec::new(),
        };
        let r = render_resolv(&c, "search x\nnameserver 192.0.2.9\noptions rotate\n", &[]);
        assert_eq!(
            r,
            "search a.test b.test\nnameserver 192.0.2.1\noptions ndots:5\n"
        );
    }

    #[test]
    fn embedded_resolvers_replace_the_servers_and_default_to_ndots_0() {
        let mut c = cfg();
        c.dns.servers = vec!["192.0.2.1".parse().unwrap()];
        c.dns.search = vec!["corp.test".into()];
        let gw: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "10.0.1.1".parse().unwrap()];
        let r = render_resolv(&c, "nameserver 192.0.2.9\noptions rotate\n", &gw);
        assert_eq!(
            r,
            "search corp.test\nnameserver 10.0.0.1\nnameserver 10.0.1.1\noptions ndots:0 rotate\n"
        );
        c.dns.options = vec!["ndots:3".into()];
        assert!(render_resolv(&c, "", &gw).ends_with("options ndots:3\n"));
    }

    #[test]
    fn add_host_accepts_colon_equals_and_ipv6() {
        assert_eq!(
            parse_add_host("h:1.2.3.4").unwrap().ip.to_string(),
            "1.2.3.4"
        );
        assert_eq!(parse_add_host("h=::1").unwrap().ip.to_string(), "::1");
        assert_eq!(parse_add_host("h:[::1]").unwrap().ip.to_string(), "::1");
        assert!(parse_add_host("nocolon").is_err());
        assert!(parse_add_host(":1.2.3.4").is_err());
    }

    #[test]
    fn rewrites_keep_the_inode_of_bind_mounted_files() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg();
        c.dir = dir.path().to_path_buf();
        write_files(&c, &[], &[]).unwrap();
        let hosts = dir.path().join("hosts");
        let before = fs::metadata(&hosts).unwrap().ino();
        let own = [HostEntry {
            ip: "10.0.0.9".parse().unwrap(),
            names: vec!["web1".into()],
        }];
        write_files(&c, &own, &[]).unwrap();
        assert_eq!(fs::metadata(&hosts).unwrap().ino(), before);
        assert!(fs::read_to_string(&hosts)
            .unwrap()
            .contains("10.0.0.9\tweb1\n"));
        assert_eq!(
            fs::read_to_string(dir.path().join("hostname")).unwrap(),
            "web1\n"
        );
    }
}
