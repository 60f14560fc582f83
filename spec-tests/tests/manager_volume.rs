//! `berth volume create|ls|inspect|rm|prune` against docker's behaviour: names, labels,
//! options, filters, the inspect JSON shape, errors and exit codes, prune of anonymous
//! volumes only unless --all.

use anyhow::Result;
use serde_json::Value;
use spec_tests::manager::berth::Berth;

fn names(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn inspect(berth: &Berth, name: &str) -> Result<Value> {
    let out = berth.ok(&["volume", "inspect", name])?;
    let arr: Value = serde_json::from_str(&out)?;
    Ok(arr[0].clone())
}

#[test]
fn create_inspect_and_list_named_volumes() -> Result<()> {
    let berth = Berth::new()?;
    let out = berth.ok(&[
        "volume",
        "create",
        "--label",
        "team=web",
        "--label",
        "tier",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=1m",
        "data1",
    ])?;
    assert_eq!(out.trim(), "data1");
    let v = inspect(&berth, "data1")?;
    let keys: Vec<&String> = v
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "CreatedAt",
            "Driver",
            "Labels",
            "Mountpoint",
            "Name",
            "Options",
            "Scope"
        ]
    );
    assert_eq!(v["Name"], "data1");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"]["team"], "web");
    assert_eq!(v["Labels"]["tier"], "");
    assert_eq!(v["Options"]["o"], "size=1m");
    let mountpoint = berth.root().join("volumes/data1/_data");
    assert_eq!(v["Mountpoint"], mountpoint.to_string_lossy().as_ref());
    assert!(mountpoint.is_dir());
    assert!(v["CreatedAt"].as_str().is_some_and(|t| t.ends_with('Z')));

    // Creating an existing name returns it unchanged (docker).
    assert_eq!(berth.ok(&["volume", "create", "data1"])?.trim(), "data1");
    assert_eq!(inspect(&berth, "data1")?, v);
    berth.ok(&["volume", "create", "data2"])?;
    let anon = berth.ok(&["volume", "create"])?.trim().to_string();
    assert_eq!(anon.len(), 64, "{anon}");
    assert!(anon.bytes().all(|b| b.is_ascii_hexdigit()));

    let table = berth.ok(&["volume", "ls"])?;
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("DRIVER    VOLUME NAME"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(rows.contains(&"local     data1"), "{table}");
    assert_eq!(
        names(&berth.ok(&["volume", "ls", "-q"])?),
        names(&format!("data1\ndata2\n{anon}\n"))
    );
    assert_eq!(
        berth.ok(&["volume", "ls", "-q", "--filter", "label=team=web"])?,
        "data1\n"
    );
    assert_eq!(
        berth.ok(&["volume", "ls", "-q", "--filter", "name=data2"])?,
        "data2\n"
    );
    assert_eq!(
        names(&berth.ok(&["volume", "ls", "-q", "--filter", "dangling=true"])?).len(),
        3
    );
    assert_eq!(
        berth.ok(&[
            "volume",
            "ls",
            "--filter",
            "name=data1",
            "--format",
            "{{.Name}}:{{.Driver}}:{{.Labels}}"
        ])?,
        "data1:local:team=web,tier=\n"
    );
    let json = berth.ok(&["volume", "ls", "--filter", "name=data", "--format", "json"])?;
    let rows: Vec<Value> = json
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["Name"], "data1");
    // The fields dockerd 20.10's `volume ls --format '{{json .}}'` prints.
    let keys: Vec<&String> = rows[0]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "Driver",
            "Labels",
            "Links",
            "Mountpoint",
            "Name",
            "Scope",
            "Size"
        ]
    );
    assert_eq!(rows[0]["Labels"], "team=web,tier=");
    assert_eq!(
        berth.ok(&[
            "volume",
            "inspect",
            "--format",
            "{{.Name}} {{index .Labels \"team\"}} {{json .Options}}",
            "data1"
        ])?,
        "data1 web {\"device\":\"tmpfs\",\"o\":\"size=1m\",\"type\":\"tmpfs\"}\n"
    );
    let table = berth.ok(&[
        "volume",
        "ls",
        "--filter",
        "label=team",
        "--format",
        "table {{.Name}}\\t{{.Labels}}\\t{{.Scope}}",
    ])?;
    assert_eq!(
        table,
        "VOLUME NAME   LABELS           SCOPE\ndata1         team=web,tier=   local\n"
    );
    let err = berth.fail(&["volume", "ls", "--filter", "colour=red"])?;
    assert!(err.contains("invalid filter"), "{err}");
    Ok(())
}

