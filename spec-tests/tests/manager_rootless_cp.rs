//! `berth cp` as an unprivileged user, with files of the container's other users (owners
//! shifted into the user's subordinate range on disk): reading a file inside a 0700 directory
//! of uid 1000, writing into that directory, and archives (`cp ... -`) that carry the
//! container's ids rather than the host's. Each test creates its own user (removed
//! afterwards, even on failure).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;

use anyhow::Result;
use spec_tests::manager::berth::berth_bin;
use spec_tests::manager::images::{busybox_layer, Compression, Layout};
use spec_tests::manager::unpack::oci_archive;
use spec_tests::rootless::{Out, TestUser};

const BASE: &str = "localhost/bb:v1";

fn b(u: &TestUser, berth: &str, args: &[&str]) -> Result<Out> {
    let mut all = vec![berth];
    all.extend_from_slice(args);
    u.run(&all, None)
}

/// `cp ... -` output: path → (uid, gid, content).
fn tar_entries(bytes: &[u8]) -> Result<BTreeMap<String, (u64, u64, String)>> {
    let mut out = BTreeMap::new();
    for e in tar::Archive::new(bytes).entries()? {
        let mut e = e?;
        let (uid, gid) = (e.header().uid()?, e.header().gid()?);
        let path = e
            .path()?
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let mut text = String::new();
        e.read_to_string(&mut text)?;
        out.insert(path, (uid, gid, text));
    }
    Ok(out)
}

#[test]
fn rootless_cp_reaches_files_of_shifted_owners_and_archives_container_ids() -> Result<()> {
    let u = TestUser::create()?;
    let berth = berth_bin()?.to_string_lossy().into_owned();
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let built = layout.image("amd64", &[(busybox_layer()?, Compression::Gzip)])?;
    layout.tag(BASE, &built)?;
    let archive = u.dir.join("bb.tar");
    oci_archive(layout.dir(), &archive)?;
    u.chown(&archive)?;
    b(&u, &berth, &["load", "-i", &archive.to_string_lossy()])?.ok()?;

    let setup = "busybox mkdir -p /home/u/sub && echo s > /home/u/secret && busybox chmod 600 /home/u/secret \
                 && busybox chown -R 1000:1000 /home/u && busybox chmod 700 /home/u && echo r > /rootfile";
    b(
        &u,
        &berth,
        &[
            "run",
            "--name",
            "cpc",
            "--network",
            "none",
            BASE,
            "sh",
            "-c",
            setup,
        ],
    )?
    .ok()?;

    // Out, to stdout: the container's ids in the headers (1000, and 0 for root).
    let out = u.run(&[&berth, "cp", "cpc:/home/u", "-"], None)?.ok()?;
    let got = tar_entries(out.stdout.as_bytes())?;
    assert_eq!(
        got.get("u").map(|e| (e.0, e.1)),
        Some((1000, 1000)),
        "{got:?}"
    );
    assert_eq!(
        got.get("u/secret"),
        Some(&(1000, 1000, "s\n".to_string())),
        "{got:?}"
    );
    let out = u.run(&[&berth, "cp", "cpc:/rootfile", "-"], None)?.ok()?;
    assert_eq!(
        tar_entries(out.stdout.as_bytes())?.get("rootfile"),
        Some(&(0, 0, "r\n".to_string()))
    );

    // Out, to the host: a file the user cannot read on disk.
    let host = u.dir.join("secret-copy");
    b(
        &u,
        &berth,
        &["cp", "cpc:/home/u/secret", &host.to_string_lossy()],
    )?
    .ok()?;
    assert_eq!(fs::read_to_string(&host)?, "s\n");

    // A missing path is still docker's "not found".
    let missing = b(&u, &berth, &["cp", "cpc:/home/u/nothing", "-"])?;
    assert_ne!(missing.code, Some(0), "{missing:?}");
    assert!(missing.stderr.contains("/home/u/nothing"), "{missing:?}");

    // In: into the 0700 directory of uid 1000; the copy belongs to the container's root.
    let src = u.dir.join("hello.txt");
    fs::write(&src, "hello\n")?;
    u.chown(&src)?;
    b(&u, &berth, &["cp", &src.to_string_lossy(), "cpc:/home/u/"])?.ok()?;
    let out = u
        .run(&[&berth, "cp", "cpc:/home/u/hello.txt", "-"], None)?
        .ok()?;
    assert_eq!(
        tar_entries(out.stdout.as_bytes())?.get("hello.txt"),
        Some(&(0, 0, "hello\n".to_string()))
    );
    // Deeper: the destination's parent is the 0700 directory itself (looked up in the user
    // namespace too), as a directory and as a new name.
    b(
        &u,
        &berth,
        &["cp", &src.to_string_lossy(), "cpc:/home/u/sub/"],
    )?
    .ok()?;
    b(
        &u,
        &berth,
        &["cp", &src.to_string_lossy(), "cpc:/home/u/sub/renamed.txt"],
    )?
    .ok()?;
    let out = b(&u, &berth, &["cp", "cpc:/home/u/sub", "-"])?.ok()?;
    let got = tar_entries(out.stdout.as_bytes())?;
    assert_eq!(
        got.get("sub").map(|e| (e.0, e.1)),
        Some((1000, 1000)),
        "{got:?}"
    );
    assert_eq!(
        got.get("sub/hello.txt"),
        Some(&(0, 0, "hello\n".to_string())),
        "{got:?}"
    );
    assert_eq!(
        got.get("sub/renamed.txt"),
        Some(&(0, 0, "hello\n".to_string())),
        "{got:?}"
    );
    // A file given as a directory there is still docker's error.
    let bad = b(
        &u,
        &berth,
        &["cp", &src.to_string_lossy(), "cpc:/home/u/sub/none/"],
    )?;
    assert_ne!(bad.code, Some(0), "{bad:?}");
    assert!(bad.stderr.contains("/home/u/sub/none"), "{bad:?}");
    let diff = b(&u, &berth, &["diff", "cpc"])?.ok()?;
    assert!(diff.stdout.contains("A /home/u/hello.txt\n"), "{diff:?}");
    b(&u, &berth, &["rm", "cpc"])?.ok()?;
    b(&u, &berth, &["rmi", BASE])?.ok()?;
    Ok(())
}
