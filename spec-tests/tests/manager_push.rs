//! `berth push` checked with skopeo: exact manifest bytes (digests survive pull → push),
//! existing-blob checks, cross-repository mounts, `--all-tags`, and tag/rmi around it.

use anyhow::Result;
use spec_tests::manager::berth::Berth;
use spec_tests::manager::images::{busybox_image, Compression, Layout};
use spec_tests::manager::registry::Registry;
use spec_tests::manager::{sha256, skopeo, skopeo_raw_manifest};

#[test]
fn pulled_images_pushed_elsewhere_keep_their_manifest_digest() -> Result<()> {
    let src = Registry::plain()?;
    let dst = Registry::plain()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let berth = Berth::new()?;
    for (tag, c, extra) in [
        ("gzip", Compression::Gzip, &[][..]),
        ("zstd", Compression::Zstd, &[][..]),
        ("plain", Compression::None, &[][..]),
        ("v2s2", Compression::Gzip, &["--format", "v2s2"][..]),
    ] {
        busybox_image(&mut layout, tag, c)?;
        let from = format!("{}/origin/bb:{tag}", src.host());
        layout.push(tag, &from, extra)?;
        let original = skopeo_raw_manifest(&from, &[])?;
        berth.ok(&["pull", &from])?;
        let to = format!("{}/copy/bb:{tag}", dst.host());
        berth.ok(&["tag", &from, &to])?;
        let out = berth.ok(&["push", &to])?;
        assert!(
            out.contains(&format!("{tag}: digest: {}", sha256(&original))),
            "{out}"
        );
        let pushed = skopeo_raw_manifest(&to, &[])?;
        assert_eq!(
            pushed, original,
            "{tag}: manifest bytes changed by the round trip"
        );
        // skopeo pulls what berth pushed, verifying every blob digest.
        let oci = dir.path().join(format!("check-{tag}"));
        skopeo(&[
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &format!("docker://{to}"),
            &format!("oci:{}:x", oci.display()),
        ])?;
    }
    Ok(())
}

#[test]
fn push_skips_existing_blobs_and_mounts_from_other_repositories() -> Result<()> {
    let reg = Registry::plain()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let built = busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let a = format!("{}/team-a/bb:v1", reg.host());
    layout.push("v1", &a, &[])?;
    let berth = Berth::new()?;
    berth.ok(&["pull", &a])?;

    let b = format!("{}/team-b/bb:v1", reg.host());
    berth.ok(&["tag", &a, &b])?;
    let out = berth.ok(&["push", &b])?;
    for layer in &built.layers {
        let short = &layer.digest["sha256:".len().."sha256:".len() + 12];
        assert!(
            out.contains(&format!("{short}: Mounted from team-a/bb")),
            "{out}"
        );
    }
    assert_eq!(
        sha256(&skopeo_raw_manifest(&b, &[])?),
        built.manifest.digest
    );
    let again = berth.ok(&["push", &b])?;
    assert_eq!(again.matches("Layer already exists").count(), 3, "{again}");
    assert!(!again.contains("Pushed"), "{again}");
    Ok(())
}

#[test]
fn push_all_tags_and_missing_images() -> Result<()> {
    let reg = Registry::plain()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let a = format!("{}/src/bb:v1", reg.host());
    layout.push("v1", &a, &[])?;
    let berth = Berth::new()?;
    berth.ok(&["pull", &a])?;
    let repo = format!("{}/many/bb", reg.host());
    for t in ["1", "2", "3"] {
        berth.ok(&["tag", &a, &format!("{repo}:{t}")])?;
    }
    berth.ok(&["push", "--all-tags", &repo])?;
    let tags = skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{repo}"),
    ])?;
    let tags: serde_json::Value = serde_json::from_slice(&tags.stdout)?;
    let mut tags: Vec<&str> = tags["Tags"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str()).collect())
        .unwrap_or_default();
    tags.sort();
    assert_eq!(tags, ["1", "2", "3"]);

    let nope = format!("{}/nope/bb:1", reg.host());
    let err = berth.fail(&["push", &nope])?;
    // docker's words.
    assert!(
        err.contains(&format!(
            "An image does not exist locally with the tag: {nope}"
        )),
        "{err}"
    );
    Ok(())
}

