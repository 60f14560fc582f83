//! `berth build` features docker's classic builder lacks (BuildKit's are the reference):
//! heredoc bodies of COPY expanded unless the delimiter is quoted, ADD from a URL (a
//! loopback HTTP server started here), independent stages built concurrently, zstd layers.

use std::path::Path;

use anyhow::Result;
use spec_tests::manager::berth::test_dir;
use spec_tests::manager::build::flatten;
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
    let again = String::from_utf8_lossy(&build()?.stdout).into_owned();
    assert!(!again.contains("Running in"), "{again}");
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
    let changed = String::from_utf8_lossy(&build()?.stdout).into_owned();
    assert!(changed.contains("Running in"), "{changed}");
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
    let out = berth.ok(&["build", "--network", "none", "-t", "par:1", &ctx])?;
    let took = started.elapsed();
    eprintln!("two 2 s stages built in {took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}\n{out}");
    assert!(out.contains("[one] Step 2/8 : RUN sleep 2"), "{out}");
    assert!(out.contains("[two] Step 4/8 : RUN sleep 2"), "{out}");
    assert!(out.contains("\nStep 5/8 : FROM"), "{out}");
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

/// `-o type=image,compression=zstd`: every layer of the stored image is `tar+zstd`; the
/// image is pushed as it is and another root pulls, unpacks and runs it.
#[test]
fn zstd_layers_on_request_push_pull_and_run() -> Result<()> {
    use spec_tests::manager::berth::Berth;
    use spec_tests::manager::registry::Registry;
    use std::io::Read;
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
    let tar = dir.path().join("oci.tar");
    berth.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        &tar.display().to_string(),
        &image,
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
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    assert_eq!(layers.len(), 2, "{manifest}");
    for l in &layers {
        assert_eq!(
            l["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
            "{manifest}"
        );
        let hex = l["digest"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches("sha256:");
        assert!(files[&format!("blobs/sha256/{hex}")].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]));
    }
    let other = Berth::new()?;
    other.ok(&["pull", &image])?;
    assert_eq!(
        other.ok(&["run", "--rm", "--network", "none", &image])?,
        "zstd\n"
    );
    let bad = berth.fail(&["build", "-o", "type=image,compression=lz4", &ctx])?;
    assert!(bad.contains("unsupported compression \"lz4\""), "{bad}");
    Ok(())
}
