//! Helpers for the networking tests of `berth`: unique subnets, `network` output parsed, and
//! probes of what is left on the host (links, iptables rules, mounts).

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};
use serde_json::Value;

use super::berth::Berth;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A /24 in 10.219.0.0/16 no other test of this process uses and no route of the host covers
/// (another test process's bridge): tests run in parallel and subnets must not overlap. The
/// pid spreads concurrent processes over the range.
pub fn unique_subnet() -> String {
    let routed = routed_third_octets();
    let mut n = 0;
    for _ in 0..256 {
        n = (std::process::id() * 13 + NEXT.fetch_add(1, Ordering::SeqCst)) % 256;
        if !routed.contains(&n) {
            break;
        }
    }
    format!("10.219.{n}.0/24")
}

/// Third octets of the 10.219.x.0/24 networks the host routes (/proc/net/route holds the
/// destination as a little-endian hex word).
fn routed_third_octets() -> Vec<u32> {
    std::fs::read_to_string("/proc/net/route")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let dest = u32::from_str_radix(l.split_whitespace().nth(1)?, 16).ok()?;
            let [a, b, c, _] = dest.to_le_bytes();
            (a == 10 && b == 219).then_some(u32::from(c))
        })
        .collect()
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
/// Why tests of user networks' host links are skipped in the rootless pass
/// (BERTH_TEST_ROOTLESS).
pub const ROOTLESS_NETWORKS: &str =
    "a rootless berth's bridges and veths are in its rootless network namespace, not on the host";

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

/// The interfaces enslaved to `bridge` (sysfs lists them under `brif/`).
pub fn bridge_ports(bridge: &str) -> Vec<String> {
    std::fs::read_dir(
        std::path::Path::new("/sys/class/net")
            .join(bridge)
            .join("brif"),
    )
    .map(|rd| {
        rd.flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    })
    .unwrap_or_default()
}

/// Polls `done` every 20 ms until it holds or `limit` passes.
pub fn wait_until(limit: std::time::Duration, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "not done within {limit:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(())
}

/// The embedded DNS resolvers (`berth --root ROOT __dns NETWORK`) running for a storage root:
/// (pid, network).
pub fn resolvers_of(root: &std::path::Path) -> Vec<(i32, String)> {
    let root = root.to_string_lossy().into_owned();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<String> = cmd
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let at = args.iter().position(|a| a == "__dns")?;
            let ours = args.windows(2).any(|w| w[0] == "--root" && w[1] == root);
            ours.then(|| (pid, args.get(at + 1).cloned().unwrap_or_default()))
        })
        .collect()
}

/// The pid of the resolver of `network` under `root`, waiting up to 5 s for it.
pub fn resolver_pid(root: &std::path::Path, network: &str) -> Result<i32> {
    let mut pid = None;
    wait_until(std::time::Duration::from_secs(5), || {
        pid = resolvers_of(root)
            .into_iter()
            .find(|(_, n)| n == network)
            .map(|(p, _)| p);
        pid.is_some()
    })
    .with_context(|| format!("no resolver for {network}"))?;
    pid.context("no resolver")
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

/// A `berth` with the busybox test image loaded as [`BUSYBOX`] (through an oci-archive made by
/// skopeo from a layout built here).
pub fn berth_with_busybox() -> Result<Berth> {
    use super::images::{compress, Blob, Built, Compression, Layout, OCI_CONFIG, OCI_MANIFEST};
    let berth = Berth::new()?;
    let dir = berth
        .root()
        .parent()
        .context("berth root has a parent")?
        .join("image");
    let mut layout = Layout::create(&dir.join("layout"))?;
    // Built by hand rather than with Layout::image for the config: EXPOSE 80 (for -P).
    let rootfs = busybox_rootfs()?;
    let layer = layout.blob(
        &compress(&rootfs, Compression::Gzip)?,
        "application/vnd.oci.image.layer.v1.tar+gzip",
    )?;
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "ExposedPorts": {"80/tcp": {}}},
        "rootfs": {"type": "layers", "diff_ids": [super::sha256(&rootfs)]},
    });
    let config = layout.blob(&serde_json::to_vec(&config)?, OCI_CONFIG)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
    });
    let manifest: Blob = layout.blob(&serde_json::to_vec(&manifest)?, OCI_MANIFEST)?;
    let built = Built {
        manifest,
        config: Some(config),
        layers: vec![layer],
    };
    layout.tag("net", &built)?;
    let tar = dir.join("busybox.tar");
    super::skopeo(&[
        "copy",
        "--quiet",
        &format!("oci:{}:net", layout.dir().display()),
        &format!("oci-archive:{}:{BUSYBOX}", tar.display()),
    ])?;
    berth.ok(&["load", "-i", &tar.to_string_lossy()])?;
    Ok(berth)
}

