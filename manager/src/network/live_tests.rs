//! Networking against the real kernel (and, for the CNI backend, the real plugins): namespaces
//! made by `Netns`, attached with `attach`, probed with busybox inside them. Run as root (the
//! suite's normal setting); every test uses its own store, run dir, networks, subnets and
//! container ids, and a guard that detaches, unmounts and removes everything even when an
//! assertion fails. The embedded DNS needs the berth binary: spec-tests cover it.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::endpoint;
use super::etc::EtcConfig;
use super::firewall;
use super::store::Backend;
use super::*;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique() -> u32 {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// A /26 of 10.216.0.0/16 no other test of this process uses; the pid spreads concurrent runs
/// (other worktrees run this suite at the same time) over the 1024 of them.
fn subnet() -> ipnet::Ipv4Net {
    let k = (std::process::id().wrapping_mul(37) + unique()) % 1024;
    let base = u32::from(Ipv4Addr::new(10, 216, 0, 0)) + k * 64;
    ipnet::Ipv4Net::new(Ipv4Addr::from(base), 26).unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
    store: NetworkStore,
    tag: String,
    containers: Vec<String>,
    networks: Vec<String>,
    children: Vec<Child>,
    links: Vec<String>,
    extra_netns: Vec<PathBuf>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            NetworkStore::open(&dir.path().join("root"), &dir.path().join("run")).unwrap();
        store.set_resolver_program(None);
        Self {
            dir,
            store,
            tag: format!("t{}x{}", std::process::id(), unique()),
            containers: Vec::new(),
            networks: Vec::new(),
            children: Vec::new(),
            links: Vec::new(),
            extra_netns: Vec::new(),
        }
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn network(&mut self, suffix: &str, internal: bool) -> Network {
        self.network_with(
            suffix,
            CreateOptions {
                subnet: Some(subnet()),
                internal,
                ..CreateOptions::default()
            },
        )
    }

    fn network_with(&mut self, suffix: &str, opts: CreateOptions) -> Network {
        let net = self
            .store
            .create(&format!("{}-{suffix}", self.tag), &opts)
            .unwrap();
        self.networks.push(net.name.clone());
        net
    }

    /// A namespace for a "container" (registered for cleanup) and its etc config.
    fn container(&mut self, name: &str) -> (String, PathBuf, EtcConfig) {
        let id = format!("{}-{name}", self.tag);
        self.containers.push(id.clone());
        let ns = Netns::create(&self.run_dir(), &id).unwrap();
        let etc = EtcConfig {
            dir: self.dir.path().join("etc").join(&id),
            hostname: name.into(),
            ..EtcConfig::default()
        };
        (id, ns, etc)
    }

    fn attach(
        &mut self,
        name: &str,
        requests: &[Request],
        ports: &[PortMapping],
    ) -> (String, PathBuf, EtcConfig, Vec<Attachment>) {
        let (id, ns, etc) = self.container(name);
        let ep = Endpoint {
            container_id: &id,
            container_name: name,
            netns: &ns,
            etc: Some(&etc),
        };
        let atts = attach(&self.store, &ep, requests, ports).unwrap();
        (id, ns, etc, atts)
    }

    /// busybox httpd serving `body` on port 80 inside `ns`.
    fn httpd(&mut self, ns: &Path, body: &str) {
        let www = self.dir.path().join(format!("www{}", unique()));
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("index.html"), body).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net={}", ns.display()))
            .args(["busybox", "httpd", "-f", "-p", "80", "-h"])
            .arg(&www)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(child);
        // Ready when the port accepts (probed from inside the namespace).
        let deadline = Instant::now() + Duration::from_secs(5);
        let probe = [
            "busybox",
            "wget",
            "-q",
            "-O",
            "/dev/null",
            "http://127.0.0.1/",
        ];
        while !in_ns(ns, &probe).status.success() {
            assert!(Instant::now() < deadline, "httpd did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Fixture {
    /// Ends the processes the test started in namespaces (a namespace, and the veths in it,
    /// lives as long as any process is in it).
    fn stop_children(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stop_children();
        for id in &self.containers {
            if let Err(e) = detach(&self.store, id, None) {
                eprintln!("cleanup: detaching {id}: {e}");
            }
            let _ = Netns::remove(&self.run_dir(), id);
        }
        for n in &self.networks {
            if let Err(e) = self.store.remove(n) {
                if !matches!(e, StoreError::NotFound { .. }) {
                    eprintln!("cleanup: removing network {n}: {e}");
                }
            }
        }
        for ns in &self.extra_netns {
            let _ = netns::remove_path(ns);
        }
        for l in &self.links {
            let _ = Command::new("ip").args(["link", "del", l]).status();
        }
        let nsdir = self.run_dir().join("netns");
        let _ = rustix::mount::unmount(&nsdir, rustix::mount::UnmountFlags::DETACH);
    }
}

fn in_ns(ns: &Path, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("10")
        .arg("nsenter")
        .arg(format!("--net={}", ns.display()))
        .arg("--")
        .args(args)
        .output()
        .unwrap()
}

/// Runs `script` in `ns` with the container's generated hosts file on /etc/hosts (a private
/// mount namespace, so the host's file is untouched).
fn in_container(ns: &Path, etc: &EtcConfig, script: &str) -> Output {
    let full = format!(
        "mount --bind {} /etc/hosts && {script}",
        etc.dir.join("hosts").display()
    );
    Command::new("timeout")
        .arg("10")
        .arg("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["--", "unshare", "-m", "sh", "-c", &full])
        .output()
        .unwrap()
}

fn ping(ns: &Path, ip: &str) -> bool {
    in_ns(ns, &["busybox", "ping", "-c", "1", "-W", "2", ip])
        .status
        .success()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The host-side veths of a container's attachments (native: recorded by name; CNI: from
/// the plugins' results).
fn host_veths(store: &NetworkStore, id: &str) -> Vec<String> {
    endpoint::load(store, id)
        .unwrap()
        .map(|r| {
            r.networks
                .iter()
                .flat_map(|n| {
                    let cni: Vec<String> = n.result["interfaces"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|i| i.get("sandbox").is_none())
                        .filter_map(|i| i["name"].as_str().map(str::to_string))
                        .filter(|n| n.starts_with("veth"))
                        .collect();
                    std::iter::once(n.host_link.clone())
                        .filter(|l| !l.is_empty())
                        .chain(cni)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (bounded) until none of `links` exists: the veths of a container whose namespace was
/// removed go with it, asynchronously.
fn wait_links_gone(links: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while links.iter().any(|l| firewall::link_exists(l)) {
        assert!(Instant::now() < deadline, "links left: {links:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes `net` and asserts nothing of it or of containers `ids` is left on the host.
fn assert_no_leftovers(store: &NetworkStore, net: &Network, ids: &[&str], veths: &[String]) {
    wait_links_gone(veths);
    store.remove(&net.name).unwrap();
    assert!(
        !firewall::link_exists(&net.bridge),
        "bridge {} left",
        net.bridge
    );
    assert_eq!(
        firewall::rules_mentioning(&format!("berth:{}", net.bridge)),
        Vec::<String>::new()
    );
    for id in ids {
        assert_eq!(
            firewall::rules_mentioning(&format!("berth:{id}")),
            Vec::<String>::new(),
            "rules of {id} left"
        );
        let cni_dnat = firewall::rules_mentioning(&format!("id: \\\"{id}\\\""));
        assert_eq!(cni_dnat, Vec::<String>::new(), "rules of {id} left");
        let chain = firewall::masquerade_chain(&net.name, id);
        assert_eq!(firewall::rules_mentioning(&chain), Vec::<String>::new());
        assert!(
            endpoint::load(store, id).unwrap().is_none(),
            "record of {id} left"
        );
    }
    let leases = store.ipam_dir(net).join(&net.name);
    assert!(!leases.exists(), "leases {} left", leases.display());
}

fn assert_no_mounts(dir: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let needle = dir.display().to_string();
    assert!(
        !info.lines().any(|l| l.contains(&needle)),
        "mounts under {needle} left"
    );
}

#[test]
fn two_containers_on_a_user_network_reach_each_other() {
    let mut f = Fixture::new();
    let net = f.network("app", false);
    let req = |alias: &str| Request {
        network: net.name.clone(),
        aliases: vec![alias.into()],
        ip: None,
    };
    let (web_id, web_ns, web_etc, web) = f.attach("web", &[req("www")], &[]);
    let (cli_id, cli_ns, cli_etc, cli) = f.attach("client", &[req("cl")], &[]);
    assert_eq!(web[0].interface, "eth0");
    assert!(net.subnet.contains(&web[0].ip) && net.subnet.contains(&cli[0].ip));
    assert_ne!(web[0].ip, cli[0].ip);
    assert_eq!(web[0].gateway, net.gateway);
    // docker's MAC scheme: 02:42 and the address.
    let o = web[0].ip.octets();
    assert_eq!(
        web[0].mac,
        format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
    );
    assert!(ping(&cli_ns, &web[0].ip.to_string()));
    assert!(ping(&web_ns, &cli[0].ip.to_string()));

    f.httpd(&web_ns, "hello from web\n");
    let url = format!("http://{}/", web[0].ip);
    let o = in_container(&cli_ns, &cli_etc, &format!("busybox wget -q -O- {url}"));
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("hello from web"));
    // Each hosts file names the container itself; the others come from the embedded DNS.
    let hosts = std::fs::read_to_string(web_etc.dir.join("hosts")).unwrap();
    assert!(hosts.contains(&format!("{}\tweb", web[0].ip)), "{hosts}");
    assert!(!hosts.contains("client"), "{hosts}");

    let veths = [host_veths(&f.store, &web_id), host_veths(&f.store, &cli_id)].concat();
    assert_eq!(veths.len(), 2, "{veths:?}");
    f.stop_children();
    detach(&f.store, &web_id, None).unwrap();
    detach(&f.store, &cli_id, None).unwrap();
    detach(&f.store, &cli_id, None).unwrap(); // idempotent
    for id in [&web_id, &cli_id] {
        Netns::remove(&f.run_dir(), id).unwrap();
    }
    assert_no_leftovers(&f.store, &net, &[&web_id, &cli_id], &veths);
}

#[test]
fn cni_backend_attaches_through_the_plugins_and_tears_down() {
    let mut f = Fixture::new();
    let net = f.network_with(
        "cni",
        CreateOptions {
            subnet: Some(subnet()),
            backend: Backend::Cni,
            ..CreateOptions::default()
        },
    );
    let (a_id, a_ns, _, a) = f.attach("a", &[Request::new(&net.name)], &[]);
    let (b_id, b_ns, _, b) = f.attach("b", &[Request::new(&net.name)], &[]);
    assert!(
        endpoint::load(&f.store, &a_id).unwrap().unwrap().networks[0]
            .conflist
            .is_some()
    );
    assert!(ping(&a_ns, &b[0].ip.to_string()));
    assert!(ping(&b_ns, &a[0].ip.to_string()));
    let links = in_ns(&a_ns, &["ip", "-o", "link"]);
    assert!(String::from_utf8_lossy(&links.stdout).contains("lo: <LOOPBACK,UP"));
    let veths = [host_veths(&f.store, &a_id), host_veths(&f.store, &b_id)].concat();
    for id in [&a_id, &b_id] {
        detach(&f.store, id, None).unwrap();
        Netns::remove(&f.run_dir(), id).unwrap();
    }
    assert_no_leftovers(&f.store, &net, &[&a_id, &b_id], &veths);
}

#[test]
fn parallel_attaches_get_distinct_addresses() {
    let mut f = Fixture::new();
    let net = f.network("par", false);
    let spaces: Vec<(String, PathBuf)> = (0..20)
        .map(|i| {
            let (id, ns, _) = f.container(&format!("p{i}"));
            (id, ns)
        })
        .collect();
    let store = f.store.clone();
    let ips: Vec<Ipv4Addr> = std::thread::scope(|s| {
        let handles: Vec<_> = spaces
            .iter()
            .map(|(id, ns)| {
                let (store, name) = (&store, net.name.clone());
                s.spawn(move || {
                    let ep = Endpoint {
                        container_id: id,
                        container_name: id,
                        netns: ns,
                        etc: None,
                    };
                    attach(store, &ep, &[Request::new(&name)], &[]).unwrap()[0].ip
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut unique_ips = ips.clone();
    unique_ips.sort();
    unique_ips.dedup();
    assert_eq!(unique_ips.len(), 20, "{ips:?}");
    assert!(ping(&spaces[0].1, &ips[19].to_string()));
}

#[test]
fn dual_stack_network_gives_both_addresses_and_ipv6_reaches_peers() {
    let mut f = Fixture::new();
    let k = (std::process::id().wrapping_mul(31) + unique()) % 0xffff;
    let subnet6: ipnet::Ipv6Net = format!("fd5b:e7a1:9cff:{k:x}::/64").parse().unwrap();
    let net = f.network_with(
        "v6",
        CreateOptions {
            subnet: Some(subnet()),
            ipv6: true,
            subnet6: Some(subnet6),
            ..CreateOptions::default()
        },
    );
    let v6 = net.ipv6.unwrap();
    assert_eq!(v6.subnet, subnet6);
    let (_, a_ns, _, a) = f.attach("a", &[Request::new(&net.name)], &[]);
    let (_, b_ns, _, b) = f.attach("b", &[Request::new(&net.name)], &[]);
    let (a6, b6) = (a[0].ipv6.unwrap(), b[0].ipv6.unwrap());
    assert!(subnet6.contains(&a6) && subnet6.contains(&b6) && a6 != b6);
    assert_eq!(a[0].gateway6, Some(v6.gateway));
    assert!(ping(&a_ns, &b6.to_string()), "a cannot reach b over IPv6");
    assert!(ping(&b_ns, &v6.gateway.to_string()));
    let routes = in_ns(&a_ns, &["ip", "-6", "route"]);
    let routes = String::from_utf8_lossy(&routes.stdout);
    assert!(
        routes.contains(&format!("default via {}", v6.gateway)),
        "{routes}"
    );
}

#[test]
fn published_port_answers_on_loopback_and_from_a_container_on_another_network() {
    let mut f = Fixture::new();
    let front = f.network("front", false);
    let back = f.network("back", false);
    let (_, other_ns, _, other) = f.attach("other", &[Request::new(&back.name)], &[]);
    let mut ports = parse_publish("127.0.0.1::80").unwrap();
    // A second mapping on the other network's gateway address: the host address a container
    // there can reach, so the test needs no address outside the namespaces it made.
    ports.extend(parse_publish(&format!("{}::80", other[0].gateway)).unwrap());
    assign_host_ports(&mut ports).unwrap();
    let (srv_id, srv_ns, _, _) = f.attach("srv", &[Request::new(&front.name)], &ports);
    f.httpd(&srv_ns, "published\n");
    assert_eq!(published_ports(&f.store, &srv_id).unwrap(), ports);

    let url = format!("http://127.0.0.1:{}/", ports[0].host_port);
    let o = Command::new("curl")
        .args(["-s", "-m", "5", &url])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "published\n");

    let url = format!("http://{}:{}/", other[0].gateway, ports[1].host_port);
    let o = in_ns(&other_ns, &["busybox", "wget", "-q", "-O-", &url]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "published\n");

    let veths = host_veths(&f.store, &srv_id);
    f.stop_children();
    detach(&f.store, &srv_id, None).unwrap();
    let dnat = firewall::rules_mentioning(&format!("berth:{srv_id}"));
    assert_eq!(dnat, Vec::<String>::new());
    let o = Command::new("curl")
        .args([
            "-s",
            "-m",
            "2",
            &format!("http://127.0.0.1:{}/", ports[0].host_port),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success(), "port still answers after detach");
    Netns::remove(&f.run_dir(), &srv_id).unwrap();
    assert_no_leftovers(&f.store, &front, &[&srv_id], &veths);
}

#[test]
fn containers_on_different_networks_cannot_talk() {
    let mut f = Fixture::new();
    let n1 = f.network("iso1", false);
    let n2 = f.network("iso2", false);
    let (_, a_ns, _, a) = f.attach("a", &[Request::new(&n1.name)], &[]);
    let (_, b_ns, _, b) = f.attach("b", &[Request::new(&n2.name)], &[]);
    // Each reaches its own gateway, so the failures below are the isolation rules.
    assert!(ping(&a_ns, &n1.gateway.to_string()));
    assert!(ping(&b_ns, &n2.gateway.to_string()));
    assert!(!ping(&a_ns, &b[0].ip.to_string()), "a reached b");
    assert!(!ping(&b_ns, &a[0].ip.to_string()), "b reached a");
    // A container on both networks reaches both.
    let (_, c_ns, _, c) = f.attach("c", &[Request::new(&n1.name), Request::new(&n2.name)], &[]);
    assert_eq!(c.len(), 2);
    assert_eq!(c[1].interface, "eth1");
    assert!(ping(&c_ns, &a[0].ip.to_string()));
    assert!(ping(&c_ns, &b[0].ip.to_string()));
}

/// An "outside" host the test owns: a namespace behind a veth whose host end has `host_ip`.
fn outside(f: &mut Fixture) -> (PathBuf, Ipv4Addr) {
    let n = (std::process::id() * 7 + unique()) % 250;
    let id = format!("{}-out", f.tag);
    let ns = Netns::create(&f.run_dir(), &id).unwrap();
    f.extra_netns.push(ns.clone());
    let host_end = format!("bo{}", unique() + std::process::id() % 10000 * 100);
    let host_end: String = host_end.chars().take(15).collect();
    f.links.push(host_end.clone());
    let sh = |script: String| {
        let o = Command::new("sh").args(["-c", &script]).output().unwrap();
        assert!(o.status.success(), "{script}: {}", text(&o));
    };
    let far = Ipv4Addr::new(10, 217, n as u8, 2);
    sh(format!(
        "ip link add {host_end} type veth peer name out0 netns {ns} && \
         ip addr add 10.217.{n}.1/30 dev {host_end} && ip link set {host_end} up && \
         nsenter --net={ns} sh -c 'ip addr add {far}/30 dev out0 && ip link set out0 up && \
         ip link set lo up && ip route add default via 10.217.{n}.1'",
        ns = ns.display()
    ));
    (ns, far)
}

#[test]
fn internal_network_has_no_egress_while_a_normal_one_does() {
    let mut f = Fixture::new();
    let (_, far) = outside(&mut f);
    let open = f.network("open", false);
    let closed = f.network("closed", true);
    let (_, open_ns, _, _) = f.attach("o", &[Request::new(&open.name)], &[]);
    let (_, in1_ns, _, _) = f.attach("i1", &[Request::new(&closed.name)], &[]);
    let (_, _, _, in2) = f.attach("i2", &[Request::new(&closed.name)], &[]);
    assert!(
        ping(&open_ns, &far.to_string()),
        "normal network has no egress"
    );
    assert!(
        !ping(&in1_ns, &far.to_string()),
        "internal network reached outside"
    );
    let routes = in_ns(&in1_ns, &["ip", "route"]);
    assert!(!String::from_utf8_lossy(&routes.stdout).contains("default"));
    assert!(
        ping(&in1_ns, &in2[0].ip.to_string()),
        "internal peers cut off"
    );
}

#[test]
fn attach_without_networks_leaves_only_loopback_up() {
    let mut f = Fixture::new();
    let (id, ns, _) = f.container("none");
    let ep = Endpoint {
        container_id: &id,
        container_name: "none",
        netns: &ns,
        etc: None,
    };
    assert_eq!(attach(&f.store, &ep, &[], &[]).unwrap(), Vec::new());
    let links = in_ns(&ns, &["ip", "-o", "link"]);
    let links = String::from_utf8_lossy(&links.stdout);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
    assert!(ping(&ns, "127.0.0.1"));
}

#[test]
fn network_in_use_cannot_be_removed_until_its_last_container_leaves() {
    let mut f = Fixture::new();
    let net = f.network("busy", false);
    let (id, _, _, _) = f.attach("x", &[Request::new(&net.name)], &[]);
    assert!(matches!(
        f.store.remove(&net.name),
        Err(StoreError::InUse { .. })
    ));
    assert!(f.store.prune().unwrap().is_empty());
    detach(&f.store, &id, Some(&net.name)).unwrap();
    assert!(matches!(
        detach(&f.store, &id, Some(&net.name)),
        Err(AttachError::NotAttached { .. })
    ));
    f.store.remove(&net.name).unwrap();
}

#[test]
fn crashed_attach_and_vanished_namespaces_are_cleaned_by_recover() {
    let mut f = Fixture::new();
    let net = f.network("crash", false);
    let ports = parse_publish("127.0.0.1::80").unwrap();
    let (a_id, _, _, _) = f.attach("a", &[Request::new(&net.name)], &ports);
    let (b_id, _, _, _) = f.attach("b", &[Request::new(&net.name)], &[]);
    let veths = [host_veths(&f.store, &a_id), host_veths(&f.store, &b_id)].concat();
    // a: the namespace vanished without a detach (e.g. a crash between the two).
    Netns::remove(&f.run_dir(), &a_id).unwrap();
    // b: berth died during ADD, before the result was recorded.
    let mut rec = endpoint::load(&f.store, &b_id).unwrap().unwrap();
    rec.networks[0].phase = endpoint::Phase::Adding;
    rec.networks[0].attachment = None;
    endpoint::save(&f.store, &rec).unwrap();

    recover(&f.store).unwrap();
    Netns::remove(&f.run_dir(), &b_id).unwrap();
    assert_no_leftovers(&f.store, &net, &[&a_id, &b_id], &veths);
}

#[test]
fn netns_is_a_pinned_namespace_removed_without_leaving_mounts() {
    let f = Fixture::new();
    let id = format!("{}-pin", f.tag);
    let ns = Netns::create(&f.run_dir(), &id).unwrap();
    assert!(netns::is_netns(&ns));
    assert!(matches!(
        Netns::create(&f.run_dir(), &id),
        Err(NetnsError::Exists { .. })
    ));
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    let o = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["readlink", "/proc/self/ns/net"])
        .output()
        .unwrap();
    assert_ne!(
        String::from_utf8_lossy(&o.stdout).trim(),
        host.to_string_lossy()
    );
    // Our own threads stay in the host namespace.
    assert_eq!(
        std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
        host
    );
    Netns::remove(&f.run_dir(), &id).unwrap();
    Netns::remove(&f.run_dir(), &id).unwrap();
    assert!(!ns.exists());
    // The last namespace gone, remove also released the shared mount of netns/.
    assert_no_mounts(&f.run_dir());
}

#[test]
fn static_ip_and_ip_range_are_honoured() {
    let mut f = Fixture::new();
    let subnet = subnet();
    let base = u32::from(subnet.network());
    let range: ipnet::Ipv4Net = format!("{}/28", Ipv4Addr::from(base + 16)).parse().unwrap();
    let opts = CreateOptions {
        subnet: Some(subnet),
        ip_range: Some(range),
        ..CreateOptions::default()
    };
    let net = f.store.create(&format!("{}-fixed", f.tag), &opts).unwrap();
    f.networks.push(net.name.clone());
    let fixed = Ipv4Addr::from(base + 50);
    let req = Request {
        network: net.name.clone(),
        aliases: Vec::new(),
        ip: Some(fixed),
    };
    let (_, _, _, a) = f.attach("fixed", &[req], &[]);
    assert_eq!(a[0].ip, fixed);
    let (_, _, _, b) = f.attach("ranged", &[Request::new(&net.name)], &[]);
    assert!(range.contains(&b[0].ip), "{} outside {range}", b[0].ip);
    let bad = Request {
        network: net.name.clone(),
        aliases: Vec::new(),
        ip: Some(net.gateway),
    };
    let (id, ns, _) = f.container("bad");
    let ep = Endpoint {
        container_id: &id,
        container_name: "bad",
        netns: &ns,
        etc: None,
    };
    assert!(matches!(
        attach(&f.store, &ep, &[bad], &[]),
        Err(AttachError::BadStaticIp { .. })
    ));
    // The refused attach left no record behind.
    assert!(endpoint::load(&f.store, &id).unwrap().is_none());
}

#[test]
fn default_network_is_shared_by_two_roots_without_address_clashes() {
    let mut f1 = Fixture::new();
    let mut f2 = Fixture::new();
    let (a_id, a_ns, _, a) = f1.attach("a", &[Request::new(DEFAULT_NETWORK)], &[]);
    let (_, b_ns, _, b) = f2.attach("b", &[Request::new(DEFAULT_NETWORK)], &[]);
    assert_eq!(
        f1.store.inspect(DEFAULT_NETWORK).unwrap().bridge,
        DEFAULT_BRIDGE
    );
    assert_ne!(a[0].ip, b[0].ip);
    assert!(ping(&a_ns, &b[0].ip.to_string()));
    // The first root's last container leaving must not take the bridge from the second's.
    detach(&f1.store, &a_id, None).unwrap();
    assert!(firewall::link_exists(DEFAULT_BRIDGE));
    assert!(ping(&b_ns, &a[0].gateway.to_string()));
}