#[test]
fn bad_names_and_options_are_refused() -> Result<()> {
    let berth = Berth::new()?;
    for (name, want) in [
        ("a", "volume name is too short"),
        ("-leading-dash", "includes invalid characters"),
        ("has/slash", "includes invalid characters"),
        ("../escape", "includes invalid characters"),
        ("sp ace", "includes invalid characters"),
    ] {
        let err = berth.fail(&["volume", "create", "--", name])?;
        assert!(err.contains(want), "{name}: {err}");
    }
    let err = berth.fail(&["volume", "create", "--opt", "colour=red", "okname"])?;
    assert!(err.contains("invalid option: \"colour\""), "{err}");
    let err = berth.fail(&["volume", "create", "--opt", "type=tmpfs", "okname"])?;
    assert!(err.contains("missing required option: \"device\""), "{err}");
    let err = berth.fail(&["volume", "create", "--driver", "nfs", "okname"])?;
    assert!(err.contains("--driver"), "{err}");
    assert_eq!(berth.ok(&["volume", "ls", "-q"])?, "");
    assert!(!berth.root().join("volumes/okname").exists());
    Ok(())
}

#[test]
fn remove_and_inspect_of_missing_volumes_fail() -> Result<()> {
    let berth = Berth::new()?;
    berth.ok(&["volume", "create", "gone"])?;
    std::fs::write(berth.root().join("volumes/gone/_data/file"), b"data")?;
    assert_eq!(berth.ok(&["volume", "rm", "gone"])?, "gone\n");
    assert!(!berth.root().join("volumes/gone").exists());
    let err = berth.fail(&["volume", "rm", "gone"])?;
    assert!(err.contains("no such volume"), "{err}");
    // -f ignores volumes that do not exist.
    assert_eq!(berth.ok(&["volume", "rm", "-f", "gone"])?, "");
    // One missing name fails the command but the others are still removed.
    berth.ok(&["volume", "create", "other"])?;
    let out = berth.run(&["volume", "rm", "missing", "other"])?;
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "other\n");
    assert_eq!(berth.ok(&["volume", "ls", "-q"])?, "");
    let out = berth.run(&["volume", "inspect", "missing"])?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such volume: missing"));
    Ok(())
}

#[test]
fn prune_removes_anonymous_volumes_unless_all() -> Result<()> {
    let berth = Berth::new()?;
    let anon = berth.ok(&["volume", "create"])?.trim().to_string();
    std::fs::write(
        berth.root().join("volumes").join(&anon).join("_data/blob"),
        vec![7u8; 2500],
    )?;
    berth.ok(&["volume", "create", "--label", "env=test", "named1"])?;
    berth.ok(&["volume", "create", "named2"])?;
    let out = berth.ok(&["volume", "prune", "-f"])?;
    assert_eq!(
        out,
        format!("Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 2.5kB\n")
    );
    assert_eq!(
        names(&berth.ok(&["volume", "ls", "-q"])?),
        ["named1", "named2"]
    );
    let out = berth.ok(&[
        "volume",
        "prune",
        "-f",
        "--all",
        "--filter",
        "label=env=test",
    ])?;
    assert!(out.starts_with("Deleted Volumes:\nnamed1\n"), "{out}");
    assert_eq!(berth.ok(&["volume", "ls", "-q"])?, "named2\n");
    let out = berth.ok(&["volume", "prune", "-f"])?;
    assert_eq!(out, "Total reclaimed space: 0B\n");
    berth.ok(&["volume", "prune", "-a", "-f"])?;
    assert_eq!(berth.ok(&["volume", "ls", "-q"])?, "");
    Ok(())
}

#[test]
fn concurrent_commands_share_the_store_safely() -> Result<()> {
    let berth = Berth::new()?;
    let mut children = Vec::new();
    for i in 0..6 {
        children.push(
            berth
                .cmd(&["volume", "create", &format!("vol{}", i % 3)])?
                .stdout(std::process::Stdio::null())
                .spawn()?,
        );
    }
    for mut c in children {
        assert!(c.wait()?.success());
    }
    assert_eq!(
        names(&berth.ok(&["volume", "ls", "-q"])?),
        ["vol0", "vol1", "vol2"]
    );
    Ok(())
}

