//! `berth build` as an unprivileged user: RUN steps are rootless containers on the copy
//! snapshotter, each step's layer is what its tree changed against the parent's, read in the
//! user's namespace, so layers carry the container's ids (0 for root, never the user's host
//! id) and the files of other container users are kept with their owners. Each test creates
//! its own user (removed afterwards, even on failure).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;

use anyhow::{Context, Result};
use spec_tests::manager::berth::berth_bin;
use spec_tests::manager::build::{runs_ran, steps_cached};
use spec_tests::manager::images::{busybox_layer, Compression, Layout};
use spec_tests::manager::unpack::oci_archive;
use spec_tests::rootless::{Out, TestUser};

const BASE: &str = "localhost/bb:v1";
const IMAGE: &str = "localhost/built:v1";

fn b(u: &TestUser, berth: &str, args: &[&str]) -> Result<Out> {
    let mut all = vec![berth];
    all.extend_from_slice(args);
    u.run(&all, None)
}

/// Loads a busybox image as [`BASE`] into the user's store.
fn load_base(u: &TestUser, berth: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let built = layout.image("amd64", &[(busybox_layer()?, Compression::Gzip)])?;
    layout.tag(BASE, &built)?;
    let archive = u.dir.join("bb.tar");
    oci_archive(layout.dir(), &archive)?;
    u.chown(&archive)?;
    b(u, berth, &["load", "-i", &archive.to_string_lossy()])?.ok()?;
    Ok(())
}

const DOCKERFILE: &str = r#"FROM localhost/bb:v1 AS stage
RUN busybox mkdir -p /data/app /data/root && echo r > /data/root/f && busybox chmod 600 /data/root/f \
 && echo a > /data/app/f && busybox chown -R 1000:1000 /data/app && busybox chmod 700 /data/app \
 && busybox chmod 640 /data/app/f
FROM localhost/bb:v1
COPY --from=stage /data /data
COPY --chown=1000:1000 hello.txt /home/u/
RUN busybox mkdir /out && busybox chown 33:33 /out && echo made > /out/x && busybox rm /etc/group
USER 1000
RUN echo mine > /home/u/mine
CMD ["sh", "-c", "busybox stat -c '%u:%g %a %n' /data/app /data/app/f /data/root/f /home/u /home/u/hello.txt /home/u/mine /out /out/x && cat /data/app/f /home/u/mine && busybox id -u && ls /etc"]
"#;

/// Every tar-shaped member of a `save` archive (plain or gzip): path → (uid, gid), the later
/// layer winning.
fn layer_owners(archive: &[u8]) -> Result<BTreeMap<String, (u64, u64)>> {
    let mut owners = BTreeMap::new();
    let mut outer = tar::Archive::new(archive);
    for e in outer.entries()? {
        let mut e = e?;
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes)?;
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut d = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut d)?;
            bytes = d;
        }
        if bytes.len() < 1024 || bytes[257..262] != *b"ustar" {
            continue;
        }
        for inner in tar::Archive::new(&bytes[..]).entries()? {
            let inner = inner?;
            let h = inner.header();
            owners.insert(
                inner
                    .path()?
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_string(),
                (h.uid()?, h.gid()?),
            );
        }
    }
    Ok(owners)
}

