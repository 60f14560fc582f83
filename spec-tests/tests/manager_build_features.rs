//! `berth build` features docker's classic builder lacks (BuildKit's are the reference):
//! heredoc bodies of COPY expanded unless the delimiter is quoted, ADD from a URL (a
//! loopback HTTP server started here), independent stages built concurrently, zstd layers,
//! `COPY --link`.

use std::path::Path;

use anyhow::Result;
use spec_tests::manager::berth::test_dir;
use spec_tests::manager::build::{flatten, runs_ran, steps_cached};
use spec_tests::manager::network::{berth_with_busybox, BUSYBOX};

fn dockerfile(dir: &Path, text: &str) -> Result<String> {
    std::fs::write(dir.join("Dockerfile"), text.replace("BASE", BUSYBOX))?;
    Ok(dir.display().to_string())
}

/// `COPY <<EOF`: the body is expanded with the stage's ARGs and ENV (quotes kept, unset
/// variables left for the script), not at all with a quoted delimiter; `<<-` strips tabs;
/// several heredocs go into a directory by their names.
#[test]
fn copy_heredocs_expand_unless_the_delimiter_is_quoted() -> Result<()> {
    let berth = berth_with_busybox()?;
    let dir = test_dir()?;
    let ctx = dockerfile(
        dir.path(),
        "# syntax=docker/dockerfile:1\nFROM BASE\nARG WHO=world\nENV GREETING=hello\n\
COPY <<EOF /expanded\n$GREETING \"${WHO}\" '$WHO' \\$WHO $1 ${UNSET}\nEOF\n\
COPY <<\"EOF\" /verbatim\n$GREETING ${WHO}\nEOF\n\
COPY <<-EOF /tabs\n\tindented $WHO\n\tEOF\n\
COPY <<one <<two /multi/\nfirst\none\nsecond\ntwo\n",
    )?;
    berth.ok(&[
        "build",
        "--network",
        "none",
        "--build-arg",
        "WHO=berth",
        "-t",
        "heredoc:1",
        &ctx,
    ])?;
    let tar = dir.path().join("img.tar");
    berth.ok(&["save", "-o", &tar.display().to_string(), "heredoc:1"])?;
    let tree = flatten(&tar)?;
    let cat = |p: &str| berth.ok(&["run", "--rm", "--network", "none", "heredoc:1", "cat", p]);
    assert_eq!(
        cat("/expanded")?,
        "hello \"berth\" 'berth' $WHO $1 ${UNSET}\n"
    );
    assert_eq!(cat("/verbatim")?, "$GREETING ${WHO}\n");
    assert_eq!(cat("/tabs")?, "indented berth\n");
    assert_eq!(cat("/multi/one")?, "first\n");
    assert_eq!(cat("/multi/two")?, "second\n");
    let node = &tree["expanded"];
    assert_eq!((node.kind, node.mode & 0o7777), ('f', 0o644), "{node:?}");
    Ok(())
}

/// ADD from a URL (a loopback server): named after the URL, mode 0600, mtime from
/// Last-Modified, a tar not extracted; `--checksum` verified; the content is the cache key
/// (an unchanged download is a cache hit, a changed one is not); COPY refuses a URL.
#[test]
fn add_from_a_url_downloads_checks_and_caches_by_content() -> Result<()> {
    use sha2::{Digest, Sha256};
    use spec_tests::manager::build::HttpServer;
    let berth = berth_with_busybox()?;
    let dir = test_dir()?;
    let served = dir.path().join("served");
    std::fs::create_dir(&served)?;
    std::fs::write(served.join("f.txt"), "v1\n")?;
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .append(true)
        .open(served.join("f.txt"))?
        .set_modified(mtime)?;
    let http = HttpServer::start(&served)?;
    let sum = hex::encode(Sha256::digest(b"v1\n"));
    let ctx_dir = dir.path().join("ctx");
    std::fs::create_dir(&ctx_dir)?;
    let ctx = dockerfile(
        &ctx_dir,
        &format!(
            "FROM BASE\nADD --checksum=sha256:{sum} {} /d/\nRUN cat /d/f.txt > /copy\n",
            http.url("f.txt")
        ),
    )?;
    let build = || berth.run(&["build", "--network", "none", "-t", "url:1", &ctx]);
    let first = build()?;
    assert!(first.status.success(), "{first:?}");
    let tar = dir.path().join("img.tar");
    berth.ok(&["save", "-o", &tar.display().to_string(), "url:1"])?;
    let tree = flatten(&tar)?;
    let node = &tree["d/f.txt"];
    assert_eq!((node.kind, node.mode & 0o7777, node.size), ('f', 0o600, 3));
    let stat = berth.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "url:1",
        "/bin/busybox",
        "stat",
        "-c",
        "%Y",
        "/d/f.txt",
    ])?;
    assert_eq!(stat.trim(), "1600000000");
    let again = String::from_utf8_lossy(&build()?.stderr).into_owned();
    assert_eq!(runs_ran(&again), 0, "{again}");
    // Changed content: the checksum no longer matches, the build fails naming both sums.
    std::fs::write(served.join("f.txt"), "v2\n")?;
    let bad = build()?;
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(err.contains("Dockerfile:2") && err.contains(&sum), "{err}");
    // Without the checksum a changed download re-runs the steps after it.
    std::fs::write(
        ctx_dir.join("Dockerfile"),
        format!(
            "FROM {BUSYBOX}\nADD {} /d/\nRUN cat /d/f.txt > /copy\n",
            http.url("f.txt")
        ),
    )?;
    assert!(build()?.status.success());
    std::fs::write(served.join("f.txt"), "v3\n")?;
    let changed = String::from_utf8_lossy(&build()?.stderr).into_owned();
    assert_eq!(runs_ran(&changed), 1, "{changed}");
    std::fs::write(
        ctx_dir.join("Dockerfile"),
        format!("FROM {BUSYBOX}\nCOPY {} /d/\n", http.url("f.txt")),
    )?;
    let copy = berth.fail(&["build", "--network", "none", &ctx])?;
    assert!(copy.contains("source can't be a URL for COPY"), "{copy}");
    let missing = dockerfile(
        &ctx_dir,
        &format!("FROM BASE\nADD {} /d/\n", http.url("missing.txt")),
    )?;
    let e = berth.fail(&["build", "--network", "none", &missing])?;
    assert!(e.contains("404"), "{e}");
    Ok(())
}

