//! `berth pull` against a real docker-registry, with images pushed by skopeo (the oracle):
//! OCI and docker schema2 manifests, gzip / zstd / uncompressed layers, platform selection
//! from an index, digest references, `--all-tags`, and the store's listing commands.

use anyhow::Result;
use spec_tests::manager::berth::Berth;
use spec_tests::manager::images::{busybox_image, Compression, Layout};
use spec_tests::manager::registry::Registry;
use spec_tests::manager::{sha256, skopeo_raw_manifest};

fn setup() -> Result<(Registry, tempfile::TempDir, Berth)> {
    let reg = Registry::plain()?;
    let dir = tempfile::tempdir()?;
    Ok((reg, dir, Berth::new()?))
}

#[test]
fn pull_of_each_layer_compression_stores_the_exact_blobs_skopeo_pushed() -> Result<()> {
    let (reg, dir, berth) = setup()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    for (tag, c) in [
        ("gzip", Compression::Gzip),
        ("zstd", Compression::Zstd),
        ("plain", Compression::None),
    ] {
        let built = busybox_image(&mut layout, tag, c)?;
        let dest = format!("{}/test/busybox:{tag}", reg.host());
        layout.push(tag, &dest, &[])?;
        let out = berth.ok(&["pull", &dest])?;
        assert!(
            out.contains(&format!("Digest: {}", built.manifest.digest)),
            "{out}"
        );
        assert!(out.contains("Pull complete"), "{out}");
        assert!(
            out.contains(&format!("Status: Downloaded newer image for {dest}")),
            "{out}"
        );
        let blobs = berth.blobs();
        for b in built
            .layers
            .iter()
            .chain(built.config.iter())
            .chain([&built.manifest])
        {
            assert!(blobs.contains(&b.digest), "{} missing from store", b.digest);
            let stored = std::fs::read(
                berth
                    .root()
                    .join("blobs/sha256")
                    .join(b.digest.trim_start_matches("sha256:")),
            )?;
            assert_eq!(sha256(&stored), b.digest);
        }
        // The registry's manifest (read by skopeo) is byte-for-byte what berth stored.
        let raw = skopeo_raw_manifest(&dest, &[])?;
        assert_eq!(sha256(&raw), built.manifest.digest);
    }
    assert!(
        berth.ingests().is_empty(),
        "ingest left: {:?}",
        berth.ingests()
    );
    let images = berth.images()?;
    assert_eq!(images.len(), 3, "{images:?}");
    let table = berth.ok(&["images"])?;
    let header = table.lines().next().unwrap_or_default();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{header}");
    }
    assert!(
        table.contains(&format!("{}/test/busybox", reg.host())),
        "{table}"
    );
    assert!(table.contains("zstd"), "{table}");
    Ok(())
}

#[test]
fn second_pull_is_up_to_date_and_shares_blobs() -> Result<()> {
    let (reg, dir, berth) = setup()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let a = format!("{}/a/bb:v1", reg.host());
    let b = format!("{}/b/bb:v1", reg.host());
    layout.push("v1", &a, &[])?;
    layout.push("v1", &b, &[])?;
    berth.ok(&["pull", &a])?;
    let blobs = berth.blobs();
    let out = berth.ok(&["pull", &a])?;
    assert!(out.contains("Image is up to date"), "{out}");
    let out = berth.ok(&["pull", &b])?;
    assert!(out.contains("Already exists"), "{out}");
    assert_eq!(berth.blobs(), blobs);
    let quiet = berth.ok(&["pull", "-q", &a])?;
    assert_eq!(quiet.trim(), a);
    let digests = berth.ok(&["images", "--digests"])?;
    assert!(
        digests
            .lines()
            .next()
            .unwrap_or_default()
            .contains("DIGEST"),
        "{digests}"
    );
    let templated = berth.ok(&["images", "--format", "{{json .}}"])?;
    for line in templated.lines() {
        let row: serde_json::Value = serde_json::from_str(line)?;
        assert!(
            digests.contains(row["Digest"].as_str().unwrap_or("?")),
            "{digests}"
        );
    }
    Ok(())
}

