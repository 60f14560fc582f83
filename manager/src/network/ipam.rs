//! Address allocation for the native backend: one lease file per address, made with
//! `O_CREAT|O_EXCL`, so concurrent starts on one network never get the same address and never
//! wait for each other (the kernel's exclusive create is the only lock).
//!
//! The layout is host-local's (`<dir>/<network>/<address>` holding `<container-id>\r\n<ifname>`,
//! and the `last_reserved_ip.0` hint), so leases made by the CNI backend and by this one share
//! the default network's directory without handing out an address twice.

use std::fs;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("creating lease directory {path}")]
    Dir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing lease {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("removing lease {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading lease directory {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no free address left in {range} of network {network}")]
    Exhausted { network: String, range: IpNet },
    #[error("address {ip} of network {network} is already in use")]
    InUse { network: String, ip: IpAddr },
    #[error("address {ip} handed out from a pool of the other address family")]
    Family { ip: IpAddr },
}

/// The leases of one network: a directory of one file per address handed out.
#[derive(Debug, Clone)]
pub struct Leases {
    dir: PathBuf,
    network: String,
}

/// The addresses a network hands out: `first..=last` of a subnet, minus the gateway.
#[derive(Debug, Clone, Copy)]
pub struct Pool {
    pub subnet: IpNet,
    pub gateway: IpAddr,
    pub first: IpAddr,
    pub last: IpAddr,
}

impl Pool {
    /// Every host address of `subnet` (`range` narrows it, as `--ip-range`), gateway excluded.
    pub fn v4(subnet: Ipv4Net, gateway: Ipv4Addr, range: Option<Ipv4Net>) -> Self {
        let lo = u32::from(subnet.network()) + 1;
        let hi = u32::from(subnet.broadcast()).saturating_sub(1);
        let (lo, hi) = match range {
            Some(r) => (
                lo.max(u32::from(r.network())),
                hi.min(u32::from(r.broadcast())),
            ),
            None => (lo, hi),
        };
        Self {
            subnet: IpNet::V4(subnet),
            gateway: IpAddr::V4(gateway),
            first: IpAddr::V4(Ipv4Addr::from(lo)),
            last: IpAddr::V4(Ipv4Addr::from(hi)),
        }
    }

    /// The host addresses of an IPv6 subnet (the subnet-router anycast address excluded).
    pub fn v6(subnet: Ipv6Net, gateway: Ipv6Addr) -> Self {
        let lo = u128::from(subnet.network()) + 1;
        let hi = u128::from(subnet.broadcast());
        Self {
            subnet: IpNet::V6(subnet),
            gateway: IpAddr::V6(gateway),
            first: IpAddr::V6(Ipv6Addr::from(lo)),
            last: IpAddr::V6(Ipv6Addr::from(hi)),
        }
    }

