//! Network records under `<root>/networks/`: create, list, inspect, remove, prune, and the
//! default `bridge` network made on first use.
//!
//! Layout: `nets/<name>.json` (one record per network), `endpoints/<container-id>.json` (what
//! each container is attached to, see `endpoint`), `ipam/` (host-local's leases), and `lock`,
//! held exclusive by every change to any of them so concurrent `berth` processes serialise.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use super::addressing;
use crate::lock::{FileLock, LockError};

/// The network containers join when no `--network` is given.
pub const DEFAULT_NETWORK: &str = "bridge";
/// Bridge device of the default network.
pub const DEFAULT_BRIDGE: &str = "berth0";
/// Subnet of the default network: private, and outside docker's (172.17/16, 172.18-31/16,
/// 192.168/16) and podman's (10.88/16, 10.89/16) defaults.
pub const DEFAULT_SUBNET: &str = "10.213.0.0/16";
/// Where subnets of user networks are picked from, one /24 each.
pub const USER_POOL: &str = "10.214.0.0/15";
/// Where IPv6 subnets of `--ipv6` networks are picked from, one /64 each: a unique local
/// prefix (RFC 4193) of berth's own.
pub const USER_POOL6: &str = "fd5b:e7a1:9c00::/48";
/// Names that are network modes, never networks.
const RESERVED: &[&str] = &["host", "none", "default"];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("creating directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parsing {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("removing {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid network name {name:?}: use letters, digits, '_', '.', '-', starting with a letter or digit")]
    InvalidName { name: String },
    #[error("network name {name:?} is reserved")]
    Reserved { name: String },
    #[error("network {name} already exists")]
    Exists { name: String },
    #[error("network {name} not found")]
    NotFound { name: String },
    #[error("network id prefix {prefix:?} is ambiguous")]
    Ambiguous { prefix: String },
    #[error("--gateway {gateway} is not inside --subnet {subnet}")]
    GatewayOutside { gateway: Ipv4Addr, subnet: Ipv4Net },
    #[error("--ip-range {range} is not inside --subnet {subnet}")]
    RangeOutside { range: Ipv4Net, subnet: Ipv4Net },
    #[error("--subnet {subnet} is too small for containers (at most /30)")]
    SubnetTooSmall { subnet: Ipv4Net },
    #[error("--subnet {subnet} overlaps network {other} ({other_subnet})")]
    Overlap {
        subnet: IpNet,
        other: String,
        other_subnet: IpNet,
    },
    #[error("--subnet {subnet} overlaps the host's route to {route} on {device}")]
    HostRoute {
        subnet: IpNet,
        route: IpNet,
        device: String,
    },
    #[error("--subnet {subnet} is too small for containers (at most /120)")]
    Subnet6TooSmall { subnet: Ipv6Net },
    #[error("--gateway {gateway} is not inside --subnet {subnet}")]
    Gateway6Outside { gateway: Ipv6Addr, subnet: Ipv6Net },
    #[error("--subnet {subnet} is IPv6: add --ipv6")]
    Ipv6NotEnabled { subnet: Ipv6Net },
    #[error("--ipv6 needs the native network backend (--network-backend cni is IPv4 only)")]
    Ipv6Backend,
    #[error("--subnet given twice for IPv{family}")]
    DuplicateSubnet { family: u8 },
    #[error("--gateway {gateway} has no --subnet of its address family")]
    GatewayWithoutSubnet { gateway: std::net::IpAddr },
    #[error("unknown network backend {name:?} (use native or cni)")]
    UnknownBackend { name: String },
    #[error("no free subnet left in {pool}")]
    PoolExhausted { pool: IpNet },
    #[error("{name} is a pre-defined network and cannot be removed")]
    Predefined { name: String },
    #[error("network {name} has active endpoints: {containers:?}")]
    InUse {
        name: String,
        containers: Vec<String>,
    },
    #[error("reading random bytes for a network id")]
    Random(#[source] io::Error),
    #[error("tearing down network {name}: {}", super::attach::join(.errors))]
    Teardown {
        name: String,
        errors: Vec<super::AttachError>,
    },
}

/// A network as `berth network inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    pub name: String,
    pub id: String,
    pub created: String,
    pub driver: String,
    /// The Linux bridge device the containers' veths are enslaved to.
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Ipv4Net>,
    /// No route out and no masquerade: containers reach only each other (and the gateway).
    pub internal: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Dual stack (`--ipv6`): the IPv6 subnet and gateway besides the IPv4 ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Config>,
    /// What wires containers to it.
    #[serde(default)]
    pub backend: Backend,
}

/// The IPv6 half of a dual-stack network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipv6Config {
    pub subnet: Ipv6Net,
    pub gateway: Ipv6Addr,
}