/// Independent stages are built at once: two stages sleeping 2 s each, copied into the
/// final one, take well under the 4 s they would one after the other; their output lines
/// carry the stage's name. A stage that fails cancels the other at once, and nothing of
/// either is left.
#[test]
fn independent_stages_are_built_concurrently() -> Result<()> {
    use std::time::{Duration, Instant};
    let berth = berth_with_busybox()?;
    let dir = test_dir()?;
    let ctx = dockerfile(
        dir.path(),
        "FROM BASE AS one\nRUN sleep 2 && echo 1 > /one\n\
FROM BASE AS two\nRUN sleep 2 && echo 2 > /two\n\
FROM BASE\nCOPY --from=one /one /\nCOPY --from=two /two /\nCMD [\"cat\", \"/one\", \"/two\"]\n",
    )?;
    let started = Instant::now();
    let built = berth.run(&["build", "--network", "none", "-t", "par:1", &ctx])?;
    let took = started.elapsed();
    let out = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{out}");
    eprintln!("two 2 s stages built in {took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}\n{out}");
    // Each step is a vertex named after its stage (BuildKit's `[name 2/2]`), numbered
    // as the steps of a sequential build.
    assert!(out.contains("\n#3 [one 2/2] RUN sleep 2"), "{out}");
    assert!(out.contains("\n#5 [two 2/2] RUN sleep 2"), "{out}");
    assert!(out.contains("\n#6 [stage-2 1/4] FROM"), "{out}");
    assert_eq!(
        berth.ok(&["run", "--rm", "--network", "none", "par:1"])?,
        "1\n2\n"
    );
    let ctx = dockerfile(
        dir.path(),
        "FROM BASE AS bad\nRUN exit 3\nFROM BASE AS slow\nRUN sleep 30\n\
FROM BASE\nCOPY --from=bad /etc/passwd /a\nCOPY --from=slow /etc/passwd /b\n",
    )?;
    let started = Instant::now();
    let out = berth.run(&["build", "--network", "none", "-t", "par:2", &ctx])?;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("returned a non-zero code: 3"), "{err}");
    assert_eq!(berth.ok(&["ps", "-a", "-q"])?, "");
    Ok(())
}

