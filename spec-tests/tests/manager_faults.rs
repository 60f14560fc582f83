//! Failures a pull must survive or report cleanly: the registry killed mid-blob and restarted
//! (the download resumes with a Range request), a blob tampered with in the registry's storage
//! (digest mismatch: error, nothing committed), unknown tags and hosts, and several `berth`
//! processes sharing one store.

use std::io::Read;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use spec_tests::manager::berth::Berth;
use spec_tests::manager::images::{
    busybox_image, busybox_layer, file_layer, noise, Compression, Layout,
};
use spec_tests::manager::proxy::Proxy;
use spec_tests::manager::registry::Registry;

fn assert_store_clean(berth: &Berth) -> Result<()> {
    assert!(
        berth.images()?.is_empty(),
        "images left: {:?}",
        berth.images()?
    );
    assert!(berth.blobs().is_empty(), "blobs left: {:?}", berth.blobs());
    assert!(
        berth.ingests().is_empty(),
        "ingests left: {:?}",
        berth.ingests()
    );
    Ok(())
}

#[test]
fn registry_killed_mid_blob_then_restarted_resumes_with_range() -> Result<()> {
    let mut reg = Registry::plain()?;
    let dir = tempfile::tempdir()?;
    let layout_dir = dir.path().join("layout");
    let mut layout = Layout::create(&layout_dir)?;
    let big = file_layer("data/noise", &noise(8 << 20, 7))?;
    let built = layout.image(
        "amd64",
        &[
            (busybox_layer()?, Compression::Gzip),
            (big, Compression::None),
        ],
    )?;
    layout.tag("big", &built)?;
    layout.push("big", &format!("{}/big/img:1", reg.host()), &[])?;
    let port: u16 = reg.host().rsplit(':').next().unwrap_or("0").parse()?;
    let proxy = Proxy::start(port)?;

    let berth = Berth::new()?;
    let image = format!("{}/big/img:1", proxy.host());
    let mut child = berth
        .cmd(&["pull", &image])?
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // Wait until a good part of the big layer is on disk, then crash the registry.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let partial = berth
            .ingests()
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .max()
            .unwrap_or(0);
        if partial >= 2 << 20 {
            break;
        }
        if Instant::now() > deadline {
            // Kill is best effort; the test fails either way.
            let _ = child.kill();
            bail!("the download never got under way");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    reg.kill();
    std::thread::sleep(Duration::from_millis(700));
    reg.restart()?;
    let status = child.wait()?;
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_string(&mut stdout)?;
    }
    if let Some(mut s) = child.stderr.take() {
        s.read_to_string(&mut stderr)?;
    }
    assert!(status.success(), "pull failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("Retrying in"), "{stdout}");
    assert!(stdout.contains("Resuming download at byte"), "{stdout}");
    assert!(
        proxy.sent().to_lowercase().contains("range: bytes="),
        "no Range request reached the registry"
    );
    let blobs = berth.blobs();
    for b in &built.layers {
        assert!(blobs.contains(&b.digest), "{} missing", b.digest);
    }
    assert!(berth.ingests().is_empty(), "{:?}", berth.ingests());
    Ok(())
}

#[test]
fn tampered_blob_fails_the_pull_and_commits_nothing() -> Result<()> {
    let reg = Registry::plain()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let built = busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let image = format!("{}/evil/bb:v1", reg.host());
    layout.push("v1", &image, &[])?;
    // Same size, one byte flipped: only the digest can tell.
    let victim = &built.layers[0];
    let path = reg.blob_data(&victim.digest);
    let mut bytes = std::fs::read(&path)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes)?;

    let berth = Berth::new()?;
    let err = berth.fail(&["pull", &image])?;
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(err.contains(&victim.digest), "{err}");
    assert_store_clean(&berth)?;
    Ok(())
}

#[test]
fn unknown_tag_and_unknown_host_are_clear_errors_with_a_clean_store() -> Result<()> {
    let reg = Registry::plain()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    busybox_image(&mut layout, "v1", Compression::Gzip)?;
    layout.push("v1", &format!("{}/known/bb:v1", reg.host()), &[])?;
    let berth = Berth::new()?;

    let err = berth.fail(&["pull", &format!("{}/known/bb:nope", reg.host())])?;
    assert!(
        err.contains("known/bb:nope: not found: manifest unknown"),
        "{err}"
    );
    let err = berth.fail(&["pull", &format!("{}/unknown/repo:v1", reg.host())])?;
    assert!(err.contains("not found"), "{err}");
    let err = berth.fail(&["pull", "no-such-host.invalid/x/y:1"])?;
    assert!(
        err.contains("cannot reach registry no-such-host.invalid"),
        "{err}"
    );
    let err = berth.fail(&["pull", "Bad/Name"])?;
    assert!(err.contains("invalid reference format"), "{err}");
    assert_store_clean(&berth)?;
    Ok(())
}