/// How containers are wired to a network (`network create --network-backend`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// In-process: netlink for links and addresses, the network's rules made once.
    #[default]
    Native,
    /// The standard CNI plugins (bridge, host-local, portmap, firewall), run per start.
    Cni,
}

impl std::str::FromStr for Backend {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "native" => Ok(Backend::Native),
            "cni" => Ok(Backend::Cni),
            other => Err(StoreError::UnknownBackend { name: other.into() }),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Native => "native",
            Backend::Cni => "cni",
        })
    }
}

impl Network {
    /// Whether containers on it resolve each other by name (every network but the default one,
    /// as in docker).
    pub fn resolves_names(&self) -> bool {
        self.name != DEFAULT_NETWORK
    }
}

/// Options of `berth network create`; all optional.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Ipv4Net>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// Dual stack; the IPv6 subnet is picked from [`USER_POOL6`] when `subnet6` is `None`.
    pub ipv6: bool,
    pub subnet6: Option<Ipv6Net>,
    pub gateway6: Option<Ipv6Addr>,
    pub backend: Backend,
}

impl CreateOptions {
    /// Sorts `--subnet` and `--gateway` values (docker's flags take either family, each at
    /// most once per family) into the typed fields.
    pub fn set_addresses(
        &mut self,
        subnets: &[IpNet],
        gateways: &[std::net::IpAddr],
    ) -> Result<(), StoreError> {
        for s in subnets {
            match s {
                IpNet::V4(n) if self.subnet.is_none() => self.subnet = Some(*n),
                IpNet::V6(n) if self.subnet6.is_none() => self.subnet6 = Some(*n),
                IpNet::V4(_) => return Err(StoreError::DuplicateSubnet { family: 4 }),
                IpNet::V6(_) => return Err(StoreError::DuplicateSubnet { family: 6 }),
            }
        }
        for g in gateways {
            match g {
                std::net::IpAddr::V4(a) => self.gateway = Some(*a),
                std::net::IpAddr::V6(a) => self.gateway6 = Some(*a),
            }
        }
        Ok(())
    }
}

/// The network records of one storage root.
#[derive(Debug, Clone)]
pub struct NetworkStore {
    dir: PathBuf,
    run_dir: PathBuf,
    /// The program run as `<program> --root <root> __dns <network>` for a network's embedded
    /// DNS resolver: berth itself; `None` turns the resolvers off (library tests).
    resolver: Option<PathBuf>,
}