/// `-o type=image,compression=zstd`: the layer the build made is `tar+zstd` and the base
/// image's stays gzip, as BuildKit keeps it (`force-compression=true` recompresses it too); the
/// image is pushed as it is and another root pulls, unpacks and runs it.
#[test]
fn zstd_layers_on_request_push_pull_and_run() -> Result<()> {
    use spec_tests::manager::berth::Berth;
    use spec_tests::manager::registry::Registry;
    let berth = berth_with_busybox()?;
    let registry = Registry::plain()?;
    let image = format!("{}/build/zstd:1", registry.host());
    let dir = test_dir()?;
    let ctx = dockerfile(
        dir.path(),
        "FROM BASE\nRUN echo zstd > /z\nCMD [\"cat\", \"/z\"]\n",
    )?;
    berth.ok(&[
        "build",
        "--network",
        "none",
        "-o",
        "type=image,compression=zstd",
        "-t",
        &image,
        "--push",
        &ctx,
    ])?;
    // Whether each layer is zstd (the media type and the blob's magic number agree).
    let types = |image: &str| -> Result<Vec<bool>> {
        let layers = saved_layers(&berth, dir.path(), image)?;
        Ok(layers.into_iter().map(|(_, z)| z).collect())
    };
    assert_eq!(types(&image)?, [false, true]);
    let forced = format!("{}/build/zstd:forced", registry.host());
    berth.ok(&[
        "build",
        "--network",
        "none",
        "-o",
        "type=image,compression=zstd,force-compression=true",
        "-t",
        &forced,
        &ctx,
    ])?;
    assert_eq!(types(&forced)?, [true, true]);
    let other = Berth::new()?;
    other.ok(&["pull", &image])?;
    assert_eq!(
        other.ok(&["run", "--rm", "--network", "none", &image])?,
        "zstd\n"
    );
    let bad = berth.fail(&["build", "-o", "type=image,compression=lz4", &ctx])?;
    assert!(bad.contains("unsupported compression \"lz4\""), "{bad}");
    let bad = berth.fail(&[
        "build",
        "-o",
        "type=image,compression=zstd,force-compression=maybe",
        &ctx,
    ])?;
    assert!(bad.contains("force-compression=\"maybe\""), "{bad}");
    Ok(())
}

/// The (media type, blob is zstd) of each layer of `image` as `save --format oci-archive`
/// writes it; a layer's blob must start with its compression's magic number.
fn saved_layers(
    berth: &spec_tests::manager::berth::Berth,
    dir: &std::path::Path,
    image: &str,
) -> Result<Vec<(String, bool)>> {
    use std::io::Read;
    let tar = dir.join("oci.tar");
    berth.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        &tar.display().to_string(),
        image,
    ])?;
    let mut files = std::collections::BTreeMap::new();
    for e in tar::Archive::new(std::fs::File::open(&tar)?).entries()? {
        let mut e = e?;
        let name = e.path()?.to_string_lossy().into_owned();
        let mut b = Vec::new();
        e.read_to_end(&mut b)?;
        files.insert(name, b);
    }
    let blob = |d: &str| -> Result<serde_json::Value> {
        let hex = d.trim_start_matches("sha256:");
        Ok(serde_json::from_slice(
            &files[&format!("blobs/sha256/{hex}")],
        )?)
    };
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"])?;
    let manifest = blob(index["manifests"][0]["digest"].as_str().unwrap_or(""))?;
    let mut out = Vec::new();
    for l in manifest["layers"].as_array().cloned().unwrap_or_default() {
        let hex = l["digest"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches("sha256:");
        let blob = &files[&format!("blobs/sha256/{hex}")];
        let media = l["mediaType"].as_str().unwrap_or("").to_string();
        let zstd = blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
        let gzip = blob.starts_with(&[0x1f, 0x8b]);
        assert!(
            (media.ends_with("+zstd") && zstd) || (media.ends_with("gzip") && gzip),
            "{media} blob: {:?}",
            &blob[..4]
        );
        out.push((media, zstd));
    }
    std::fs::remove_file(&tar)?;
    Ok(out)
}

/// The entry names of one layer of a `berth save` archive, in stream order.
fn layer_entries(archive: &Path, index_from_end: usize) -> Result<Vec<String>> {
    use std::io::Read;
    let mut files = std::collections::BTreeMap::new();
    for e in tar::Archive::new(std::fs::File::open(archive)?).entries()? {
        let mut e = e?;
        let name = e.path()?.to_string_lossy().into_owned();
        let mut b = Vec::new();
        e.read_to_end(&mut b)?;
        files.insert(name, b);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"])?;
    let layers = manifest[0]["Layers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let name = layers[layers.len() - 1 - index_from_end]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let bytes = files[&name].clone();
    let reader: Box<dyn Read> = if bytes.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(std::io::Cursor::new(bytes)))
    } else {
        Box::new(std::io::Cursor::new(bytes))
    };
    let mut out = Vec::new();
    for e in tar::Archive::new(reader).entries()? {
        out.push(e?.path()?.to_string_lossy().into_owned());
    }
    Ok(out)
}

fn diff_ids(berth: &spec_tests::manager::berth::Berth, image: &str) -> Result<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(&berth.ok(&["image", "inspect", image])?)?;
    Ok(v[0]["RootFS"]["Layers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|l| l.as_str().map(String::from))
        .collect())
}

