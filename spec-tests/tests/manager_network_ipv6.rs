//! Dual-stack networks (`network create --ipv6`) and many starts at once on one network.

use anyhow::{Context, Result};
use spec_tests::manager::network::{berth_with_busybox, inspect, unique_name, Scope, BUSYBOX};

/// A /64 of berth's IPv6 pool that no other test of this process uses (the pid spreads
/// concurrent runs).
fn unique_subnet6() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = (std::process::id().wrapping_mul(7)
        + NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
        % 0xffff;
    format!("fd5b:e7a1:9cfd:{n:x}::/64")
}

fn ok_out(o: &std::process::Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The container's IPv6 address on `network` (from `inspect`).
fn ip6(berth: &spec_tests::manager::berth::Berth, c: &str, network: &str) -> Result<String> {
    let v: serde_json::Value = serde_json::from_str(&berth.ok(&["inspect", c])?)?;
    v[0]["NetworkSettings"]["Networks"][network]["GlobalIPv6Address"]
        .as_str()
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .with_context(|| format!("no IPv6 address of {c} on {network}"))
}

#[test]
fn dual_stack_containers_talk_over_ipv6_and_inspect_shows_both_families() -> Result<()> {
    let berth = berth_with_busybox()?;
    let mut s = Scope::new(&berth);
    let subnet6 = unique_subnet6();
    let (net, base) = s.network("dual", &["--ipv6", "--subnet", &subnet6])?;
    let n = inspect(&berth, &net)?;
    assert_eq!(n["EnableIPv6"], true, "{n}");
    let configs = n["IPAM"]["Config"].as_array().cloned().unwrap_or_default();
    assert_eq!(configs.len(), 2, "{n}");
    assert_eq!(configs[1]["Subnet"], subnet6.as_str());
    let gw6 = configs[1]["Gateway"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(gw6, subnet6.replace("::/64", "::1"));

    let a = unique_name("a6");
    s.run_detached(&a, &["--network", &net, BUSYBOX, "sleep", "600"])?;
    let b = unique_name("b6");
    s.run_detached(&b, &["--network", &net, BUSYBOX, "sleep", "600"])?;
    let (a4, a6, b6) = (
        s.ip(&a, &net)?,
        ip6(&berth, &a, &net)?,
        ip6(&berth, &b, &net)?,
    );
    assert!(a4.starts_with(&format!("{base}.")), "{a4}");
    assert_ne!(a6, b6);
    let addrs = berth.ok(&[
        "exec", &a, "busybox", "ip", "-6", "-o", "addr", "show", "eth0",
    ])?;
    assert!(addrs.contains(&format!("{a6}/64")), "{addrs}");
    let out = berth.run(&["exec", &b, "busybox", "ping6", "-c", "1", "-W", "2", &a6])?;
    assert!(out.status.success(), "{}", ok_out(&out));
    // The IPv6 gateway is the default route, and the resolver answers AAAA.
    let routes = berth.ok(&["exec", &a, "busybox", "ip", "-6", "route"])?;
    assert!(routes.contains(&format!("default via {gw6}")), "{routes}");
    let out = berth.ok(&["exec", &b, "busybox", "nslookup", "-type=aaaa", &a])?;
    assert!(out.contains(&a6), "{out}");
    // network inspect lists both addresses of each container.
    let n = inspect(&berth, &net)?;
    let listed: Vec<String> = n["Containers"]
        .as_object()
        .map(|m| {
            m.values()
                .map(|c| c["IPv6Address"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(listed.contains(&format!("{a6}/64")), "{n}");
    s.check_clean()
}

#[test]
fn a_published_port_answers_over_ipv6() -> Result<()> {
    let berth = berth_with_busybox()?;
    let mut s = Scope::new(&berth);
    let (web_net, _) = s.network("v6web", &["--ipv6", "--subnet", &unique_subnet6()])?;
    let (other_net, _) = s.network("v6cli", &["--ipv6", "--subnet", &unique_subnet6()])?;
    // The other network's bridge gets its addresses with its first container.
    let sleeper = unique_name("sleeper6");
    s.run_detached(
        &sleeper,
        &["--network", &other_net, BUSYBOX, "sleep", "600"],
    )?;
    let other_gw6 = inspect(&berth, &other_net)?["IPAM"]["Config"][1]["Gateway"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let web = unique_name("web6");
    // Published on one host IPv6 address: the other network's gateway, which a container
    // there reaches, so nothing leaves the test's namespaces.
    let spec = format!("[{other_gw6}]::80");
    s.web(&web, &["--network", &web_net, "-p", &spec], "over-ipv6")?;
    let port = berth.ok(&["port", &web, "80"])?;
    let host_port = port
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .unwrap_or_default()
        .trim()
        .to_string();
    assert!(host_port.parse::<u16>().is_ok_and(|p| p > 0), "{port}");
    // From the host...
    let url = format!("http://[{other_gw6}]:{host_port}/");
    let curl = std::process::Command::new("curl")
        .args(["-s", "-g", "-m", "5", &url])
        .output()?;
    assert_eq!(
        String::from_utf8_lossy(&curl.stdout).trim(),
        "over-ipv6",
        "{}",
        ok_out(&curl)
    );
    // ...and from a container on the other network.
    let out = berth.run(&[
        "run",
        "--rm",
        "--network",
        &other_net,
        BUSYBOX,
        "busybox",
        "wget",
        "-q",
        "-O-",
        &url,
    ])?;
    assert!(out.status.success(), "{}", ok_out(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "over-ipv6");
    s.check_clean()?;
    let after = std::process::Command::new("curl")
        .args(["-s", "-g", "-m", "2", &url])
        .output()?;
    assert!(!after.status.success(), "port still published after rm");
    Ok(())
}

#[test]
fn twenty_parallel_starts_on_one_network_get_distinct_addresses() -> Result<()> {
    let berth = berth_with_busybox()?;
    let mut s = Scope::new(&berth);
    let (net, _) = s.network("par", &[])?;
    let names: Vec<String> = (0..20).map(|i| unique_name(&format!("par{i}"))).collect();
    for n in &names {
        s.adopt(n);
    }
    let results: Vec<Result<String>> = std::thread::scope(|sc| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| {
                let (berth, net) = (&berth, net.clone());
                sc.spawn(move || {
                    berth.ok(&[
                        "run",
                        "-d",
                        "--name",
                        n,
                        "--network",
                        &net,
                        BUSYBOX,
                        "sleep",
                        "600",
                    ])
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    let mut ips: Vec<String> = names.iter().map(|n| s.ip(n, &net)).collect::<Result<_>>()?;
    let first = ips[0].clone();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "{ips:?}");
    // Each reaches another, by name.
    let out = berth.ok(&[
        "exec", &names[19], "busybox", "ping", "-c", "1", "-W", "2", &names[0],
    ])?;
    assert!(out.contains(&first), "{out}");
    s.check_clean()
}