#[test]
fn rootless_build_keeps_container_owners_in_the_tree_and_the_layers() -> Result<()> {
    let u = TestUser::create()?;
    let berth = berth_bin()?.to_string_lossy().into_owned();
    load_base(&u, &berth)?;
    let ctx = u.mkdir("ctx")?;
    fs::write(ctx.join("Dockerfile"), DOCKERFILE)?;
    fs::write(ctx.join("hello.txt"), "hello\n")?;
    for f in ["Dockerfile", "hello.txt"] {
        u.chown(&ctx.join(f))?;
    }
    let ctx_s = ctx.to_string_lossy().into_owned();
    let built = b(
        &u,
        &berth,
        &["build", "--network", "none", "-t", IMAGE, &ctx_s],
    )?
    .ok()?;
    assert_eq!(runs_ran(&built.stderr), 3, "{built:?}");

    // In the container: the owners the steps gave, root as 0 (not the user's host id).
    // COPY --from gives root the files (as docker's builder does), reading the stage's
    // 0700 directory of uid 1000 all the same.
    let out = b(
        &u,
        &berth,
        &["run", "--rm", "--network", "none", "-u", "0", IMAGE],
    )?
    .ok()?;
    assert_eq!(
        out.stdout,
        "0:0 700 /data/app\n0:0 640 /data/app/f\n0:0 600 /data/root/f\n\
         1000:1000 755 /home/u\n1000:1000 644 /home/u/hello.txt\n1000:0 644 /home/u/mine\n\
         33:33 755 /out\n0:0 644 /out/x\n\
         a\nmine\n0\nhostname\nhosts\npasswd\nresolv.conf\n",
        "{out:?}"
    );
    // The image's USER.
    let user = b(
        &u,
        &berth,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            IMAGE,
            "busybox",
            "id",
            "-u",
        ],
    )?
    .ok()?;
    assert_eq!(user.stdout, "1000\n", "{user:?}");
    // The first stage alone (all cached): its RUN's chown to uid 1000 as the container sees it.
    let stage = b(
        &u,
        &berth,
        &[
            "build",
            "--network",
            "none",
            "--target",
            "stage",
            "-t",
            "localhost/stage:v1",
            &ctx_s,
        ],
    )?
    .ok()?;
    assert_eq!(runs_ran(&stage.stderr), 0, "{stage:?}");
    let st = b(
        &u,
        &berth,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-u",
            "0",
            "localhost/stage:v1",
            "busybox",
            "stat",
            "-c",
            "%u:%g %a %n",
            "/data/app",
            "/data/app/f",
            "/data/root/f",
        ],
    )?
    .ok()?;
    assert_eq!(
        st.stdout, "1000:1000 700 /data/app\n1000:1000 640 /data/app/f\n0:0 600 /data/root/f\n",
        "{st:?}"
    );
    let staged = u.dir.join("stage.tar");
    b(
        &u,
        &berth,
        &[
            "save",
            "-o",
            &staged.to_string_lossy(),
            "localhost/stage:v1",
        ],
    )?
    .ok()?;
    let owners = layer_owners(&fs::read(&staged)?)?;
    assert_eq!(owners.get("data/app/f"), Some(&(1000, 1000)), "{owners:?}");
    assert_eq!(owners.get("data/root/f"), Some(&(0, 0)), "{owners:?}");

    let id = b(&u, &berth, &["images", "-q", IMAGE])?.ok()?.stdout;
    // A rebuild runs nothing and makes the same image.
    let again = b(
        &u,
        &berth,
        &["build", "--network", "none", "-t", IMAGE, &ctx_s],
    )?
    .ok()?;
    assert_eq!(runs_ran(&again.stderr), 0, "{again:?}");
    assert!(steps_cached(&again.stderr) >= 6, "{again:?}");
    assert_eq!(b(&u, &berth, &["images", "-q", IMAGE])?.ok()?.stdout, id);

    // The saved image's layers carry the container's ids, a deletion as a whiteout.
    let saved = u.dir.join("built.tar");
    b(&u, &berth, &["save", "-o", &saved.to_string_lossy(), IMAGE])?.ok()?;
    let owners = layer_owners(&fs::read(&saved).context("reading the saved image")?)?;
    let want = [
        ("data/app", (0, 0)),
        ("data/app/f", (0, 0)),
        ("data/root/f", (0, 0)),
        ("home/u/hello.txt", (1000, 1000)),
        ("home/u/mine", (1000, 0)),
        ("out", (33, 33)),
        ("out/x", (0, 0)),
        ("bin/busybox", (0, 0)),
        ("etc/.wh.group", (0, 0)),
    ];
    for (path, ids) in want {
        assert_eq!(owners.get(path), Some(&ids), "{path} in {owners:?}");
    }
    // Nothing of the runtime's setup (mount targets) in the layers.
    for setup in [
        "proc",
        "sys",
        "dev",
        "etc/hosts",
        "etc/resolv.conf",
        "etc/hostname",
    ] {
        assert!(!owners.contains_key(setup), "{setup} in {owners:?}");
    }
    if ![0, 33, 1000].contains(&u.uid) {
        let host_ids: Vec<_> = owners
            .iter()
            .filter(|(_, (uid, _))| *uid == u64::from(u.uid) || *uid >= u64::from(u.sub_first))
            .collect();
        assert!(host_ids.is_empty(), "host ids in the layers: {host_ids:?}");
    }

    // (Removing the stage's image first would drop its layer's blob, and with it that step's
    // cache entry.)
    b(&u, &berth, &["rmi", IMAGE, "localhost/stage:v1"])?.ok()?;
    let ps = b(&u, &berth, &["ps", "-aq"])?.ok()?;
    assert_eq!(ps.stdout, "", "build containers left: {ps:?}");
    // Nothing left of the steps: no snapshot (those of shifted owners included) once the
    // images are gone, no scratch directory (COPY --from's copies of the stage).
    b(&u, &berth, &["rmi", BASE])?.ok()?;
    let store = u.dir.join(".local/share/berth");
    let left = |d: &str| -> Vec<std::path::PathBuf> {
        fs::read_dir(store.join(d))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        left("snapshots/copy/snapshots"),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(left("build-tmp"), Vec::<std::path::PathBuf>::new());
    Ok(())
}