/// `COPY --link` as BuildKit documents it (docker's classic builder has no `--link`): the
/// layer holds only what is copied and the parent directories it needs (made 0755, owned
/// as `--chown` says), whatever the base has there; on top of the base it overrides the
/// base's directory mode and keeps its other files. Its cache key leaves out the parent's
/// layers: after the base image changed, the `--link` steps are cached and their layers
/// (same diff IDs, same blobs) go on the new base, while a plain COPY after them runs again.
#[test]
fn copy_link_layers_are_independent_of_the_base_and_survive_its_change() -> Result<()> {
    let berth = berth_with_busybox()?;
    let dir = test_dir()?;
    let base_dir = dir.path().join("base");
    std::fs::create_dir(&base_dir)?;
    let base = |run: &str| -> Result<String> {
        let ctx = dockerfile(&base_dir, &format!("FROM BASE\nRUN {run}\n"))?;
        berth.ok(&["build", "--network", "none", "-t", "linkbase:1", &ctx])
    };
    base("mkdir -m 0700 /app && echo old > /app/old")?;
    let ctx_dir = dir.path().join("ctx");
    std::fs::create_dir_all(ctx_dir.join("d"))?;
    std::fs::write(ctx_dir.join("f.txt"), "f\n")?;
    std::fs::write(ctx_dir.join("d/g.txt"), "g\n")?;
    let ctx = dockerfile(
        &ctx_dir,
        "FROM linkbase:1\nCOPY --link f.txt /app/f.txt\n\
COPY --link --chown=1000:1001 d /srv/www/d/\nCOPY f.txt /plain.txt\n",
    )?;
    // The steps' progress: BuildKit's plain lines, on stderr.
    let build = || -> Result<String> {
        let out = berth.run(&["build", "--network", "none", "-t", "link:1", &ctx])?;
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        anyhow::ensure!(out.status.success(), "berth build failed: {err}");
        Ok(err)
    };
    build()?;
    let tar = dir.path().join("img.tar");
    berth.ok(&["save", "-o", &tar.display().to_string(), "link:1"])?;
    assert_eq!(layer_entries(&tar, 2)?, vec!["app/", "app/f.txt"]);
    assert_eq!(
        layer_entries(&tar, 1)?,
        vec!["srv/", "srv/www/", "srv/www/d/", "srv/www/d/g.txt"]
    );
    let tree = flatten(&tar)?;
    let node = |p: &str| {
        let n = &tree[p];
        (n.kind, n.mode & 0o7777, n.uid, n.gid)
    };
    assert_eq!(
        node("app"),
        ('d', 0o755, 0, 0),
        "the layer's directory wins"
    );
    assert_eq!(node("app/old"), ('f', 0o644, 0, 0), "the base's file stays");
    assert_eq!(node("app/f.txt").0, 'f');
    assert_eq!(node("srv/www"), ('d', 0o755, 1000, 1001));
    assert_eq!(node("srv/www/d/g.txt").2, 1000);
    let before = diff_ids(&berth, "link:1")?;

    // A new base: the two --link steps come from the cache, the plain COPY runs again.
    base("mkdir /app && echo new > /app/new")?;
    let out = build()?;
    assert_eq!(steps_cached(&out), 2, "{out}");
    let after = diff_ids(&berth, "link:1")?;
    let n = after.len();
    assert_eq!(n, before.len());
    assert_ne!(before[n - 4], after[n - 4], "the base changed");
    assert_eq!(
        before[n - 3..n - 1],
        after[n - 3..n - 1],
        "the --link layers"
    );
    let _ = std::fs::remove_file(&tar);
    berth.ok(&["save", "-o", &tar.display().to_string(), "link:1"])?;
    let tree = flatten(&tar)?;
    assert!(tree.contains_key("app/new") && tree.contains_key("app/f.txt"));
    assert!(!tree.contains_key("app/old"));
    Ok(())
}

/// docker's classic builder (dockerd 20.10, `DOCKER_BUILDKIT=0`) has no `--link`: it refuses
/// the flag (`Unknown flag: link`), which is why the test above takes BuildKit's documentation as the reference.
#[test]
fn classic_builder_refuses_link_so_buildkit_is_the_reference() -> Result<()> {
    use spec_tests::engines::docker::IMAGE;
    use spec_tests::manager::build::Pair;
    let pair = Pair::new()?;
    let ctx = pair.dir.path().join("ctx");
    std::fs::create_dir(&ctx)?;
    std::fs::write(ctx.join("f.txt"), "f\n")?;
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {IMAGE}\nCOPY --link f.txt /app/f.txt\n"),
    )?;
    let ctx = ctx.display().to_string();
    let docker = pair.docker_build(&["-t", "link:classic", &ctx])?;
    assert_ne!(docker.code, Some(0), "{docker:?}");
    assert!(docker.stderr.contains("Unknown flag: link"), "{docker:?}");
    let berth = pair.berth_build(&["-t", "link:berth", &ctx])?;
    assert_eq!(berth.code, Some(0), "{berth:?}");
    Ok(())
}