#[test]
fn rmi_untags_and_collects_unreferenced_blobs() -> Result<()> {
    let reg = Registry::plain()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let a = format!("{}/rm/bb:v1", reg.host());
    layout.push("v1", &a, &[])?;
    let berth = Berth::new()?;
    berth.ok(&["pull", &a])?;
    let b = format!("{}/rm/bb:other", reg.host());
    berth.ok(&["tag", &a, &b])?;
    let id = berth.ok(&["images", "-q"])?.trim().to_string();
    assert_eq!(id.len(), 12);

    // An ID with two names needs --force.
    let err = berth.fail(&["rmi", &id])?;
    assert!(err.contains("must be forced"), "{err}");
    let out = berth.ok(&["rmi", &b])?;
    assert!(out.contains(&format!("Untagged: {b}")), "{out}");
    assert!(!out.contains("Deleted"), "{out}");
    assert_eq!(berth.blobs().len(), 4);
    let out = berth.ok(&["rmi", &id])?;
    assert!(out.contains("Deleted: sha256:"), "{out}");
    assert!(berth.blobs().is_empty(), "{:?}", berth.blobs());
    assert!(berth.images()?.is_empty());
    let err = berth.fail(&["rmi", &a])?;
    assert!(err.contains("No such image"), "{err}");
    Ok(())
}

/// RepoDigests as docker keeps them: only a name its registry knows (pulled, or pushed) has a
/// `repo@digest`; a tag given locally in another repository has none, one in the same
/// repository shares the repository's; `images --digests` shows `<none>` where there is none.
#[test]
fn repo_digests_only_for_names_a_registry_knows() -> Result<()> {
    let reg = Registry::plain()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let berth = Berth::new()?;
    busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let pulled = format!("{}/origin/bb:v1", reg.host());
    layout.push("v1", &pulled, &[])?;
    berth.ok(&["pull", &pulled])?;
    let digest = sha256(&skopeo_raw_manifest(&pulled, &[])?);
    let repo_digests = |name: &str| -> Result<Vec<String>> {
        let out = berth.ok(&[
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            name,
        ])?;
        Ok(serde_json::from_str(out.trim())?)
    };
    let origin = format!("{}/origin/bb@{digest}", reg.host());
    assert_eq!(repo_digests(&pulled)?, vec![origin.clone()]);
    // A local tag elsewhere adds no digest; one in the same repository adds no second one.
    let local = format!("{}/local/bb:v1", reg.host());
    berth.ok(&["tag", &pulled, &local])?;
    berth.ok(&["tag", &pulled, &format!("{}/origin/bb:mine", reg.host())])?;
    assert_eq!(repo_digests(&local)?, vec![origin.clone()]);
    let rows = berth.ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.Digest}}",
    ])?;
    for (name, want) in [
        ("origin/bb:v1", digest.as_str()),
        ("origin/bb:mine", digest.as_str()),
        ("local/bb:v1", "<none>"),
    ] {
        let row = format!("{}/{name} {want}", reg.host());
        assert!(rows.lines().any(|l| l == row), "{row} not in\n{rows}");
    }
    // The pulled tag removed, the repository's other tag keeps the digest.
    berth.ok(&["rmi", &pulled])?;
    assert_eq!(repo_digests(&local)?, vec![origin.clone()]);
    // A push makes the pushed repository's digest known.
    berth.ok(&["push", &local])?;
    let mut both = vec![origin, format!("{}/local/bb@{digest}", reg.host())];
    both.sort();
    assert_eq!(repo_digests(&local)?, both);
    // A loaded image's names are local only.
    let tar = dir.path().join("bb.tar");
    berth.ok(&["save", "-o", &tar.display().to_string(), &local])?;
    let other = Berth::new()?;
    other.ok(&["load", "-i", &tar.display().to_string()])?;
    let out = other.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &local,
    ])?;
    assert_eq!(out.trim(), "[]");
    Ok(())
}
