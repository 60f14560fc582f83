//! Rootless berth's images: file owners are shifted into the user's subordinate range on disk
//! (container uid 0 is the user, uid N is `subuid_first + N - 1`), so the container's user
//! namespace shows the image's owners. Each test creates its own unprivileged user (removed
//! afterwards, even on failure).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use spec_tests::manager::berth::berth_bin;
use spec_tests::manager::images::{busybox_layer, Compression, Layout};
use spec_tests::manager::unpack::{oci_archive, LayerTar};
use spec_tests::rootless::{Out, TestUser};

const IMAGE: &str = "localhost/owners:v1";

fn b(u: &TestUser, berth: &str, args: &[&str]) -> Result<Out> {
    let mut all = vec![berth];
    all.extend_from_slice(args);
    u.run(&all, None)
}

/// busybox, then a layer of several owners (a 0700 directory of uid 1000 among them), then a
/// layer that writes into and deletes from that directory.
fn owners_image(u: &TestUser) -> Result<PathBuf> {
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let owners = LayerTar::new()
        .dir("home", 0o755, 0)?
        .dir("home/u", 0o700, 1000)?
        .file("home/u/secret", 0o600, 1000, b"s\n")?
        .file("home/u/kept", 0o600, 1000, b"k\n")?
        .dir("srv", 0o755, 33)?
        .file("srv/www", 0o640, 33, b"w\n")?
        .file("etc/nobody", 0o644, 65534, b"n\n")?
        .finish()?;
    let later = LayerTar::new()
        .file("home/u/later", 0o600, 1000, b"l\n")?
        .marker("home/u/.wh.secret")?
        .finish()?;
    let built = layout.image(
        "amd64",
        &[
            (busybox_layer()?, Compression::Gzip),
            (owners, Compression::Gzip),
            (later, Compression::None),
        ],
    )?;
    layout.tag(IMAGE, &built)?;
    let archive = u.dir.join("owners.tar");
    oci_archive(layout.dir(), &archive)?;
    u.chown(&archive)?;
    Ok(archive)
}

/// Every path under `root` (not following symlinks) with its owner.
fn owners_on_disk(root: &Path, out: &mut Vec<(PathBuf, u32)>) -> Result<()> {
    for e in fs::read_dir(root)? {
        let e = e?;
        let md = fs::symlink_metadata(e.path())?;
        out.push((e.path(), md.uid()));
        if md.is_dir() {
            owners_on_disk(&e.path(), out)?;
        }
    }
    Ok(())
}

