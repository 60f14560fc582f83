//! The host side of a container's network: its veth's host end and the bridge it joins,
//! across restarts and as containers come and go.

use anyhow::{Context, Result};
use sha2::Digest;
use spec_tests::manager::network::{
    berth_with_busybox, inspect, link_exists, unique_name, Scope, BUSYBOX, ROOTLESS_NETWORKS,
};

#[test]
fn a_start_replaces_a_stale_host_link_left_by_the_previous_run() -> Result<()> {
    spec_tests::skip_rootless!(ROOTLESS_NETWORKS);
    let berth = berth_with_busybox()?;
    let mut s = Scope::new(&berth);
    let (net, _) = s.network("restart", &[])?;
    let c = unique_name("again");
    s.run_detached(&c, &["--network", &net, BUSYBOX, "sleep", "600"])?;
    // A container's previous link goes with its namespace, which the kernel destroys
    // asynchronously: a quick restart can find the old host end still there. A link of
    // that name (the deterministic one the manager derives) is planted while it is stopped.
    let id = berth.ok(&["inspect", "-f", "{{.Id}}", &c])?;
    let digest = sha2::Sha256::digest(format!("{}/{net}", id.trim()).as_bytes());
    let stale = format!("vb{}", &hex::encode(digest)[..12]);
    berth.ok(&["stop", "-t", "0", &c])?;
    assert!(!link_exists(&stale), "{stale} outlived the stop");
    let made = std::process::Command::new("ip")
        .args([
            "link",
            "add",
            &stale,
            "type",
            "veth",
            "peer",
            "name",
            &format!("{stale}p"),
        ])
        .status()?;
    assert!(made.success(), "ip link add {stale} failed");
    let started = berth.run(&["start", &c]);
    let gone = |name: &str| {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", name])
            .status();
    };
    let out = match started {
        Ok(o) => o,
        Err(e) => {
            gone(&stale);
            return Err(e);
        }
    };
    if !out.status.success() {
        gone(&stale);
        anyhow::bail!(
            "start over a stale link failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let link = std::process::Command::new("ip")
        .args(["-d", "-o", "link", "show", &stale])
        .output()?;
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(
        link.contains("veth"),
        "{stale} is not the container's veth: {link}"
    );
    let ip = s.ip(&c, &net)?;
    let out = berth.ok(&["exec", &c, "busybox", "ip", "-4", "addr", "show", "eth0"])?;
    assert!(out.contains(&ip), "{out}");
    // Quick restarts in a row keep working.
    for _ in 0..3 {
        berth.ok(&["restart", "-t", "0", &c])?;
        let st = berth.ok(&["inspect", "-f", "{{.State.Status}}", &c])?;
        assert_eq!(st.trim(), "running");
    }
    s.check_clean()
}

#[test]
fn a_bridge_keeps_its_mac_address_as_containers_come_and_go() -> Result<()> {
    spec_tests::skip_rootless!(ROOTLESS_NETWORKS);
    let berth = berth_with_busybox()?;
    let mut s = Scope::new(&berth);
    let (net, _) = s.network("mac", &[])?;
    let bridge = inspect(&berth, &net)?["Options"]["berth.bridge"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no berth.bridge option on {net}"))?;
    let sys = |f: &str| {
        let path = format!("/sys/class/net/{bridge}/{f}");
        std::fs::read_to_string(&path).with_context(|| path.clone())
    };
    // Without a set address a bridge takes its lowest port's: the containers' ARP caches
    // would then hold a gateway address that goes away with a container.
    // The bridge is made when the first container joins.
    let names: Vec<String> = (0..4).map(|_| unique_name("port")).collect();
    s.run_detached(&names[0], &["--network", &net, BUSYBOX, "sleep", "600"])?;
    assert_eq!(
        sys("addr_assign_type")?.trim(),
        "3",
        "the address is not set"
    );
    let mac = sys("address")?;
    for n in &names[1..] {
        s.run_detached(n, &["--network", &net, BUSYBOX, "sleep", "600"])?;
        assert_eq!(sys("address")?, mac, "the address changed when {n} joined");
    }
    berth.ok(&["rm", "-f", &names[0], &names[1]])?;
    assert_eq!(
        sys("address")?,
        mac,
        "the address changed when containers left"
    );
    // The survivors still reach their gateway's resolver at once.
    let out = berth.ok(&["exec", &names[2], "nslookup", &names[3]])?;
    assert!(out.contains(&s.ip(&names[3], &net)?), "{out}");
    s.check_clean()
}
