//! `berth inspect` of a container against dockerd's for the same run: every field docker
//! reports is there (tools and SDKs read them), with docker's values where berth does the
//! same thing (the request's HostConfig over docker's defaults, full capability names, null
//! for empty lists, fields docker leaves out when unset).

use std::collections::BTreeSet;

use anyhow::Result;
use serde_json::Value;
use spec_tests::manager::build::Pair;

const IMAGE: &str = "berth-test-busybox:latest";

/// Every key path of a JSON document (`.HostConfig.CapAdd`, ...).
fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(m) = v {
        for (k, x) in m {
            let p = format!("{prefix}.{k}");
            paths(x, &p, out);
            out.insert(p);
        }
    }
}

/// What berth reports differently by design, and why.
const OWN: &[(&str, &str)] = &[
    (
        ".GraphDriver.Data.LowerDir",
        "berth's snapshotter shows the merged root only",
    ),
    (
        ".GraphDriver.Data.UpperDir",
        "berth's snapshotter shows the merged root only",
    ),
    (
        ".GraphDriver.Data.WorkDir",
        "berth's snapshotter shows the merged root only",
    ),
    (
        ".Config.NetworkDisabled",
        "an internal flag of dockerd's, set for bridge runs only",
    ),
];

#[test]
fn container_inspect_has_dockers_fields_and_values() -> Result<()> {
    let pair = Pair::new()?;
    let run = [
        "run",
        "-d",
        "--name",
        "ins",
        "--network",
        "none",
        "-e",
        "X=1",
        "-l",
        "a=b",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "chown",
        "--dns",
        "192.0.2.1",
        "--add-host",
        "h:192.0.2.2",
        "--ipc",
        "private",
        IMAGE,
        "sleep",
        "60",
    ];
    pair.docker.docker(&run)?.ok()?;
    pair.berth.ok(&run)?;
    let docker: Value =
        serde_json::from_str(&pair.docker.docker(&["inspect", "ins"])?.ok()?.stdout)?;
    let berth: Value = serde_json::from_str(&pair.berth.ok(&["inspect", "ins"])?)?;
    let (d, b) = (&docker[0], &berth[0]);
    let (mut dp, mut bp) = (BTreeSet::new(), BTreeSet::new());
    paths(d, "", &mut dp);
    paths(b, "", &mut bp);
    let own = |p: &String| OWN.iter().any(|(o, _)| o == p);
    let missing: Vec<_> = dp.difference(&bp).filter(|p| !own(p)).collect();
    let extra: Vec<_> = bp.difference(&dp).collect();
    assert!(missing.is_empty(), "berth lacks {missing:?}");
    assert!(extra.is_empty(), "berth adds {extra:?}");
    for key in [
        "CapAdd",
        "CapDrop",
        "Dns",
        "ExtraHosts",
        "IpcMode",
        "ShmSize",
        "PidsLimit",
        "Links",
        "Binds",
        "SecurityOpt",
        "NetworkMode",
        "PortBindings",
        "RestartPolicy",
        "LogConfig",
        "Ulimits",
        "CgroupnsMode",
    ] {
        assert_eq!(
            b["HostConfig"][key], d["HostConfig"][key],
            "HostConfig.{key}"
        );
    }
    for key in [
        "Domainname",
        "Volumes",
        "OnBuild",
        "AttachStdout",
        "StdinOnce",
        "Env",
    ] {
        if key == "Env" {
            assert!(b["Config"]["Env"].to_string().contains("X=1"));
            continue;
        }
        assert_eq!(b["Config"][key], d["Config"][key], "Config.{key}");
    }
    let none = &b["NetworkSettings"]["Networks"]["none"];
    assert_eq!(none["Aliases"], Value::Null);
    assert_eq!(none["Links"], Value::Null);
    assert!(
        none["NetworkID"].as_str().is_some_and(|s| s.len() == 64),
        "{none}"
    );
    for file in ["ResolvConfPath", "HostsPath", "HostnamePath"] {
        let path = b[file].as_str().unwrap_or_default();
        assert!(std::path::Path::new(path).is_file(), "{file} {path}");
    }
    assert_eq!(b["Platform"], "linux");
    // An image's STOPSIGNAL and a request's --stop-timeout show; berth's defaults do not.
    let run2 = [
        "run",
        "-d",
        "--name",
        "ins2",
        "--network",
        "none",
        "--stop-timeout",
        "3",
        IMAGE,
        "sleep",
        "60",
    ];
    pair.docker.docker(&run2)?.ok()?;
    pair.berth.ok(&run2)?;
    let c2 = |v: Value| v[0]["Config"].clone();
    let d2 = c2(serde_json::from_str(
        &pair.docker.docker(&["inspect", "ins2"])?.ok()?.stdout,
    )?);
    let b2 = c2(serde_json::from_str(&pair.berth.ok(&["inspect", "ins2"])?)?);
    assert_eq!(
        (&b2["StopTimeout"], &b2["StopSignal"]),
        (&d2["StopTimeout"], &d2["StopSignal"])
    );
    for name in ["ins", "ins2"] {
        pair.docker.docker(&["rm", "-f", name])?.ok()?;
        pair.berth.ok(&["rm", "-f", name])?;
    }
    Ok(())
}