    /// Whether `ip` is an address a container may have (inside the subnet, not the subnet's
    /// own address, broadcast or gateway); `--ip` may lie outside `--ip-range`, as in docker.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if !self.subnet.contains(&ip) || ip == self.gateway || ip == self.subnet.network() {
            return false;
        }
        match self.subnet {
            IpNet::V4(n) => ip != IpAddr::V4(n.broadcast()),
            IpNet::V6(_) => true,
        }
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(v: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(v as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// How many candidates one allocation tries before giving up: enough for a /16 of the default
/// network, and a bound for the huge IPv6 ranges (a /64 is never full in practice).
const MAX_PROBES: u128 = 1 << 17;

impl Leases {
    /// The leases of `network` under `dir` (created on first use).
    pub fn new(dir: &Path, network: &str) -> Self {
        Self {
            dir: dir.join(network),
            network: network.to_string(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn ensure_dir(&self) -> Result<(), IpamError> {
        fs::create_dir_all(&self.dir).map_err(|source| IpamError::Dir {
            path: self.dir.clone(),
            source,
        })
    }

    fn hint_path(&self, pool: &Pool) -> PathBuf {
        // host-local keeps one hint per range; the index is the range's position in its list.
        let idx = if pool.subnet.addr().is_ipv4() { 0 } else { 1 };
        self.dir.join(format!("last_reserved_ip.{idx}"))
    }

    /// Reserves `ip` for the container; fails when someone holds it.
    pub fn reserve(&self, ip: IpAddr, owner: &str, ifname: &str) -> Result<(), IpamError> {
        self.ensure_dir()?;
        match self.try_reserve(ip, owner, ifname)? {
            true => Ok(()),
            false => Err(IpamError::InUse {
                network: self.network.clone(),
                ip,
            }),
        }
    }

    /// `false` when the address is taken (the exclusive create failed).
    fn try_reserve(&self, ip: IpAddr, owner: &str, ifname: &str) -> Result<bool, IpamError> {
        let path = self.dir.join(ip.to_string());
        let mut f = match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(source) => return Err(IpamError::Write { path, source }),
        };
        // Readers of a lease only compare its owner with their own container id, so one seen
        // before this write (empty) is simply someone else's.
        f.write_all(format!("{owner}\r\n{ifname}").as_bytes())
            .map_err(|source| IpamError::Write { path, source })?;
        Ok(true)
    }

    /// Reserves the next free address of `pool` after the last one handed out (host-local's
    /// round robin, so a released address is not reused at once).
    pub fn allocate(&self, pool: &Pool, owner: &str, ifname: &str) -> Result<IpAddr, IpamError> {
        self.ensure_dir()?;
        let first = to_u128(pool.first);
        let last = to_u128(pool.last);
        if first > last {
            return Err(self.exhausted(pool));
        }
        let size = last - first + 1;
        let hint = fs::read_to_string(self.hint_path(pool))
            .ok()
            .and_then(|s| s.trim().parse::<IpAddr>().ok())
            .map(to_u128)
            .filter(|h| (first..=last).contains(h));
        let start = hint.map_or(0, |h| h - first + 1);
        for i in 0..size.min(MAX_PROBES) {
            let ip = from_u128(first + (start + i) % size, pool.first);
            if ip == pool.gateway {
                continue;
            }
            if self.try_reserve(ip, owner, ifname)? {
                // Only a hint: a lost race here makes the next search start a little early.
                let _ = fs::write(self.hint_path(pool), ip.to_string());
                return Ok(ip);
            }
        }
        Err(self.exhausted(pool))
    }

    /// [`allocate`](Self::allocate) from an IPv4 pool.
    pub fn allocate_v4(
        &self,
        pool: &Pool,
        owner: &str,
        ifname: &str,
    ) -> Result<Ipv4Addr, IpamError> {
        match self.allocate(pool, owner, ifname)? {
            IpAddr::V4(a) => Ok(a),
            ip => Err(IpamError::Family { ip }),
        }
    }

    /// [`allocate`](Self::allocate) from an IPv6 pool.
    pub fn allocate_v6(
        &self,
        pool: &Pool,
        owner: &str,
        ifname: &str,
    ) -> Result<Ipv6Addr, IpamError> {
        match self.allocate(pool, owner, ifname)? {
            IpAddr::V6(a) => Ok(a),
            ip => Err(IpamError::Family { ip }),
        }
    }

    fn exhausted(&self, pool: &Pool) -> IpamError {
        IpamError::Exhausted {
            network: self.network.clone(),
            range: pool.subnet,
        }
    }

    /// Releases `ip` if `owner` holds it (a lease of someone else is left alone).
    pub fn release(&self, ip: IpAddr, owner: &str) -> Result<(), IpamError> {
        let path = self.dir.join(ip.to_string());
        match fs::read_to_string(&path) {
            Ok(text) if lease_owner(&text) == owner => remove(&path),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(IpamError::Read { path, source }),
        }
    }

    /// Releases every lease `owner` holds (recovery after a crash, when which addresses it got
    /// was never recorded).
    pub fn release_all(&self, owner: &str) -> Result<(), IpamError> {
        for (ip, holder) in self.list()? {
            if holder == owner {
                self.release(ip, owner)?;
            }
        }
        Ok(())
    }

    /// Every lease: address and holder.
    pub fn list(&self) -> Result<Vec<(IpAddr, String)>, IpamError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(IpamError::Read {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let Some(ip) = e
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<IpAddr>().ok())
            else {
                continue;
            };
            if let Ok(text) = fs::read_to_string(e.path()) {
                out.push((ip, lease_owner(&text).to_string()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes the whole directory (the network is gone).
    pub fn remove_all(&self) -> Result<(), IpamError> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(IpamError::Remove {
                path: self.dir.clone(),
                source,
            }),
        }
    }
}

fn lease_owner(text: &str) -> &str {
    text.lines().next().unwrap_or_default().trim()
}

fn remove(path: &Path) -> Result<(), IpamError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(IpamError::Remove {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool4(subnet: &str) -> Pool {
        let s: Ipv4Net = subnet.parse().unwrap();
        Pool::v4(s, Ipv4Addr::from(u32::from(s.network()) + 1), None)
    }

    #[test]
    fn addresses_are_handed_out_round_robin_skipping_the_gateway() {
        let d = tempfile::tempdir().unwrap();
        let l = Leases::new(d.path(), "n");
        let p = pool4("10.1.2.0/29");
        let got: Vec<String> = (0..5)
            .map(|i| {
                l.allocate(&p, &format!("c{i}"), "eth0")
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            got,
            ["10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"]
        );
        assert!(matches!(
            l.allocate(&p, "c9", "eth0"),
            Err(IpamError::Exhausted { .. })
        ));
        l.release("10.1.2.3".parse().unwrap(), "c1").unwrap();
        assert_eq!(
            l.allocate(&p, "c10", "eth0").unwrap().to_string(),
            "10.1.2.3"
        );
    }

    #[test]
    fn release_only_touches_the_owners_leases() {
        let d = tempfile::tempdir().unwrap();
        let l = Leases::new(d.path(), "n");
        let p = pool4("10.1.3.0/24");
        let a = l.allocate(&p, "a", "eth0").unwrap();
        let b = l.allocate(&p, "b", "eth0").unwrap();
        l.release(a, "b").unwrap();
        assert_eq!(l.list().unwrap().len(), 2);
        l.release_all("a").unwrap();
        assert_eq!(l.list().unwrap(), [(b, "b".to_string())]);
        assert!(matches!(
            l.reserve(b, "c", "eth0"),
            Err(IpamError::InUse { .. })
        ));
    }

    #[test]
    fn concurrent_allocations_never_share_an_address() {
        let d = tempfile::tempdir().unwrap();
        let p = pool4("10.1.4.0/26");
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let l = Leases::new(d.path(), "n");
                std::thread::spawn(move || {
                    (0..7)
                        .map(|i| l.allocate(&p, &format!("t{t}-{i}"), "eth0").unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<IpAddr> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
        assert_eq!(n, 56);
    }

    #[test]
    fn ipv6_pools_exclude_the_subnet_router_address_and_the_gateway() {
        let s: Ipv6Net = "fd00:1:2:3::/64".parse().unwrap();
        let p = Pool::v6(s, "fd00:1:2:3::1".parse().unwrap());
        let d = tempfile::tempdir().unwrap();
        let l = Leases::new(d.path(), "n");
        assert_eq!(
            l.allocate(&p, "a", "eth0").unwrap().to_string(),
            "fd00:1:2:3::2"
        );
        assert!(!p.allows("fd00:1:2:3::".parse().unwrap()));
        assert!(!p.allows("fd00:1:2:3::1".parse().unwrap()));
        assert!(p.allows("fd00:1:2:3::99".parse().unwrap()));
        assert!(!p.allows("fd00:1:2:4::99".parse().unwrap()));
    }
}