#[test]
fn image_owners_are_shifted_into_the_subordinate_range() -> Result<()> {
    let u = TestUser::create()?;
    let berth = berth_bin()?.to_string_lossy().into_owned();
    let archive = owners_image(&u)?;
    b(&u, &berth, &["load", "-i", &archive.to_string_lossy()])?.ok()?;

    // Inside: the image's owners, modes and the later layer's changes in the 0700 directory.
    let script = "busybox stat -c '%u:%g %a %n' /bin/busybox /home/u /home/u/later /home/u/kept /srv/www /etc/nobody; ls /home/u";
    let out = b(
        &u,
        &berth,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            IMAGE,
            "sh",
            "-c",
            script,
        ],
    )?
    .ok()?;
    assert_eq!(
        out.stdout,
        "0:0 755 /bin/busybox\n1000:1000 700 /home/u\n1000:1000 600 /home/u/later\n\
         1000:1000 600 /home/u/kept\n33:33 640 /srv/www\n65534:65534 644 /etc/nobody\n\
         kept\nlater\n",
        "{out:?}"
    );
    // The image's user 1000 reads its own files; another user cannot.
    let own = b(
        &u,
        &berth,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-u",
            "1000",
            IMAGE,
            "cat",
            "/home/u/later",
        ],
    )?
    .ok()?;
    assert_eq!(own.stdout, "l\n");
    let other = b(
        &u,
        &berth,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-u",
            "33",
            IMAGE,
            "cat",
            "/home/u/later",
        ],
    )?;
    assert_ne!(other.code, Some(0), "{other:?}");

    // A named volume's copy-up keeps the owners; the volume goes with them.
    let vol = b(
        &u,
        &berth,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "v1:/home/u",
            IMAGE,
            "busybox",
            "stat",
            "-c",
            "%u:%g %a %n",
            "/home/u",
            "/home/u/later",
        ],
    )?
    .ok()?;
    assert_eq!(
        vol.stdout, "1000:1000 700 /home/u\n1000:1000 600 /home/u/later\n",
        "{vol:?}"
    );
    b(&u, &berth, &["volume", "rm", "v1"])?.ok()?;

    // diff and commit see inside the 0700 directory of uid 1000 and keep the owners.
    b(
        &u,
        &berth,
        &[
            "run",
            "--name",
            "ch",
            "--network",
            "none",
            IMAGE,
            "sh",
            "-c",
            "rm /home/u/kept; echo n > /home/u/new; chown 1000:1000 /home/u/new",
        ],
    )?
    .ok()?;
    let diff = b(&u, &berth, &["diff", "ch"])?.ok()?;
    assert!(diff.stdout.contains("D /home/u/kept\n"), "{diff:?}");
    assert!(diff.stdout.contains("A /home/u/new\n"), "{diff:?}");
    b(&u, &berth, &["commit", "ch", "localhost/owners:v2"])?.ok()?;
    b(&u, &berth, &["rm", "ch"])?.ok()?;
    let v2 = b(
        &u,
        &berth,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "localhost/owners:v2",
            "sh",
            "-c",
            "busybox stat -c '%u:%g %n' /home/u/new; ls /home/u",
        ],
    )?
    .ok()?;
    assert_eq!(v2.stdout, "1000:1000 /home/u/new\nlater\nnew\n", "{v2:?}");
    b(&u, &berth, &["rmi", "localhost/owners:v2"])?.ok()?;

    // export: the container's owners (read from the user's namespace), every file readable.
    b(
        &u,
        &berth,
        &["create", "--name", "ex", "--network", "none", IMAGE],
    )?
    .ok()?;
    let tar = u.dir.join("ex.tar");
    b(&u, &berth, &["export", "-o", &tar.to_string_lossy(), "ex"])?.ok()?;
    b(&u, &berth, &["rm", "ex"])?.ok()?;
    let mut owners = std::collections::BTreeMap::new();
    for e in tar::Archive::new(fs::File::open(&tar)?).entries()? {
        let e = e?;
        let h = e.header();
        owners.insert(
            e.path()?.to_string_lossy().into_owned(),
            (h.uid()?, h.gid()?),
        );
    }
    assert_eq!(
        owners.get("home/u/later"),
        Some(&(1000, 1000)),
        "{owners:?}"
    );
    assert_eq!(owners.get("srv/www"), Some(&(33, 33)), "{owners:?}");
    assert_eq!(owners.get("bin/busybox"), Some(&(0, 0)), "{owners:?}");

    // On the host: uid N is subuid_first + N - 1, root is the user.
    let store = u.dir.join(".local/share/berth");
    let mut all = Vec::new();
    owners_on_disk(&store.join("snapshots"), &mut all)?;
    let owner_of = |suffix: &str| {
        all.iter()
            .find(|(p, _)| p.ends_with(suffix))
            .map(|(_, uid)| *uid)
            .with_context(|| format!("no {suffix} in the store"))
    };
    assert_eq!(owner_of("home/u/later")?, u.sub_first + 999);
    assert_eq!(owner_of("srv/www")?, u.sub_first + 32);
    assert_eq!(owner_of("bin/busybox")?, u.uid);

    // rmi removes every snapshot, those of the shifted owners too.
    b(&u, &berth, &["rmi", IMAGE])?.ok()?;
    let mut left = Vec::new();
    owners_on_disk(&store.join("snapshots/copy/snapshots"), &mut left)?;
    assert!(left.is_empty(), "left in the store: {left:?}");
    Ok(())
}
