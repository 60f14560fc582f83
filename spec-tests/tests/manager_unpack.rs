//! Unpacking images into snapshots, checked against umoci: the same multi-layer image (gzip,
//! zstd and plain layers with whiteouts, an opaque directory, hardlinks, symlinks, a setuid
//! file, devices, xattrs, long names, odd owners) is unpacked by `umoci unpack` and mounted by
//! `berth image mount` with each snapshotter, and the two trees must be identical.
//! Needs root (mounts, device nodes, ownership) and umoci.

use std::process::Command;

use anyhow::{bail, Result};
use spec_tests::manager::berth::Berth;
use spec_tests::manager::images::{Compression, Layout};
use spec_tests::manager::run;
use spec_tests::manager::unpack::{describe, diff, oci_archive, ImageMount, LayerTar};

const NAME: &str = "localhost/unpack-test:v1";

fn layers() -> Result<Vec<(Vec<u8>, Compression)>> {
    use tar::EntryType as E;
    let long_dir = format!("data/{}", "d".repeat(110));
    let long_file = format!("{long_dir}/{}", "long-file-name-".repeat(12));
    let cap = [
        1u8, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let base = LayerTar::new()
        .dir("./", 0o755, 0)?
        .dir("bin", 0o755, 0)?
        .file("bin/tool", 0o755, 0, b"#!/bin/sh\necho tool\n")?
        .dir("etc", 0o755, 0)?
        .file("etc/passwd", 0o644, 0, b"root:x:0:0::/root:/bin/sh\n")?
        .file("etc/hosts", 0o644, 0, b"127.0.0.1 localhost\n")?
        .hardlink("etc/hosts.hard", "etc/hosts")?
        .dir("usr", 0o755, 0)?
        .dir("usr/bin", 0o755, 0)?
        .file("usr/bin/su", 0o4755, 0, b"setuid")?
        .pax(&[("SCHILY.xattr.security.capability", &cap)])?
        .file("usr/bin/ping", 0o755, 0, b"ping")?
        .dir("usr/lib", 0o755, 0)?
        .file("usr/lib/libx.so", 0o644, 0, b"libx")?
        .symlink("lib", "usr/lib")?
        .symlink("abs-link", "/usr/bin/su")?
        .dir("tmp", 0o1777, 0)?
        .dir("dev", 0o755, 0)?
        .node(E::Char, "dev/null", 1, 3)?
        .node(E::Block, "dev/loop7", 7, 7)?
        .node(E::Fifo, "dev/fifo", 0, 0)?
        .dir("home", 0o755, 0)?
        .dir("home/user", 0o700, 1000)?
        .file("home/user/notes", 0o600, 1000, b"mine")?
        .dir("opt", 0o755, 0)?
        .dir("opt/old", 0o755, 0)?
        .file("opt/old/a", 0o644, 0, b"a")?
        .dir("opt/old/sub", 0o755, 0)?
        .file("opt/old/sub/b", 0o644, 0, b"b")?
        .dir("srv", 0o755, 0)?
        .dir("srv/app", 0o755, 0)?
        .file("srv/app/old", 0o644, 0, b"old")?
        .dir("var", 0o755, 0)?
        .dir("var/gone", 0o755, 0)?
        .file("var/gone/x", 0o644, 0, b"x")?
        .dir("data", 0o755, 0)?
        .pax(&[("SCHILY.xattr.user.comment", b"hello xattr")])?
        .file("data/with-xattr", 0o644, 0, b"x")?
        .dir("data/dir2file", 0o755, 0)?
        .file("data/dir2file/inner", 0o644, 0, b"inner")?
        .file("data/file2dir", 0o644, 0, b"file")?
        .dir(&long_dir, 0o755, 0)?
        .file(&long_file, 0o644, 0, b"long")?
        .pax(&[("uid", b"2000000"), ("gid", b"2000001")])?
        .file("data/big-ids", 0o640, 0, b"ids")?
        .finish()?;
    let middle = LayerTar::new()
        .dir("etc", 0o755, 0)?
        .marker("etc/.wh.hosts")?
        .file(
            "etc/passwd",
            0o644,
            0,
            b"root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
        )?
        .dir("opt/old", 0o755, 0)?
        .marker("opt/old/.wh..wh..opq")?
        .file("opt/old/new", 0o644, 0, b"new")?
        .marker("var/.wh.gone")?
        // Deleted and made again in one layer: the new directory has none of the old content.
        .marker("srv/.wh.app")?
        .dir("srv/app", 0o750, 0)?
        .file("srv/app/new", 0o644, 0, b"new")?
        .file("data/dir2file", 0o600, 0, b"now a file")?
        .dir("data/file2dir", 0o711, 0)?
        .file("data/file2dir/child", 0o644, 0, b"child")?
        .finish()?;
    let top = LayerTar::new()
        .file("etc/hosts", 0o644, 0, b"10.0.0.1 back\n")?
        .file("bin/tool", 0o700, 1000, b"replaced")?
        .hardlink("bin/tool-link", "bin/tool")?
        // Hardlinks to files of lower layers (one through the `lib` symlink).
        .hardlink("usr/lib/libx-link.so", "lib/libx.so")?
        .hardlink("etc/passwd-link", "etc/passwd")?
        .finish()?;
    Ok(vec![
        (base, Compression::Gzip),
        (middle, Compression::Zstd),
        (top, Compression::None),
    ])
}

struct Fixture {
    _dir: tempfile::TempDir,
    berth: Berth,
    bundle: std::path::PathBuf,
}

/// The test image as an OCI layout loaded into a fresh berth store, and unpacked by umoci.
/// umoci 0.4.7 (Debian 12) cannot read zstd layers, so it unpacks a twin image whose zstd
/// layers are gzip instead: same tars, same diffIDs, so the same tree.
fn fixture(layers: Vec<(Vec<u8>, Compression)>) -> Result<Fixture> {
    let dir = tempfile::Builder::new().prefix("berth-unpack-").tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let built = layout.image("amd64", &layers)?;
    layout.tag(NAME, &built)?;
    let mut twin = Layout::create(&dir.path().join("umoci-layout"))?;
    let gzip_only: Vec<_> = layers
        .into_iter()
        .map(|(tar, c)| match c {
            Compression::Zstd => (tar, Compression::Gzip),
            c => (tar, c),
        })
        .collect();
    let built = twin.image("amd64", &gzip_only)?;
    twin.tag("v1", &built)?;
    let bundle = dir.path().join("bundle");
    let image = format!("{}:v1", twin.dir().display());
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle))?;
    let archive = dir.path().join("image.tar");
    oci_archive(layout.dir(), &archive)?;
    let berth = Berth::new()?;
    berth.ok(&["load", "-i", &archive.to_string_lossy()])?;
    Ok(Fixture {
        _dir: dir,
        berth,
        bundle,
    })
}