/// A busybox rootfs layer with complete ustar headers (owner root, mtime set) and the applets
/// the networking tests call by name.
fn busybox_rootfs() -> Result<Vec<u8>> {
    let busybox = std::fs::read("/bin/busybox").context("reading /bin/busybox (busybox-static)")?;
    let mut b = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h
    };
    for dir in ["bin", "etc", "tmp"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, dir, &[][..])?;
    }
    let mut h = header(tar::EntryType::Regular, 0o755, busybox.len() as u64);
    b.append_data(&mut h, "bin/busybox", &busybox[..])?;
    for applet in [
        "sh", "cat", "echo", "sleep", "mkdir", "ip", "ping", "ping6", "wget", "nslookup",
    ] {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")?;
    }
    for (path, text) in [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("etc/group", "root:x:0:\n"),
    ] {
        let mut h = header(tar::EntryType::Regular, 0o644, text.len() as u64);
        b.append_data(&mut h, path, text.as_bytes())?;
    }
    Ok(b.into_inner()?)
}

/// The image [`berth_with_busybox`] loads.
pub const BUSYBOX: &str = "localhost/berth-test/busybox:net";

/// Containers and networks of one test, removed on drop (`rm -f`, `network rm`) even when the
/// test fails; `check_clean` then proves nothing of them is left on the host.
pub struct Scope<'a> {
    pub berth: &'a Berth,
    containers: Vec<String>,
    networks: Vec<String>,
    bridges: Vec<String>,
}

impl<'a> Scope<'a> {
    pub fn new(berth: &'a Berth) -> Self {
        Self {
            berth,
            containers: Vec::new(),
            networks: Vec::new(),
            bridges: Vec::new(),
        }
    }

    /// `network create` with a unique subnet; returns (name, subnet's first three octets).
    pub fn network(&mut self, prefix: &str, extra: &[&str]) -> Result<(String, String)> {
        let name = unique_name(prefix);
        let subnet = unique_subnet();
        let mut args = vec!["network", "create", "--subnet", &subnet];
        args.extend_from_slice(extra);
        args.push(&name);
        self.berth.ok(&args)?;
        self.networks.push(name.clone());
        if let Some(b) = inspect(self.berth, &name)?["Options"]["berth.bridge"].as_str() {
            self.bridges.push(b.to_string());
        }
        Ok((name, subnet.trim_end_matches(".0/24").to_string()))
    }

    /// Registers a container started by the test itself, so it is removed with the scope.
    pub fn adopt(&mut self, name: &str) {
        self.containers.push(name.to_string());
    }

    /// `run -d` a container named `name`; returns its id.
    pub fn run_detached(&mut self, name: &str, args: &[&str]) -> Result<String> {
        let mut full = vec!["run", "-d", "--name", name];
        full.extend_from_slice(args);
        self.containers.push(name.to_string());
        Ok(self.berth.ok(&full)?.trim().to_string())
    }