#[test]
fn concurrent_pulls_into_one_store_share_blobs_safely() -> Result<()> {
    let reg = Registry::plain()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let a = busybox_image(&mut layout, "a", Compression::Gzip)?;
    let b = busybox_image(&mut layout, "b", Compression::Gzip)?;
    layout.push("a", &format!("{}/c/bb:a", reg.host()), &[])?;
    layout.push("b", &format!("{}/c/bb:b", reg.host()), &[])?;
    let berth = Berth::new()?;
    let mut children = Vec::new();
    for tag in ["a", "b", "a", "b"] {
        let image = format!("{}/c/bb:{tag}", reg.host());
        children.push(
            berth
                .cmd(&["pull", "-q", &image])?
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()?,
        );
    }
    for c in children {
        let out = c.wait_with_output()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(berth.images()?.len(), 2);
    let blobs = berth.blobs();
    for built in [&a, &b] {
        for blob in built.layers.iter().chain(built.config.iter()) {
            assert!(blobs.contains(&blob.digest));
        }
    }
    // The busybox layer is shared: 2 manifests + 2 configs + 2 motd layers + 1 busybox layer.
    assert_eq!(blobs.len(), 7, "{blobs:?}");
    assert!(berth.ingests().is_empty());
    Ok(())
}

#[test]
fn prune_during_a_pull_waits_and_never_deletes_the_pulls_blobs() -> Result<()> {
    let reg = Registry::plain()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let big = file_layer("data/noise", &noise(4 << 20, 11))?;
    let built = layout.image(
        "amd64",
        &[
            (busybox_layer()?, Compression::Gzip),
            (big, Compression::None),
        ],
    )?;
    layout.tag("slow", &built)?;
    layout.push("slow", &format!("{}/slow/img:1", reg.host()), &[])?;
    let port: u16 = reg.host().rsplit(':').next().unwrap_or("0").parse()?;
    let proxy = Proxy::start(port)?;
    let berth = Berth::new()?;
    let image = format!("{}/slow/img:1", proxy.host());
    let pull = berth
        .cmd(&["pull", "-q", &image])?
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // Once the first blob is committed, garbage-collect everything while the pull runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    while berth.blobs().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let prune = berth.cmd(&["image", "prune", "-a", "-f"])?.output()?;
    let pulled = pull.wait_with_output()?;
    assert!(
        prune.status.success(),
        "{}",
        String::from_utf8_lossy(&prune.stderr)
    );
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let images = berth.images()?;
    assert_eq!(images.len(), 1, "the pull's record survives: {images:?}");
    let blobs = berth.blobs();
    for b in built
        .layers
        .iter()
        .chain(built.config.iter())
        .chain([&built.manifest])
    {
        assert!(
            blobs.contains(&b.digest),
            "{} was collected under the pull",
            b.digest
        );
    }
    berth.ok(&[
        "save",
        "-o",
        &dir.path().join("check.tar").to_string_lossy(),
        &image,
    ])?;
    Ok(())
}

#[test]
fn pull_killed_mid_blob_resumes_from_its_ingest_on_the_next_run() -> Result<()> {
    let reg = Registry::plain()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let big = file_layer("data/noise", &noise(6 << 20, 13))?;
    let built = layout.image("amd64", &[(big, Compression::None)])?;
    layout.tag("big", &built)?;
    layout.push("big", &format!("{}/again/img:1", reg.host()), &[])?;
    let port: u16 = reg.host().rsplit(':').next().unwrap_or("0").parse()?;
    let proxy = Proxy::start(port)?;
    let berth = Berth::new()?;
    let image = format!("{}/again/img:1", proxy.host());
    let mut child = berth
        .cmd(&["pull", &image])?
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while berth
        .ingests()
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .all(|m| m.len() < 2 << 20)
    {
        if Instant::now() > deadline {
            // Best effort; the test fails either way.
            let _ = child.kill();
            bail!("the download never got under way");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill()?;
    child.wait()?;
    assert!(berth.images()?.is_empty());
    let out = berth.ok(&["pull", &image])?;
    assert!(out.contains("Resuming download at byte"), "{out}");
    assert!(berth.blobs().contains(&built.layers[0].digest));
    assert!(berth.ingests().is_empty(), "{:?}", berth.ingests());
    Ok(())
}