fn compare_with_umoci(snapshotter: &str) -> Result<()> {
    let f = fixture(layers()?)?;
    let want = describe(&f.bundle.join("rootfs"))?;
    let mount = ImageMount::new(&f.berth, NAME, snapshotter)?;
    let got = describe(mount.path())?;
    let mut problems = diff(
        "umoci",
        &want.nodes,
        &format!("berth/{snapshotter}"),
        &got.nodes,
    );
    if want.hardlinks != got.hardlinks {
        problems.push(format!(
            "hardlinks: umoci {:?}, berth {:?}",
            want.hardlinks, got.hardlinks
        ));
    }
    // The fixture really exercises what it claims to.
    let cross_layer: Vec<std::path::PathBuf> = ["usr/lib/libx-link.so", "usr/lib/libx.so"]
        .iter()
        .map(Into::into)
        .collect();
    if !got.hardlinks.contains(&cross_layer) {
        problems.push(format!("no cross-layer hardlink in {:?}", got.hardlinks));
    }
    for must in [
        "usr/bin/su",
        "dev/null",
        "etc/hosts.hard",
        "data/file2dir/child",
    ] {
        if !got.nodes.contains_key(std::path::Path::new(must)) {
            problems.push(format!("{must} missing from berth's tree"));
        }
    }
    for (path, xattr) in [
        ("data/with-xattr", "user.comment"),
        ("usr/bin/ping", "security.capability"),
    ] {
        if !got
            .nodes
            .get(std::path::Path::new(path))
            .is_some_and(|n| n.xattrs.contains_key(xattr))
        {
            problems.push(format!("{path} lacks {xattr} in berth's tree"));
        }
    }
    mount.unmount()?;
    if !problems.is_empty() {
        bail!(
            "berth ({snapshotter}) and umoci disagree on {} paths:\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
    // A second mount reuses the committed layers: nothing is unpacked again.
    let meta = f
        .berth
        .root()
        .join("snapshots")
        .join(snapshotter)
        .join("metadata.json");
    let before = std::fs::read(&meta)?;
    let again = ImageMount::new(&f.berth, NAME, snapshotter)?;
    again.unmount()?;
    let after: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta)?)?;
    let snapshots = after["snapshots"].as_object().cloned().unwrap_or_default();
    if snapshots.len() != 3 || snapshots.values().any(|s| s["kind"] != "committed") {
        bail!("expected the 3 committed layers only, got {after}");
    }
    let before: serde_json::Value = serde_json::from_slice(&before)?;
    if before["snapshots"] != after["snapshots"] {
        bail!("remounting changed the committed snapshots:\n{before}\n{after}");
    }
    Ok(())
}