impl NetworkStore {
    /// Opens (creating if needed) the records under `<root>/networks/`; namespaces and other
    /// state lost at reboot go under `run_dir`.
    pub fn open(root: &Path, run_dir: &Path) -> Result<Self, StoreError> {
        let dir = root.join("networks");
        for d in [
            dir.join("nets"),
            dir.join("endpoints"),
            dir.join("ipam"),
            dir.join("locks"),
        ] {
            fs::create_dir_all(&d).map_err(|source| StoreError::CreateDir { path: d, source })?;
        }
        Ok(Self {
            dir,
            run_dir: run_dir.to_path_buf(),
            resolver: std::env::current_exe().ok(),
        })
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The resolver program (see the field); `None` when name resolution is off.
    pub fn resolver_program(&self) -> Option<&Path> {
        self.resolver.as_deref()
    }

    /// Replaces the resolver program; `None` turns the embedded DNS off.
    pub fn set_resolver_program(&mut self, program: Option<PathBuf>) {
        self.resolver = program;
    }

    /// host-local's `dataDir` for `net`: the leases of user networks live under the berth
    /// root, so they are this store's alone. The default network's bridge (`berth0`) is one
    /// per host whatever the root, so its leases are host-wide too (in berth's host directory,
    /// next to the host lock): two roots on one host must not hand out the same address.
    pub fn ipam_dir(&self, net: &Network) -> PathBuf {
        if net.name == DEFAULT_NETWORK && net.bridge == DEFAULT_BRIDGE {
            super::firewall::host_dir().join("ipam")
        } else {
            self.dir.join("ipam")
        }
    }

    /// The leases directory of this root's own networks.
    pub(crate) fn ipam_dir_of_root(&self) -> PathBuf {
        self.dir.join("ipam")
    }

    pub(crate) fn endpoints_dir(&self) -> PathBuf {
        self.dir.join("endpoints")
    }

    /// The store-wide lock held while network records are made and removed.
    pub fn lock(&self) -> Result<FileLock, StoreError> {
        Ok(FileLock::exclusive(&self.dir.join("lock"))?)
    }

    /// The lock of one network: shared by every attach to it (they run side by side),
    /// exclusive by its removal, so a network is never removed under a container joining it.
    pub(crate) fn network_lock(&self, name: &str, exclusive: bool) -> Result<FileLock, StoreError> {
        let path = self.dir.join("locks").join(format!("{name}.lock"));
        Ok(if exclusive {
            FileLock::exclusive(&path)?
        } else {
            FileLock::shared(&path)?
        })
    }

    /// The lock file of one container's endpoint record, held by whoever changes it; recovery
    /// skips records whose lock is held (their owner is alive and working).
    pub(crate) fn endpoint_lock_path(&self, container_id: &str) -> PathBuf {
        self.dir
            .join("endpoints")
            .join(format!("{container_id}.lock"))
    }

    /// Where the embedded DNS resolvers of this store's networks keep their lock, pid and log.
    pub(crate) fn dns_dir(&self) -> PathBuf {
        self.dir.join("dns")
    }

    /// The storage root this store belongs to.
    pub fn root(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.dir.join("nets").join(format!("{name}.json"))
    }

    /// Creates a user network; the subnet is picked from [`USER_POOL`] when not given.
    pub fn create(&self, name: &str, opts: &CreateOptions) -> Result<Network, StoreError> {
        validate_name(name)?;
        if name == DEFAULT_NETWORK || RESERVED.contains(&name) {
            return Err(StoreError::Reserved { name: name.into() });
        }
        let _lock = self.lock()?;
        self.create_locked(name, opts, None)
    }

    fn create_locked(
        &self,
        name: &str,
        opts: &CreateOptions,
        bridge: Option<&str>,
    ) -> Result<Network, StoreError> {
        let path = self.record_path(name);
        if path.exists() {
            return Err(StoreError::Exists { name: name.into() });
        }
        let existing = self.list_unlocked()?;
        let a = addressing::choose(opts, &existing, bridge)?;
        let id = random_id()?;
        let bridge = bridge.map_or_else(|| format!("berth{}", &id[..10]), str::to_string);
        let net = Network {
            name: name.into(),
            id,
            created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            driver: "bridge".into(),
            bridge,
            subnet: a.subnet,
            gateway: a.gateway,
            ip_range: a.ip_range,
            internal: opts.internal,
            labels: opts.labels.clone(),
            ipv6: a.ipv6,
            backend: opts.backend,
        };
        write_json(&path, &net)?;
        Ok(net)
    }

    /// The default network, created on first use.
    pub fn default_network(&self) -> Result<Network, StoreError> {
        if let Ok(n) = self.read(&self.record_path(DEFAULT_NETWORK)) {
            return Ok(n);
        }
        let _lock = self.lock()?;
        self.inspect_locked(DEFAULT_NETWORK)
    }

    /// Every network, sorted by name.
    pub fn list(&self) -> Result<Vec<Network>, StoreError> {
        self.list_unlocked()
    }

    fn list_unlocked(&self) -> Result<Vec<Network>, StoreError> {
        let dir = self.dir.join("nets");
        let entries = fs::read_dir(&dir).map_err(|source| StoreError::Read {
            path: dir.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(|source| StoreError::Read {
                path: dir.clone(),
                source,
            })?;
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                out.push(self.read(&p)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A network by name, full id or unique id prefix; `bridge` is created on first use.
    pub fn inspect(&self, name_or_id: &str) -> Result<Network, StoreError> {
        if name_or_id == DEFAULT_NETWORK {
            return self.default_network();
        }
        self.find(name_or_id)
    }

    /// [`inspect`](Self::inspect) for callers already holding [`lock`](Self::lock): flock
    /// locks belong to open files, so taking it again from the same process would wait on
    /// ourselves.
    pub(crate) fn inspect_locked(&self, name_or_id: &str) -> Result<Network, StoreError> {
        if name_or_id == DEFAULT_NETWORK {
            return match self.read(&self.record_path(DEFAULT_NETWORK)) {
                Ok(n) => Ok(n),
                Err(_) => self.create_default_locked(),
            };
        }
        self.find(name_or_id)
    }

    fn create_default_locked(&self) -> Result<Network, StoreError> {
        let opts = CreateOptions {
            subnet: DEFAULT_SUBNET.parse().ok(),
            ..CreateOptions::default()
        };
        self.create_locked(DEFAULT_NETWORK, &opts, Some(DEFAULT_BRIDGE))
    }

    /// The network named exactly `name` (one record read, no listing).
    pub fn get(&self, name: &str) -> Result<Network, StoreError> {
        match self.read(&self.record_path(name)) {
            Err(StoreError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::NotFound { name: name.into() })
            }
            r => r,
        }
    }

    fn find(&self, name_or_id: &str) -> Result<Network, StoreError> {
        if validate_name(name_or_id).is_ok() {
            if let Ok(n) = self.get(name_or_id) {
                return Ok(n);
            }
        }
        let nets = self.list_unlocked()?;
        if let Some(n) = nets
            .iter()
            .find(|n| n.name == name_or_id || n.id == name_or_id)
        {
            return Ok(n.clone());
        }
        let mut by_prefix = nets
            .into_iter()
            .filter(|n| !name_or_id.is_empty() && n.id.starts_with(name_or_id));
        match (by_prefix.next(), by_prefix.next()) {
            (Some(n), None) => Ok(n),
            (Some(_), Some(_)) => Err(StoreError::Ambiguous {
                prefix: name_or_id.into(),
            }),
            _ => Err(StoreError::NotFound {
                name: name_or_id.into(),
            }),
        }
    }

    /// Removes a network no container is attached to, with everything it has on the host
    /// (its resolver, bridge, rules and leases).
    pub fn remove(&self, name_or_id: &str) -> Result<Network, StoreError> {
        let _lock = self.lock()?;
        let net = self.inspect_existing(name_or_id)?;
        if net.name == DEFAULT_NETWORK {
            return Err(StoreError::Predefined { name: net.name });
        }
        let _net_lock = self.network_lock(&net.name, true)?;
        let users = self.users_locked(&net.name)?;
        if !users.is_empty() {
            return Err(StoreError::InUse {
                name: net.name,
                containers: users,
            });
        }
        self.remove_unused(&net)?;
        Ok(net)
    }

    /// Removes every user network without containers; returns their names.
    pub fn prune(&self) -> Result<Vec<String>, StoreError> {
        let _lock = self.lock()?;
        let mut removed = Vec::new();
        for net in self.list_unlocked()? {
            if net.name == DEFAULT_NETWORK {
                continue;
            }
            let _net_lock = self.network_lock(&net.name, true)?;
            if self.users_locked(&net.name)?.is_empty() {
                self.remove_unused(&net)?;
                removed.push(net.name);
            }
        }
        Ok(removed)
    }

    /// Tears down what `net` has on the host, then deletes its record; with the network's
    /// lock held and no endpoint left. On failure the record stays, so `rm` can be retried.
    fn remove_unused(&self, net: &Network) -> Result<(), StoreError> {
        let errors = super::attach::teardown_network(self, net);
        if !errors.is_empty() {
            return Err(StoreError::Teardown {
                name: net.name.clone(),
                errors,
            });
        }
        self.delete_record(net)?;
        let _ = fs::remove_file(self.dir.join("locks").join(format!("{}.lock", net.name)));
        Ok(())
    }

    /// Like [`inspect`](Self::inspect) but never creates the default network.
    fn inspect_existing(&self, name_or_id: &str) -> Result<Network, StoreError> {
        if name_or_id == DEFAULT_NETWORK {
            return self.read(&self.record_path(DEFAULT_NETWORK)).map_err(|_| {
                StoreError::NotFound {
                    name: name_or_id.into(),
                }
            });
        }
        self.find(name_or_id)
    }

    fn delete_record(&self, net: &Network) -> Result<(), StoreError> {
        let path = self.record_path(&net.name);
        fs::remove_file(&path).map_err(|source| StoreError::Remove { path, source })?;
        // host-local keeps a directory per network name (lock and last-reserved marker).
        if self.ipam_dir(net) != self.ipam_dir_of_root() {
            return Ok(());
        }
        let ipam = self.ipam_dir(net).join(&net.name);
        match fs::remove_dir_all(&ipam) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Remove { path: ipam, source }),
        }
    }

    /// Ids of the containers with an endpoint record on `network`, sorted.
    pub fn users(&self, network: &str) -> Result<Vec<String>, StoreError> {
        self.users_locked(network)
    }

    fn users_locked(&self, network: &str) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = super::endpoint::load_all(self)?
            .into_iter()
            .filter(|e| e.networks.iter().any(|a| a.network == network))
            .map(|e| e.container_id)
            .collect();
        out.sort();
        Ok(out)
    }

    fn read(&self, path: &Path) -> Result<Network, StoreError> {
        read_json(path)
    }
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, StoreError> {
    let mut text = String::new();
    fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|source| StoreError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    serde_json::from_str(&text).map_err(|source| StoreError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes through a temp file and rename, so a crash leaves the old record or the new one;
/// synced to disk, for records that must outlive a reboot.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    write_json_with(path, value, true)
}

/// [`write_json`] without the sync, for records of state a reboot ends anyway (endpoints:
/// their namespaces, links and leases go with it); rename still makes the update atomic.
pub(crate) fn write_json_volatile<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    write_json_with(path, value, false)
}

fn write_json_with<T: Serialize>(path: &Path, value: &T, sync: bool) -> Result<(), StoreError> {
    let tmp = path.with_extension("json.tmp");
    let err = |source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_json::to_vec_pretty(value).map_err(|e| err(e.into()))?;
    let mut f = fs::File::create(&tmp).map_err(err)?;
    f.write_all(&text)
        .and_then(|()| if sync { f.sync_all() } else { Ok(()) })
        .map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

fn validate_name(name: &str) -> Result<(), StoreError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName { name: name.into() })
    }
}