#[test]
fn platform_is_selected_from_an_index() -> Result<()> {
    let (reg, dir, berth) = setup()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let busybox = spec_tests::manager::images::busybox_layer()?;
    let amd = layout.image("amd64", &[(busybox.clone(), Compression::Gzip)])?;
    let arm = layout.image(
        "arm64",
        &[(
            spec_tests::manager::images::file_layer("arm", b"arm64")?,
            Compression::Gzip,
        )],
    )?;
    let index = layout.index(&[(&amd, "amd64"), (&arm, "arm64")])?;
    layout.tag("multi", &index)?;
    let dest = format!("{}/multi/app:1", reg.host());
    layout.push("multi", &dest, &["--all"])?;

    let out = berth.ok(&["pull", &dest])?;
    assert!(
        out.contains(&format!("Digest: {}", index.manifest.digest)),
        "{out}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&berth.ok(&["image", "inspect", &dest])?)?;
    assert_eq!(inspect[0]["Architecture"], "amd64");
    assert_eq!(inspect[0]["Manifest"]["Digest"], amd.manifest.digest);
    assert_eq!(inspect[0]["Manifest"]["IndexDigest"], index.manifest.digest);
    assert!(!berth.blobs().contains(&arm.layers[0].digest));

    let other = Berth::new()?;
    other.ok(&["pull", "--platform", "linux/arm64", &dest])?;
    let inspect: serde_json::Value =
        serde_json::from_str(&other.ok(&["image", "inspect", &dest])?)?;
    assert_eq!(inspect[0]["Architecture"], "arm64");
    assert!(other.blobs().contains(&arm.layers[0].digest));

    let err = Berth::new()?.fail(&["pull", "--platform", "linux/s390x", &dest])?;
    assert!(
        err.contains("no manifest for platform linux/s390x"),
        "{err}"
    );
    assert!(err.contains("linux/amd64, linux/arm64"), "{err}");

    // A single-platform image is checked against --platform through its config.
    layout.tag("single", &amd)?;
    let single = format!("{}/multi/single:1", reg.host());
    layout.push("single", &single, &[])?;
    let clean = Berth::new()?;
    let err = clean.fail(&["pull", "--platform", "linux/arm64", &single])?;
    assert!(
        err.contains(
            "does not match the specified platform: wanted linux/arm64, actual: linux/amd64"
        ),
        "{err}"
    );
    assert!(clean.blobs().is_empty() && clean.ingests().is_empty());
    clean.ok(&["pull", "--platform", "linux/amd64", &single])?;
    Ok(())
}

#[test]
fn docker_schema2_manifest_is_pulled_and_kept_byte_for_byte() -> Result<()> {
    let (reg, dir, berth) = setup()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    busybox_image(&mut layout, "v2", Compression::Gzip)?;
    let dest = format!("{}/docker/bb:v2s2", reg.host());
    layout.push("v2", &dest, &["--format", "v2s2"])?;
    let raw = skopeo_raw_manifest(&dest, &[])?;
    let raw_json: serde_json::Value = serde_json::from_slice(&raw)?;
    assert_eq!(
        raw_json["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    berth.ok(&["pull", &dest])?;
    let inspect: serde_json::Value =
        serde_json::from_str(&berth.ok(&["image", "inspect", &dest])?)?;
    assert_eq!(inspect[0]["Manifest"]["Digest"], sha256(&raw));
    assert_eq!(
        inspect[0]["Manifest"]["MediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    Ok(())
}

#[test]
fn digest_references_and_all_tags() -> Result<()> {
    let (reg, dir, berth) = setup()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let one = busybox_image(&mut layout, "one", Compression::Gzip)?;
    busybox_image(&mut layout, "two", Compression::Gzip)?;
    let repo = format!("{}/tags/bb", reg.host());
    layout.push("one", &format!("{repo}:one"), &[])?;
    layout.push("two", &format!("{repo}:two"), &[])?;

    let by_digest = format!("{repo}@{}", one.manifest.digest);
    berth.ok(&["pull", &by_digest])?;
    let images = berth.images()?;
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["Tag"], "<none>");
    assert_eq!(images[0]["Digest"], one.manifest.digest);

    let wrong = format!("{repo}@sha256:{}", "0".repeat(64));
    let err = berth.fail(&["pull", &wrong])?;
    assert!(err.contains("not found"), "{err}");

    berth.ok(&["pull", "--all-tags", &repo])?;
    let tags: Vec<String> = berth
        .images()?
        .iter()
        .map(|i| i["Tag"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        tags.contains(&"one".to_string()) && tags.contains(&"two".to_string()),
        "{tags:?}"
    );
    let err = berth.fail(&["pull", "-a", &format!("{repo}:one")])?;
    assert!(err.contains("--all-tags"), "{err}");
    Ok(())
}

#[test]
fn a_terminal_gets_progress_bars() -> Result<()> {
    let (reg, dir, berth) = setup()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    busybox_image(&mut layout, "tty", Compression::Gzip)?;
    let dest = format!("{}/tty/bb:1", reg.host());
    layout.push("tty", &dest, &[])?;
    // script(1) gives berth a pseudo-terminal as stdout.
    let cmd = berth.cmd(&["pull", &dest])?;
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &line.join(" "), "/dev/null"]);
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            script.env(k, v);
        }
    }
    let out = spec_tests::manager::run(&mut script)?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Pull complete"), "{text}");
    assert!(
        text.contains("\u{1b}["),
        "no terminal control sequences: {text}"
    );
    assert!(text.contains("/s"), "no transfer rate shown: {text}");
    Ok(())
}