#[test]
fn overlay_snapshots_unpack_the_same_tree_as_umoci() -> Result<()> {
    compare_with_umoci("overlay")
}

#[test]
fn copy_snapshots_unpack_the_same_tree_as_umoci() -> Result<()> {
    compare_with_umoci("copy")
}

#[test]
fn a_layer_climbing_out_of_the_root_is_refused_naming_the_entry() -> Result<()> {
    let evil = LayerTar::new()
        .file("ok", 0o644, 0, b"fine")?
        .raw_file("a/../../../../escaped-by-berth-test", b"x")?
        .finish()?;
    let dir = tempfile::Builder::new().prefix("berth-unpack-").tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let built = layout.image("amd64", &[(evil, Compression::Gzip)])?;
    layout.tag(NAME, &built)?;
    let archive = dir.path().join("image.tar");
    oci_archive(layout.dir(), &archive)?;
    let berth = Berth::new()?;
    berth.ok(&["load", "-i", &archive.to_string_lossy()])?;
    for snapshotter in ["overlay", "copy"] {
        let mnt = tempfile::tempdir()?;
        let err = berth.fail(&[
            "image",
            "mount",
            "--snapshotter",
            snapshotter,
            NAME,
            &mnt.path().to_string_lossy(),
        ])?;
        if !err.contains("a/../../../../escaped-by-berth-test") || !err.contains("escapes the root")
        {
            bail!("{snapshotter}: unclear error: {err}");
        }
        let meta = berth
            .root()
            .join("snapshots")
            .join(snapshotter)
            .join("metadata.json");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(meta)?)?;
        if v["snapshots"].as_object().is_some_and(|m| !m.is_empty()) {
            bail!("{snapshotter}: a refused layer left snapshots: {v}");
        }
    }
    let leaked = spec_tests::manager::files_under(&berth.root())
        .into_iter()
        .chain(spec_tests::manager::files_under(dir.path()))
        .any(|p| p.ends_with("escaped-by-berth-test"));
    if leaked || std::path::Path::new("/escaped-by-berth-test").exists() {
        bail!("the escaping entry was written somewhere");
    }
    Ok(())
}

#[test]
fn concurrent_mounts_share_one_unpack_of_each_layer() -> Result<()> {
    let f = fixture(layers()?)?;
    for snapshotter in ["overlay", "copy"] {
        let mounts: Vec<Result<ImageMount>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|_| s.spawn(|| ImageMount::new(&f.berth, NAME, snapshotter)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| bail!("mount thread panicked")))
                .collect()
        });
        let mounts: Vec<ImageMount> = mounts.into_iter().collect::<Result<_>>()?;
        let meta = f
            .berth
            .root()
            .join("snapshots")
            .join(snapshotter)
            .join("metadata.json");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta)?)?;
        let snapshots = v["snapshots"].as_object().cloned().unwrap_or_default();
        let count = |kind: &str| snapshots.values().filter(|s| s["kind"] == kind).count();
        if (count("committed"), count("view"), snapshots.len()) != (3, 3, 6) {
            bail!("{snapshotter}: expected 3 layers and 3 views, got {v}");
        }
        for m in &mounts {
            if !m.path().join("usr/bin/su").exists() {
                bail!("{snapshotter}: {} is not mounted", m.path().display());
            }
        }
        for m in mounts {
            m.unmount()?;
        }
        // Racers that lost a commit removed their own copies: one directory per layer.
        let dirs = std::fs::read_dir(meta.with_file_name("snapshots"))?.count();
        let leftovers: Vec<_> = std::fs::read_dir(meta.with_file_name(""))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("removing-") || n.contains(".tmp-"))
            .collect();
        if dirs != 3 || !leftovers.is_empty() {
            bail!("{snapshotter}: {dirs} snapshot directories, leftovers {leftovers:?}");
        }
    }
    Ok(())
}