fn random_id() -> Result<String, StoreError> {
    let mut buf = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(StoreError::Random)?;
    Ok(hex::encode(buf))
}

#[cfg(test)]
mod tests {
    use super::addressing::first_host;
    use super::*;

    fn store() -> (tempfile::TempDir, NetworkStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = NetworkStore::open(&dir.path().join("root"), &dir.path().join("run")).unwrap();
        (dir, s)
    }

    #[test]
    fn create_picks_distinct_subnets_and_gateways_from_the_pool() {
        let (_d, s) = store();
        let a = s.create("a", &CreateOptions::default()).unwrap();
        let b = s.create("b", &CreateOptions::default()).unwrap();
        assert_ne!(a.subnet, b.subnet);
        assert_eq!(a.gateway, first_host(a.subnet));
        assert!(a.bridge.len() <= 15, "{}", a.bridge);
        assert_ne!(a.bridge, b.bridge);
    }

    #[test]
    fn create_rejects_bad_names_duplicates_overlaps_and_stray_gateways() {
        let (_d, s) = store();
        let opts = |subnet: &str| CreateOptions {
            subnet: Some(subnet.parse().unwrap()),
            ..CreateOptions::default()
        };
        s.create("n1", &opts("10.99.1.0/24")).unwrap();
        assert!(matches!(
            s.create("-x", &opts("10.99.2.0/24")),
            Err(StoreError::InvalidName { .. })
        ));
        assert!(matches!(
            s.create("host", &opts("10.99.2.0/24")),
            Err(StoreError::Reserved { .. })
        ));
        assert!(matches!(
            s.create("n1", &opts("10.99.2.0/24")),
            Err(StoreError::Exists { .. })
        ));
        assert!(matches!(
            s.create("n2", &opts("10.99.0.0/16")),
            Err(StoreError::Overlap { .. })
        ));
        let bad_gw = CreateOptions {
            gateway: Some("10.98.0.1".parse().unwrap()),
            ..opts("10.99.3.0/24")
        };
        assert!(matches!(
            s.create("n3", &bad_gw),
            Err(StoreError::GatewayOutside { .. })
        ));
        let bad_range = CreateOptions {
            ip_range: Some("10.98.0.0/28".parse().unwrap()),
            ..opts("10.99.3.0/24")
        };
        assert!(matches!(
            s.create("n3", &bad_range),
            Err(StoreError::RangeOutside { .. })
        ));
    }

    #[test]
    fn default_network_is_made_once_and_cannot_be_removed() {
        let (_d, s) = store();
        assert!(s.list().unwrap().is_empty());
        let d = s.inspect(DEFAULT_NETWORK).unwrap();
        assert_eq!(d.bridge, DEFAULT_BRIDGE);
        assert_eq!(s.default_network().unwrap(), d);
        assert!(matches!(
            s.remove(DEFAULT_NETWORK),
            Err(StoreError::Predefined { .. })
        ));
        assert!(!s.prune().unwrap().contains(&DEFAULT_NETWORK.to_string()));
    }

    #[test]
    fn inspect_finds_by_name_id_and_prefix_and_remove_deletes() {
        let (_d, s) = store();
        let n = s.create("findme", &CreateOptions::default()).unwrap();
        assert_eq!(s.inspect(&n.id).unwrap(), n);
        assert_eq!(s.inspect(&n.id[..12]).unwrap(), n);
        assert!(matches!(
            s.inspect("nope"),
            Err(StoreError::NotFound { .. })
        ));
        s.remove("findme").unwrap();
        assert!(matches!(
            s.inspect("findme"),
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(s.prune().unwrap(), Vec::<String>::new());
    }
}
