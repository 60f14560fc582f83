//! `berth network create/ls/inspect/rm/prune` as a user runs them.

use anyhow::Result;
use spec_tests::manager::berth::Berth;
use spec_tests::manager::network::{inspect, link_exists, ls, names, unique_name, unique_subnet};

#[test]
fn create_inspect_ls_and_rm_round_trip_with_every_option() -> Result<()> {
    let berth = Berth::new()?;
    let name = unique_name("full");
    let subnet = unique_subnet();
    let base = subnet.trim_end_matches(".0/24");
    let gateway = format!("{base}.254");
    let range = format!("{base}.128/25");
    let id = berth.ok(&[
        "network",
        "create",
        "--subnet",
        &subnet,
        "--gateway",
        &gateway,
        "--ip-range",
        &range,
        "--internal",
        "--label",
        "team=net",
        "--label",
        "tier=back",
        &name,
    ])?;
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");

    let n = inspect(&berth, &name)?;
    assert_eq!(n["Name"], name.as_str());
    assert_eq!(n["Id"], id);
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(n["Internal"], true);
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], subnet.as_str());
    assert_eq!(n["IPAM"]["Config"][0]["Gateway"], gateway.as_str());
    assert_eq!(n["IPAM"]["Config"][0]["IPRange"], range.as_str());
    assert_eq!(n["Labels"]["team"], "net");
    assert_eq!(n["Labels"]["tier"], "back");
    assert_eq!(n["Containers"], serde_json::json!({}));
    // By id and by unique id prefix too.
    assert_eq!(inspect(&berth, id)?["Name"], name.as_str());
    assert_eq!(inspect(&berth, &id[..12])?["Name"], name.as_str());

    let row = ls(&berth)?
        .into_iter()
        .find(|r| r["Name"] == name.as_str())
        .expect("network listed");
    assert_eq!(row["ID"], &id[..12]);
    assert_eq!(row["Subnet"], subnet.as_str());
    let quiet = berth.ok(&["network", "ls", "-q", "--no-trunc"])?;
    assert!(quiet.lines().any(|l| l == id), "{quiet}");
    let table = berth.ok(&["network", "ls"])?;
    assert!(table.starts_with("NETWORK ID"), "{table}");

    assert_eq!(berth.ok(&["network", "rm", &name])?.trim(), name);
    assert!(!names(&berth)?.contains(&name));
    let err = berth.fail(&["network", "inspect", &name])?;
    assert!(err.contains("not found"), "{err}");
    // Creating the network touched nothing on the host: bridges appear with containers.
    let bridge = n["Options"]["berth.bridge"].as_str().unwrap_or_default();
    assert!(!bridge.is_empty() && bridge.len() <= 15, "{bridge}");
    assert!(!link_exists(bridge));
    Ok(())
}

#[test]
fn create_refuses_bad_input_naming_the_flag_at_fault() -> Result<()> {
    let berth = Berth::new()?;
    let taken = unique_name("taken");
    let subnet = unique_subnet();
    berth.ok(&["network", "create", "--subnet", &subnet, &taken])?;
    let fresh = unique_subnet();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![&taken], "already exists"),
        (vec!["--subnet", &subnet, "other"], "overlaps network"),
        (
            vec!["--subnet", &fresh, "--gateway", "192.0.2.77", "gw"],
            "--gateway",
        ),
        (
            vec!["--subnet", &fresh, "--ip-range", "192.0.2.0/28", "rg"],
            "--ip-range",
        ),
        (vec!["--subnet", "10.219.0.0/31", "tiny"], "too small"),
        (vec!["--driver", "overlay", "drv"], "--driver"),
        (vec!["--label", "=v", "lbl"], "--label"),
        (vec!["host"], "reserved"),
        (vec!["none"], "reserved"),
        (vec!["bridge"], "reserved"),
        (vec!["-bad"], "unexpected argument"),
        (vec!["bad/name"], "invalid network name"),
        (vec!["--subnet", "not-a-cidr", "x"], "--subnet"),
    ];
    for (args, needle) in cases {
        let mut full = vec!["network", "create"];
        full.extend(args.iter());
        let err = berth.fail(&full)?;
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // None of the refused networks was recorded.
    let mut listed = names(&berth)?;
    listed.sort();
    let mut want = vec!["bridge".to_string(), taken];
    want.sort();
    assert_eq!(listed, want);
    Ok(())
}

#[test]
fn default_bridge_network_is_listed_and_cannot_be_removed() -> Result<()> {
    let berth = Berth::new()?;
    let all = ls(&berth)?;
    let bridge = all
        .iter()
        .find(|n| n["Name"] == "bridge")
        .expect("bridge listed");
    assert_eq!(bridge["Driver"], "bridge");
    let n = inspect(&berth, "bridge")?;
    assert_eq!(n["Options"]["berth.bridge"], "berth0");
    let err = berth.fail(&["network", "rm", "bridge"])?;
    assert!(err.contains("pre-defined"), "{err}");
    Ok(())
}

#[test]
fn networks_without_a_subnet_get_distinct_ones() -> Result<()> {
    let berth = Berth::new()?;
    let (a, b) = (unique_name("auto"), unique_name("auto"));
    berth.ok(&["network", "create", &a])?;
    berth.ok(&["network", "create", &b])?;
    let sa = inspect(&berth, &a)?["IPAM"]["Config"][0]["Subnet"].clone();
    let sb = inspect(&berth, &b)?["IPAM"]["Config"][0]["Subnet"].clone();
    assert_ne!(sa, sb);
    Ok(())
}

#[test]
fn prune_removes_user_networks_and_keeps_the_default() -> Result<()> {
    let berth = Berth::new()?;
    let (a, b) = (unique_name("pa"), unique_name("pb"));
    berth.ok(&["network", "create", "--subnet", &unique_subnet(), &a])?;
    berth.ok(&["network", "create", "--subnet", &unique_subnet(), &b])?;
    let out = berth.ok(&["network", "prune", "-f"])?;
    assert!(out.starts_with("Deleted Networks:"), "{out}");
    assert!(out.contains(&a) && out.contains(&b), "{out}");
    assert_eq!(names(&berth)?, ["bridge"]);
    assert_eq!(berth.ok(&["network", "prune", "-f"])?, "");
    Ok(())
}

#[test]
fn rm_and_inspect_of_several_report_each_missing_one_and_fail() -> Result<()> {
    let berth = Berth::new()?;
    let keep = unique_name("keep");
    berth.ok(&["network", "create", "--subnet", &unique_subnet(), &keep])?;
    let out = berth.run(&["network", "inspect", &keep, "missing-one"])?;
    assert!(!out.status.success());
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(shown[0]["Name"], keep.as_str());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing-one"));
    let out = berth.run(&["network", "rm", "missing-two", &keep])?;
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), keep);
    assert!(!names(&berth)?.contains(&keep));
    Ok(())
}
