//! `berth save` / `berth load` against skopeo's docker-archive and oci-archive transports,
//! both directions, and `image prune`.

use anyhow::Result;
use spec_tests::manager::berth::Berth;
use spec_tests::manager::images::{busybox_image, Compression, Layout};
use spec_tests::manager::registry::Registry;
use spec_tests::manager::{sha256, skopeo};

struct Setup {
    reg: Registry,
    dir: tempfile::TempDir,
    berth: Berth,
    image: String,
    manifest_digest: String,
    config_digest: String,
}

fn setup(c: Compression) -> Result<Setup> {
    let reg = Registry::plain()?;
    let dir = spec_tests::manager::berth::test_dir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let built = busybox_image(&mut layout, "v1", c)?;
    let image = format!("{}/arch/bb:v1", reg.host());
    layout.push("v1", &image, &[])?;
    let berth = Berth::new()?;
    berth.ok(&["pull", &image])?;
    Ok(Setup {
        reg,
        dir,
        berth,
        image,
        manifest_digest: built.manifest.digest,
        config_digest: built.config.map(|c| c.digest).unwrap_or_default(),
    })
}

#[test]
fn docker_archive_from_save_is_read_by_skopeo_and_loads_back() -> Result<()> {
    for c in [Compression::Gzip, Compression::Zstd] {
        let s = setup(c)?;
        let tar = s.dir.path().join("bb.tar");
        s.berth
            .ok(&["save", "-o", &tar.to_string_lossy(), &s.image])?;
        // skopeo reads the archive: same config (image ID), uncompressed layers.
        let raw = skopeo(&[
            "inspect",
            "--raw",
            &format!("docker-archive:{}", tar.display()),
        ])?;
        let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout)?;
        assert_eq!(manifest["config"]["digest"], s.config_digest);
        let oci = s.dir.path().join("from-archive");
        skopeo(&[
            "copy",
            "--quiet",
            &format!("docker-archive:{}", tar.display()),
            &format!("oci:{}:x", oci.display()),
        ])?;
        // skopeo finds the image by the name in the archive's RepoTags.
        skopeo(&[
            "copy",
            "--quiet",
            &format!("docker-archive:{}:{}", tar.display(), s.image),
            &format!("oci:{}:by-name", oci.display()),
        ])?;

        let fresh = Berth::new()?;
        let out = fresh.ok(&["load", "-i", &tar.to_string_lossy()])?;
        assert!(out.contains(&format!("Loaded image: {}", s.image)), "{out}");
        let images = fresh.images()?;
        assert_eq!(images.len(), 1);
        assert_eq!(images[0]["ID"], s.config_digest);
        // The loaded image pushes, and skopeo can copy it from the registry.
        let again = format!("{}/loaded/bb:v1", s.reg.host());
        fresh.ok(&["tag", &s.image, &again])?;
        fresh.ok(&["push", &again])?;
        skopeo(&[
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &format!("docker://{again}"),
            &format!("oci:{}:y", oci.display()),
        ])?;
    }
    Ok(())
}