/// An image layer with owners set (as every real image has): busybox for the runtime, and
/// /data with content to copy up: a file of another owner, a symlink pointing out of the
/// root, a subdirectory.
fn data_layer() -> Result<Vec<u8>> {
    let busybox = std::fs::read("/bin/busybox")?;
    let mut b = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType, mode: u32, size: u64, uid: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mtime(1_000_000);
        h
    };
    for dir in ["bin", "etc", "data", "data/sub"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0, 0);
        b.append_data(&mut h, dir, &[][..])?;
    }
    let mut h = header(tar::EntryType::Regular, 0o755, busybox.len() as u64, 0);
    b.append_data(&mut h, "bin/busybox", &busybox[..])?;
    let mut h = header(tar::EntryType::Symlink, 0o777, 0, 0);
    b.append_link(&mut h, "bin/sh", "busybox")?;
    let passwd = b"root:x:0:0:root:/root:/bin/sh\n";
    let mut h = header(tar::EntryType::Regular, 0o644, passwd.len() as u64, 0);
    b.append_data(&mut h, "etc/passwd", &passwd[..])?;
    let mut h = header(tar::EntryType::Regular, 0o640, 5, 1000);
    b.append_data(&mut h, "data/owned", &b"owned"[..])?;
    let mut h = header(tar::EntryType::Symlink, 0o777, 0, 0);
    b.append_link(&mut h, "data/escape", "/etc/berth-test-host-only")?;
    let mut h = header(tar::EntryType::Regular, 0o600, 2, 0);
    b.append_data(&mut h, "data/sub/f", &b"f\n"[..])?;
    Ok(b.into_inner()?)
}

/// A container using volumes: copy-up of the image's content into a fresh named volume,
/// `rm` refused while the container exists, `dangling` and `prune` skipping it.
#[test]
fn volumes_used_by_containers_are_populated_and_protected() -> Result<()> {
    use std::os::unix::fs::MetadataExt;

    use spec_tests::manager::images::{Compression, Layout};
    use spec_tests::manager::registry::Registry;

    let reg = Registry::plain()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let built = layout.image("amd64", &[(data_layer()?, Compression::Gzip)])?;
    layout.tag("v1", &built)?;
    let image = format!("{}/vol/data:v1", reg.host());
    layout.push("v1", &image, &[])?;
    let berth = Berth::new()?;
    berth.ok(&["pull", "-q", &image])?;
    berth.ok(&["volume", "create", "kept"])?;
    // No network: the test is about volumes, and the default bridge may clash with
    // another berth's on a shared host.
    berth.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "user1",
        "-v",
        "kept:/data",
        "-v",
        "fresh:/etc",
        "-v",
        "empty:/data/sub:nocopy",
        &image,
        "true",
    ])?;
    // Copy-up: the empty named volumes took the image's /data and /etc, owners, modes and
    // symlinks as they are; nocopy left its volume empty.
    let kept = berth.root().join("volumes/kept/_data");
    let owned = std::fs::symlink_metadata(kept.join("owned"))?;
    assert_eq!(
        (owned.uid(), owned.gid(), owned.mode() & 0o7777),
        (berth.host_id(1000), berth.host_id(1000), 0o640)
    );
    assert_eq!(std::fs::read(kept.join("owned"))?, b"owned");
    assert_eq!(
        std::fs::read_link(kept.join("escape"))?,
        std::path::Path::new("/etc/berth-test-host-only")
    );
    assert_eq!(std::fs::read(kept.join("sub/f"))?, b"f\n");
    assert!(berth.root().join("volumes/fresh/_data/passwd").is_file());
    assert!(std::fs::read_dir(berth.root().join("volumes/empty/_data"))?
        .next()
        .is_none());

    let err = berth.fail(&["volume", "rm", "kept"])?;
    assert!(err.contains("volume is in use - [user1]"), "{err}");
    assert_eq!(
        berth.ok(&["volume", "ls", "-q", "--filter", "dangling=true"])?,
        ""
    );
    assert_eq!(
        names(&berth.ok(&["volume", "ls", "-q", "--filter", "dangling=false"])?),
        ["empty", "fresh", "kept"]
    );
    let out = berth.ok(&["volume", "prune", "-a", "-f"])?;
    assert_eq!(out, "Total reclaimed space: 0B\n");

    berth.ok(&["rm", "user1"])?;
    assert_eq!(berth.ok(&["volume", "rm", "kept"])?, "kept\n");
    let out = berth.ok(&["volume", "prune", "-a", "-f"])?;
    assert!(out.starts_with("Deleted Volumes:\n"), "{out}");
    assert_eq!(berth.ok(&["volume", "ls", "-q"])?, "");
    Ok(())
}