    /// A detached busybox httpd serving `body` on port 80.
    pub fn web(&mut self, name: &str, net_args: &[&str], body: &str) -> Result<String> {
        let script = format!(
            "mkdir -p /www && echo {body} > /www/index.html && exec busybox httpd -f -p 80 -h /www"
        );
        let mut args: Vec<&str> = net_args.to_vec();
        args.extend([BUSYBOX, "sh", "-c", &script]);
        let id = self.run_detached(name, &args)?;
        // Up when it answers from inside.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let out = self.berth.run(&[
                "exec",
                name,
                "busybox",
                "wget",
                "-q",
                "-O",
                "/dev/null",
                "http://127.0.0.1/",
            ])?;
            if out.status.success() {
                return Ok(id);
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!(
                    "httpd in {name} did not come up: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The container's address on `network` (from `inspect`).
    pub fn ip(&self, container: &str, network: &str) -> Result<String> {
        let out = self.berth.ok(&["inspect", container])?;
        let v: Value = serde_json::from_str(&out)?;
        v[0]["NetworkSettings"]["Networks"][network]["IPAddress"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no address of {container} on {network}: {out}"))
    }

    /// Removes everything and checks nothing is left: the networks' bridges, the containers'
    /// veths, iptables rules naming either, the containers' namespaces, the networks' leases,
    /// and their DNS resolvers (processes and files).
    pub fn check_clean(mut self) -> Result<()> {
        // The containers' veths are the bridges' ports; they go with the containers'
        // namespaces, which the kernel destroys asynchronously.
        let veths: Vec<String> = self.bridges.iter().flat_map(|b| bridge_ports(b)).collect();
        let ids = self.remove_all();
        let bridges = self.bridges.clone();
        for b in &bridges {
            anyhow::ensure!(!link_exists(b), "bridge {b} left");
            let rules = rules_mentioning(&format!("berth:{b}"));
            anyhow::ensure!(rules.is_empty(), "rules of {b} left: {rules:?}");
        }
        wait_until(std::time::Duration::from_secs(10), || {
            veths.iter().all(|v| !link_exists(v))
        })
        .with_context(|| format!("veths left: {veths:?}"))?;
        let resolvers = resolvers_of(&self.berth.root());
        anyhow::ensure!(resolvers.is_empty(), "resolvers left: {resolvers:?}");
        let dns = super::files_under(&self.berth.root().join("networks/dns"));
        anyhow::ensure!(dns.is_empty(), "resolver files left: {dns:?}");
        for id in &ids {
            let rules = rules_mentioning(id);
            anyhow::ensure!(rules.is_empty(), "rules of {id} left: {rules:?}");
            let ns = std::path::Path::new("/run/berth/netns").join(id);
            anyhow::ensure!(!ns.exists(), "netns {} left", ns.display());
        }
        let leases = self.berth.root().join("networks/ipam");
        let left = super::files_under(&leases);
        anyhow::ensure!(left.is_empty(), "leases left: {left:?}");
        let endpoints = super::files_under(&self.berth.root().join("networks/endpoints"));
        anyhow::ensure!(endpoints.is_empty(), "endpoint records left: {endpoints:?}");
        if let Some(u) = self.berth.user() {
            // Rootless: the rootless network namespace (its pause process, keeper,
            // slirp4netns and resolvers) went with the last container.
            wait_until(std::time::Duration::from_secs(10), || u.pids().is_empty())
                .with_context(|| format!("processes of the user left: {:?}", u.pids()))?;
            let ns = u.runtime_dir.join("berth/rootless-netns");
            anyhow::ensure!(!ns.exists(), "{} left", ns.display());
        }
        Ok(())
    }

    /// `rm -f` every container, `network rm` every network; returns the container ids.
    fn remove_all(&mut self) -> Vec<String> {
        let mut ids = Vec::new();
        for c in self.containers.drain(..) {
            if let Ok(out) = self.berth.ok(&["inspect", "-f", "{{.Id}}", &c]) {
                ids.push(out.trim().to_string());
            }
            let _ = self.berth.run(&["rm", "-f", &c]);
        }
        for n in self.networks.drain(..) {
            let _ = self.berth.run(&["network", "rm", &n]);
        }
        ids
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        self.remove_all();
    }
}

/// A stand-in for the world outside the host, made only of things the test owns: a process in
/// a network namespace of its own, behind a veth whose host end is the route to it. Nothing
/// is mounted (the namespace lives as long as the process); dropped, it kills the process by
/// pid, which takes the veth pair with it.
pub struct Outside {
    child: std::process::Child,
    dns: Option<std::process::Child>,
    host_end: String,
    /// The outside address containers try to reach.
    pub addr: String,
}

impl Outside {
    pub fn new() -> Result<Self> {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let octet = (std::process::id() * 13 + n) % 256;
        let child = Command::new("unshare")
            .args(["--net", "sleep", "600"])
            .spawn()
            .context("starting the outside namespace")?;
        let host_end = format!("bo{}x{n}", std::process::id() % 100_000);
        let me = Self {
            child,
            dns: None,
            host_end,
            addr: format!("10.218.{octet}.2"),
        };
        let pid = me.child.id();
        // unshare(1) unshares before exec'ing sleep; wait until the process is in a new netns.
        let host_ns = std::fs::read_link("/proc/self/ns/net")?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_link(format!("/proc/{pid}/ns/net")).ok() == Some(host_ns.clone()) {
            anyhow::ensure!(std::time::Instant::now() < deadline, "unshare did not");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let script = format!(
            "ip link add {h} type veth peer name out0 netns {pid} && \
             ip addr add 10.218.{octet}.1/30 dev {h} && ip link set {h} up && \
             nsenter --net=/proc/{pid}/ns/net sh -c 'ip addr add {a}/30 dev out0 && \
             ip link set out0 up && ip link set lo up && ip route add default via 10.218.{octet}.1'",
            h = me.host_end,
            a = me.addr,
        );
        super::run(Command::new("sh").args(["-c", &script]))?;
        Ok(me)
    }
}

impl Outside {
    /// Serves DNS on the outside address (port 53) with dnsmasq, answering `name` with `ip`
    /// and nothing else (no upstream, no hosts file): a stand-in for the world's resolvers.
    pub fn serve_dns(&mut self, name: &str, ip: &str) -> Result<()> {
        let pid = self.child.id();
        let server = Command::new("nsenter")
            .arg(format!("--net=/proc/{pid}/ns/net"))
            .args([
                "dnsmasq",
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--port=53",
                "--user=root",
                "--pid-file=",
                &format!("--listen-address={}", self.addr),
                &format!("--address=/{name}/{ip}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting dnsmasq (package dnsmasq-base)")?;
        self.dns = Some(server);
        // Up when it answers.
        let addr = self.addr.clone();
        wait_until(std::time::Duration::from_secs(5), || {
            Command::new("nsenter")
                .arg(format!("--net=/proc/{pid}/ns/net"))
                .args(["busybox", "nslookup", "-type=a", name, &addr])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .context("dnsmasq did not answer")
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        if let Some(d) = self.dns.as_mut() {
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_end])
            .output();
    }
}
