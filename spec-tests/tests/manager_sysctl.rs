//! `berth run --sysctl`: namespaced sysctls are set in the container's own namespaces, shown
//! by inspect, and refused (status 125, the flag named, nothing left) for host-wide ones and
//! for namespaces the container shares with the host. Through the Engine API, docker's CLIs
//! send HostConfig.Sysctls and HostConfig.Links (`--link`: the alias resolves on a user
//! network).

use anyhow::Result;
use spec_tests::manager::containers::Env;
use spec_tests::manager::network::BUSYBOX;

#[test]
fn sysctls_are_set_inside_and_shown_by_inspect() -> Result<()> {
    let env = Env::new()?;
    env.ok(&[
        "create",
        "--name",
        "sysctl",
        "--network",
        "none",
        "--sysctl",
        "net.core.somaxconn=1234",
        "--sysctl",
        "kernel.shmmni=999",
        BUSYBOX,
        "sh",
        "-c",
        "cat /proc/sys/net/core/somaxconn /proc/sys/kernel/shmmni",
    ])?;
    let v = env.inspect("sysctl")?;
    assert_eq!(
        v["HostConfig"]["Sysctls"]["net.core.somaxconn"], "1234",
        "{v}"
    );
    assert_eq!(v["HostConfig"]["Sysctls"]["kernel.shmmni"], "999", "{v}");
    let (code, out, err) = env.run(&["start", "-a", "sysctl"])?;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1234\n999\n");
    // The host's values are untouched.
    let host = std::fs::read_to_string("/proc/sys/net/core/somaxconn")?;
    assert_ne!(host.trim(), "1234");
    env.ok(&["rm", "sysctl"])?;
    env.assert_clean(&[]);
    Ok(())
}

#[test]
fn host_wide_and_shared_namespace_sysctls_are_refused() -> Result<()> {
    let env = Env::new()?;
    for args in [
        &["--sysctl", "kernel.pid_max=1000"][..],
        &["--sysctl", "vm.swappiness=1"],
        &["--sysctl", "net.core.somaxconn"],
        &["--network", "host", "--sysctl", "net.core.somaxconn=1234"],
        &["--ipc", "host", "--sysctl", "kernel.shmmni=999"],
    ] {
        let mut cmd = vec!["run", "--rm", "--name", "refused"];
        cmd.extend_from_slice(args);
        cmd.extend([BUSYBOX, "true"]);
        let (code, _, err) = env.run(&cmd)?;
        assert_eq!(code, 125, "{args:?}: {err}");
        assert!(err.contains("--sysctl"), "{args:?}: {err}");
    }
    env.assert_clean(&[]);
    Ok(())
}

#[test]
fn docker_clis_send_sysctls_and_links_through_the_api() -> Result<()> {
    use spec_tests::manager::api::{docker_clients, Service};
    use spec_tests::manager::network::Scope;
    let s = Service::start()?;
    // A network and a container of the test's own, removed with the scope even on failure.
    let mut scope = Scope::new(&s.env.berth);
    let (net, _) = scope.network("linknet", &[])?;
    scope.run_detached("db", &["--network", &net, BUSYBOX, "sleep", "60"])?;
    for cli in docker_clients() {
        let out = s.docker_ok(
            cli,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--sysctl",
                "net.core.somaxconn=1234",
                "busybox",
                "cat",
                "/proc/sys/net/core/somaxconn",
            ],
        )?;
        assert_eq!(out, "1234\n", "{cli}");
        let o = s.docker(
            cli,
            &[
                "run",
                "--rm",
                "--network",
                "host",
                "--sysctl",
                "net.core.somaxconn=1",
                "busybox",
                "true",
            ],
        )?;
        assert_ne!(o.code, Some(0), "{cli}");
        assert!(o.stderr.contains("sysctl"), "{cli}: {}", o.stderr);
        // docker's --link on a user network: the alias resolves for this container.
        let o = s.docker(
            cli,
            &[
                "run",
                "--rm",
                "--network",
                &net,
                "--link",
                "db:database",
                "busybox",
                "nslookup",
                "database",
            ],
        )?;
        assert_eq!(o.code, Some(0), "{cli}: {}{}", o.stdout, o.stderr);
    }
    Ok(())
}

#[test]
fn link_on_the_default_bridge_writes_the_hosts_file_and_needs_a_running_target() -> Result<()> {
    let env = Env::new()?;
    env.ok(&["run", "-d", "--name", "target", BUSYBOX, "sleep", "60"])?;
    let ip = env.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.bridge.IPAddress}}",
        "target",
    ])?;
    let ip = ip.trim();
    let (code, hosts, err) = env.run(&[
        "run",
        "--rm",
        "--link",
        "target:db",
        BUSYBOX,
        "cat",
        "/etc/hosts",
    ])?;
    assert_eq!(code, 0, "{err}");
    assert!(
        hosts.lines().any(|l| l.starts_with(ip) && l.contains("db")),
        "{ip}: {hosts}"
    );
    env.ok(&["stop", "-t", "0", "target"])?;
    let (code, _, err) = env.run(&["run", "--rm", "--link", "target:db", BUSYBOX, "true"])?;
    assert_ne!(code, 0);
    assert!(
        err.contains("Cannot link to a non running container"),
        "{err}"
    );
    let (code, _, err) = env.run(&["run", "--rm", "--link", "nosuch:db", BUSYBOX, "true"])?;
    assert_ne!(code, 0);
    assert!(err.contains("nosuch"), "{err}");
    env.ok(&["rm", "-f", "target"])?;
    env.assert_clean(&[]);
    Ok(())
}