#[test]
fn a_layer_whose_diff_id_differs_from_the_config_is_refused() -> Result<()> {
    let dir = tempfile::Builder::new().prefix("berth-unpack-").tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let real = LayerTar::new().file("f", 0o644, 0, b"real")?.finish()?;
    let claimed = LayerTar::new().file("f", 0o644, 0, b"fake")?.finish()?;
    // A well-formed image whose config names another layer's diffID.
    let layer = layout.blob(
        &spec_tests::manager::images::compress(&real, Compression::Gzip)?,
        "application/vnd.oci.image.layer.v1.tar+gzip",
    )?;
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [spec_tests::manager::sha256(&claimed)]},
    });
    let config = layout.blob(
        &serde_json::to_vec(&config)?,
        spec_tests::manager::images::OCI_CONFIG,
    )?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": spec_tests::manager::images::OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
    });
    let manifest = layout.blob(
        &serde_json::to_vec(&manifest)?,
        spec_tests::manager::images::OCI_MANIFEST,
    )?;
    let built = spec_tests::manager::images::Built {
        manifest,
        config: Some(config),
        layers: vec![layer],
    };
    layout.tag(NAME, &built)?;
    let archive = dir.path().join("image.tar");
    oci_archive(layout.dir(), &archive)?;
    let berth = Berth::new()?;
    berth.ok(&["load", "-i", &archive.to_string_lossy()])?;
    for snapshotter in ["overlay", "copy"] {
        let mnt = tempfile::tempdir()?;
        let err = berth.fail(&[
            "image",
            "mount",
            "--snapshotter",
            snapshotter,
            NAME,
            &mnt.path().to_string_lossy(),
        ])?;
        let want = format!(
            "but the config says {}",
            spec_tests::manager::sha256(&claimed)
        );
        if !err.contains(&want) || !err.contains(&spec_tests::manager::sha256(&real)) {
            bail!("{snapshotter}: unclear error: {err}");
        }
        let meta = berth
            .root()
            .join("snapshots")
            .join(snapshotter)
            .join("metadata.json");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(meta)?)?;
        if v["snapshots"].as_object().is_some_and(|m| !m.is_empty()) {
            bail!("{snapshotter}: a refused layer left snapshots: {v}");
        }
    }
    Ok(())
}

/// Opt-in, slow: `BERTH_TEST_UNPACK_IMAGE=LAYOUT:TAG` names an OCI layout (e.g. the Debian
/// image hack/bench-pull caches in .hack-cache/bench/debian-oci:bookworm) to compare whole.
#[test]
fn a_real_image_unpacks_like_umoci() -> Result<()> {
    let Some(image) = std::env::var_os("BERTH_TEST_UNPACK_IMAGE") else {
        eprintln!("skipped: set BERTH_TEST_UNPACK_IMAGE=LAYOUT:TAG to compare a real image");
        return Ok(());
    };
    let image = image.to_string_lossy().into_owned();
    let Some((layout, _tag)) = image.rsplit_once(':') else {
        bail!("BERTH_TEST_UNPACK_IMAGE={image}: expected LAYOUT:TAG");
    };
    let dir = tempfile::Builder::new().prefix("berth-unpack-").tempdir()?;
    let bundle = dir.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle))?;
    let archive = dir.path().join("image.tar");
    oci_archive(std::path::Path::new(layout), &archive)?;
    let berth = Berth::new()?;
    berth.ok(&["load", "-i", &archive.to_string_lossy()])?;
    let images = berth.images()?;
    let id = images
        .first()
        .and_then(|i| i["ID"].as_str())
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no image loaded from {layout}"))?;
    let want = describe(&bundle.join("rootfs"))?;
    for snapshotter in ["overlay", "copy"] {
        let mount = ImageMount::new(&berth, &id, snapshotter)?;
        let got = describe(mount.path())?;
        mount.unmount()?;
        let mut problems = diff("umoci", &want.nodes, snapshotter, &got.nodes);
        if want.hardlinks != got.hardlinks {
            problems.push("hardlink groups differ".to_string());
        }
        if !problems.is_empty() {
            bail!(
                "{snapshotter}: {} differences, first ones:\n{}",
                problems.len(),
                problems[..problems.len().min(20)].join("\n")
            );
        }
    }
    Ok(())
}