#[test]
fn oci_archive_keeps_manifest_digests_both_ways() -> Result<()> {
    let s = setup(Compression::Gzip)?;
    let tar = s.dir.path().join("bb-oci.tar");
    s.berth.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        &tar.to_string_lossy(),
        &s.image,
    ])?;
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}:v1", tar.display()),
    ])?;
    assert_eq!(sha256(&raw.stdout), s.manifest_digest);

    // skopeo writes an oci-archive from the registry; berth loads it with the same digest.
    let from_skopeo = s.dir.path().join("skopeo-oci.tar");
    let name = format!("{}/arch/bb:v1", s.reg.host());
    skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{}", s.image),
        &format!("oci-archive:{}:{name}", from_skopeo.display()),
    ])?;
    let fresh = Berth::new()?;
    let out = fresh.ok(&["load", "-i", &from_skopeo.to_string_lossy()])?;
    assert!(out.contains(&format!("Loaded image: {name}")), "{out}");
    let inspect: serde_json::Value =
        serde_json::from_str(&fresh.ok(&["image", "inspect", &name])?)?;
    assert_eq!(inspect[0]["Manifest"]["Digest"], s.manifest_digest);

    // Through stdin/stdout too.
    let saved = s
        .berth
        .cmd(&["save", "--format", "oci-archive", &s.image])?
        .output()?;
    assert!(saved.status.success());
    let third = Berth::new()?;
    let mut load = third
        .cmd(&["load"])?
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = load.stdin.take() {
        std::io::Write::write_all(&mut stdin, &saved.stdout)?;
    }
    assert!(load.wait_with_output()?.status.success());
    // A loaded image has no repository digest (docker's `<none>`); its manifest keeps its own.
    let row = &third.images()?[0];
    assert_eq!(row["Digest"], "<none>");
    let id = row["ID"].as_str().unwrap_or_default().to_string();
    let inspect: serde_json::Value = serde_json::from_str(&third.ok(&["image", "inspect", &id])?)?;
    assert_eq!(inspect[0]["Manifest"]["Digest"], s.manifest_digest);
    Ok(())
}

#[test]
fn docker_archive_written_by_skopeo_loads() -> Result<()> {
    let s = setup(Compression::Gzip)?;
    let tar = s.dir.path().join("skopeo-docker.tar");
    skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{}", s.image),
        &format!("docker-archive:{}:example.com/from/skopeo:1", tar.display()),
    ])?;
    let fresh = Berth::new()?;
    let out = fresh.ok(&["load", "-i", &tar.to_string_lossy()])?;
    assert!(
        out.contains("Loaded image: example.com/from/skopeo:1"),
        "{out}"
    );
    let images = fresh.images()?;
    assert_eq!(images[0]["ID"], s.config_digest);
    assert!(fresh.ingests().is_empty());
    Ok(())
}

#[test]
fn image_prune_removes_unnamed_images_stale_ingests_and_everything_with_all() -> Result<()> {
    let s = setup(Compression::Gzip)?;
    let stale = s.berth.root().join("ingest").join("sha256-deadbeef");
    std::fs::write(&stale, b"partial")?;
    let out = s.berth.ok(&["image", "prune", "-f"])?;
    assert!(out.contains("Total reclaimed space: 7B"), "{out}");
    assert!(!stale.exists());
    assert_eq!(s.berth.images()?.len(), 1);
    let out = s.berth.ok(&["image", "prune", "-a", "-f"])?;
    assert!(out.contains(&format!("untagged: {}", s.image)), "{out}");
    assert!(s.berth.blobs().is_empty());
    assert!(s.berth.images()?.is_empty());
    Ok(())
}

#[test]
fn docker_archive_with_a_corrupt_layer_is_refused_and_leaves_nothing() -> Result<()> {
    let s = setup(Compression::Gzip)?;
    let tar = s.dir.path().join("good.tar");
    s.berth
        .ok(&["save", "-o", &tar.to_string_lossy(), &s.image])?;
    // Rewrite the archive with one byte of the first layer.tar flipped (same size).
    let bad = s.dir.path().join("bad.tar");
    let mut out = ::tar::Builder::new(std::fs::File::create(&bad)?);
    let mut flipped = false;
    for entry in ::tar::Archive::new(std::fs::File::open(&tar)?).entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data)?;
        if !flipped && path.ends_with("layer.tar") {
            let mid = data.len() / 2;
            data[mid] ^= 0xff;
            flipped = true;
        }
        let mut header = entry.header().clone();
        out.append_data(&mut header, &path, &data[..])?;
    }
    out.into_inner()?;
    assert!(flipped);
    let fresh = Berth::new()?;
    let err = fresh.fail(&["load", "-i", &bad.to_string_lossy()])?;
    assert!(err.contains("does not match its diff ID"), "{err}");
    assert!(fresh.images()?.is_empty());
    assert!(fresh.blobs().is_empty(), "{:?}", fresh.blobs());
    assert!(fresh.ingests().is_empty());
    Ok(())
}
