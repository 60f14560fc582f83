//! `berth run --sysctl`: namespaced sysctls are set in the container's own namespaces, shown
//! by inspect, and refused (status 125, the flag named, nothing left) for host-wide ones and
//! for namespaces the container shares with the host.

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
