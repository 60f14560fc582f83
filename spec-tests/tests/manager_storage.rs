//! What containers keep and share on disk, black-box: volumes, read-only roots, resource
//! limits in the cgroups, overlay whiteouts, images pulled (and unpacked while they download)
//! for a run, and images kept while a container uses them.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use spec_tests::manager::containers::{Env, Guard};
use spec_tests::manager::images::{busybox_image, Compression, Layout};
use spec_tests::manager::network::BUSYBOX;
use spec_tests::manager::registry::Registry;

#[test]
fn named_volumes_outlive_containers_and_anonymous_ones_go_with_rm_v() -> Result<()> {
    let env = Env::new()?;
    env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "keep:/data",
        BUSYBOX,
        "sh",
        "-c",
        "echo persisted > /data/f",
    ])?;
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "keep:/data",
        BUSYBOX,
        "cat",
        "/data/f",
    ])?;
    assert_eq!(out, "persisted\n");
    let (code, _, err) = env.run(&["volume", "rm", "keep"])?;
    assert_eq!(code, 0, "{err}");
    // An anonymous volume: kept by rm, removed by rm -v and by --rm.
    let id = env.ok(&[
        "create",
        "--network",
        "none",
        "-v",
        "/scratch",
        BUSYBOX,
        "true",
    ])?;
    let vols: Vec<Value> = env.inspect(id.trim())?["Mounts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let name = vols[0]["Name"].as_str().context("volume name")?.to_string();
    assert!(env.ok(&["volume", "ls", "-q"])?.contains(&name));
    let (code, _, err) = env.run(&["volume", "rm", &name])?;
    assert_ne!(code, 0, "a volume in use must not be removable");
    assert!(err.contains("in use"), "{err}");
    env.ok(&["rm", "-v", id.trim()])?;
    assert!(!env.ok(&["volume", "ls", "-q"])?.contains(&name));
    env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/scratch2",
        BUSYBOX,
        "sh",
        "-c",
        "exit 0",
    ])?;
    assert_eq!(env.ok(&["volume", "ls", "-q"])?.trim(), "");
    // A read-only bind mount.
    let host = tempfile::tempdir()?;
    std::fs::write(host.path().join("in"), "from host")?;
    let spec = format!("{}:/mnt:ro", host.path().display());
    let (code, out, _) = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &spec,
        BUSYBOX,
        "sh",
        "-c",
        "cat /mnt/in; echo x > /mnt/new",
    ])?;
    assert_eq!(out, "from host");
    assert_ne!(code, 0, "writing a read-only bind mount must fail");
    assert!(!host.path().join("new").exists());
    env.assert_clean(&[]);
    Ok(())
}

#[test]
fn a_read_only_root_still_gets_its_tmpfs() -> Result<()> {
    let env = Env::new()?;
    let (code, _, err) = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        BUSYBOX,
        "sh",
        "-c",
        "echo x > /x",
    ])?;
    assert_ne!(code, 0);
    assert!(err.contains("Read-only"), "{err}");
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--tmpfs",
        "/scratch",
        BUSYBOX,
        "sh",
        "-c",
        "echo ok > /scratch/f && cat /scratch/f",
    ])?;
    assert_eq!(out, "ok\n");
    Ok(())
}

#[test]
fn resource_flags_reach_the_containers_cgroups() -> Result<()> {
    let env = Env::new()?;
    let id = env.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--memory",
        "64m",
        "--pids-limit",
        "20",
        "--cpus",
        "0.5",
        BUSYBOX,
        "sleep",
        "60",
    ])?;
    let id = id.trim();
    // This host is hybrid (v1 controllers); the cgroup-v2 guest checks memory.max.
    let read = |c: &str, f: &str| -> Result<String> {
        let p = Path::new("/sys/fs/cgroup")
            .join(c)
            .join("berth")
            .join(id)
            .join(f);
        Ok(std::fs::read_to_string(&p)
            .with_context(|| format!("reading {}", p.display()))?
            .trim()
            .to_string())
    };
    if Path::new("/sys/fs/cgroup/memory").is_dir() {
        assert_eq!(
            read("memory", "memory.limit_in_bytes")?,
            (64u64 << 20).to_string()
        );
        assert_eq!(read("pids", "pids.max")?, "20");
        assert_eq!(read("cpu", "cpu.cfs_quota_us")?, "50000");
        assert_eq!(read("cpu", "cpu.cfs_period_us")?, "100000");
    }
    let c = env.inspect(id)?;
    assert_eq!(c["HostConfig"]["Memory"], 64u64 << 20);
    assert_eq!(c["HostConfig"]["NanoCpus"], 500_000_000u64);
    env.ok(&["rm", "-f", id])?;
    env.assert_clean(&[id.to_string()]);
    Ok(())
}

#[test]
fn overlay_whiteouts_hide_files_of_lower_layers() -> Result<()> {
    let env = Env::new()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    let base = busybox_image(&mut layout, "base", Compression::Gzip)?;
    let _ = base;
    // Layer 3 deletes /etc/motd, which layer 2 added.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "etc/.wh.motd", &[][..])?;
    let whiteout = b.into_inner()?;
    let built = layout.image(
        "amd64",
        &[
            (
                spec_tests::manager::images::busybox_layer()?,
                Compression::Gzip,
            ),
            (
                spec_tests::manager::images::file_layer("etc/motd", b"hello\n")?,
                Compression::Gzip,
            ),
            (whiteout, Compression::Gzip),
        ],
    )?;
    layout.tag("wh", &built)?;
    let reg = Registry::plain()?;
    let image = format!("{}/test/whiteout:1", reg.host());
    layout.push("wh", &image, &[])?;
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "test -e /etc/motd && echo present || echo absent; cat /etc/passwd | head -c 4",
    ])?;
    assert_eq!(out, "absent\nroot");
    Ok(())
}

#[test]
fn an_image_from_a_registry_is_pulled_on_first_run() -> Result<()> {
    let env = Env::new()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    busybox_image(&mut layout, "v1", Compression::Gzip)?;
    let reg = Registry::plain()?;
    let image = format!("{}/test/busybox:v1", reg.host());
    layout.push("v1", &image, &[])?;
    let (code, out, err) = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "cat",
        "/etc/motd",
    ])?;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "hello from v1\n", "stdout is the container's alone");
    assert!(err.contains("Unable to find image"), "{err}");
    // The second run finds it locally.
    let (_, _, err) = env.run(&["run", "--rm", "--network", "none", &image, "true"])?;
    assert!(!err.contains("Unable to find image"), "{err}");
    Ok(())
}

/// How many snapshots the overlay snapshotter holds (none before its first use).
fn overlay_snapshots(env: &Env) -> usize {
    std::fs::read_dir(env.berth.root().join("snapshots/overlay/snapshots"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

#[test]
fn an_image_a_container_uses_is_kept_until_forced_and_its_snapshots_go_with_it() -> Result<()> {
    let env = Env::new()?;
    let id = env.ok(&["create", "--network", "none", BUSYBOX, "sh", "-c", "exit 6"])?;
    let id = id.trim();
    let err = env.berth.fail(&["rmi", BUSYBOX])?;
    assert!(
        err.contains("conflict: unable to remove repository reference") && err.contains(&id[..12]),
        "{err}"
    );
    assert!(env
        .ok(&["images", "--format", "{{.Repository}}"])?
        .contains("busybox"));
    // -f untags; the container keeps its image and still starts.
    env.ok(&["rmi", "-f", BUSYBOX])?;
    env.ok(&["start", id])?;
    assert_eq!(env.ok(&["wait", id])?.trim(), "6");
    assert!(
        overlay_snapshots(&env) >= 2,
        "the image layer and the container's own"
    );
    env.ok(&["image", "prune", "-a"])?;
    assert_eq!(
        env.ok(&["images", "-q"])?.lines().count(),
        1,
        "in use: not pruned"
    );
    env.ok(&["rm", id])?;
    env.ok(&["image", "prune", "-a"])?;
    assert_eq!(env.ok(&["images", "-q"])?.trim(), "");
    assert_eq!(
        overlay_snapshots(&env),
        0,
        "every snapshot goes with the last image"
    );
    env.assert_clean(&[id.to_string()]);
    Ok(())
}

#[test]
fn pull_leaves_the_image_unpacked_and_ready_to_run() -> Result<()> {
    let env = Env::new()?;
    let before = overlay_snapshots(&env);
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    busybox_image(&mut layout, "ready", Compression::Gzip)?;
    let reg = Registry::plain()?;
    let image = format!("{}/test/busybox:ready", reg.host());
    layout.push("ready", &image, &[])?;
    env.ok(&["pull", &image])?;
    // Two layers, two committed snapshots, made by the pull itself.
    assert_eq!(overlay_snapshots(&env), before + 2);
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "cat",
        "/etc/motd",
    ])?;
    assert_eq!(out, "hello from ready\n");
    assert_eq!(
        overlay_snapshots(&env),
        before + 2,
        "run unpacked nothing again"
    );
    Ok(())
}

#[test]
fn pull_unpacks_a_layer_while_the_next_one_downloads() -> Result<()> {
    use spec_tests::manager::images::{file_layer, noise};
    let env = Env::new()?;
    let dir = tempfile::tempdir()?;
    let mut layout = Layout::create(&dir.path().join("layout"))?;
    // Layer 2 is 3 MB of noise: through the throttling proxy (~3 MB/s) it takes about a
    // second, long enough to see layer 1 committed while layer 2 is still an ingest.
    let built = layout.image(
        "amd64",
        &[
            (
                spec_tests::manager::images::busybox_layer()?,
                Compression::Gzip,
            ),
            (file_layer("big", &noise(3 << 20, 7))?, Compression::None),
        ],
    )?;
    layout.tag("slow", &built)?;
    let reg = Registry::plain()?;
    layout.push("slow", &format!("{}/test/slow:1", reg.host()), &[])?;
    let port: u16 = reg.host().rsplit(':').next().context("port")?.parse()?;
    let proxy = spec_tests::manager::proxy::Proxy::start(port)?;
    let image = format!("{}/test/slow:1", proxy.host());
    let mut child = Guard(
        env.berth
            .cmd(&["pull", "-q", "--max-concurrent-downloads", "1", &image])?
            .stdout(std::process::Stdio::null())
            .spawn()?,
    );
    let snapshots = env.berth.root().join("snapshots/overlay/snapshots");
    let ingest = env.berth.root().join("ingest");
    let count = |p: &Path| std::fs::read_dir(p).map(|rd| rd.count()).unwrap_or(0);
    let mut overlapped = false;
    while child.0.try_wait()?.is_none() {
        // A committed snapshot (not an extract in progress) while a blob is still downloading.
        let committed = std::fs::read_dir(env.berth.root().join("snapshots/overlay")).is_ok()
            && count(&snapshots) >= 1
            && std::fs::read_to_string(env.berth.root().join("snapshots/overlay/metadata.json"))
                .is_ok_and(|m| m.contains("committed"));
        if committed && count(&ingest) > 0 {
            overlapped = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(child.0.wait()?.success());
    assert!(
        overlapped,
        "layer 1 was not unpacked while layer 2 downloaded"
    );
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "echo $(wc -c < /big)",
    ])?;
    assert_eq!(out.trim(), (3u64 << 20).to_string());
    Ok(())
}

#[test]
fn cp_copies_into_and_out_of_stopped_and_running_containers_by_dockers_rules() -> Result<()> {
    let env = Env::new()?;
    let host = tempfile::tempdir()?;
    let h = |p: &str| host.path().join(p).to_string_lossy().into_owned();
    std::fs::create_dir(host.path().join("dir"))?;
    std::fs::write(host.path().join("dir/f.txt"), "hello")?;
    let id = env
        .ok(&[
            "create",
            "--network",
            "none",
            "--name",
            "cpbox",
            BUSYBOX,
            "sleep",
            "600",
        ])?
        .trim()
        .to_string();
    // A stopped container: into an existing directory, to a new name, a whole directory.
    env.ok(&["cp", &h("dir/f.txt"), "cpbox:/tmp"])?;
    env.ok(&["cp", &h("dir/f.txt"), "cpbox:/renamed"])?;
    env.ok(&["cp", &h("dir"), "cpbox:/copied"])?;
    let mounts = spec_tests::manager::network::mounts_under(&env.berth.root());
    assert!(mounts.is_empty(), "a copy left {mounts:?} mounted");
    env.ok(&["cp", "cpbox:/renamed", &h("out.txt")])?;
    assert_eq!(std::fs::read_to_string(h("out.txt"))?, "hello");
    env.ok(&["cp", "cpbox:/copied", &h("back")])?;
    assert_eq!(std::fs::read_to_string(h("back/f.txt"))?, "hello");
    let (code, _, err) = env.run(&["cp", "cpbox:/nope", &h("x")])?;
    assert_ne!(code, 0);
    assert!(
        err.contains("Could not find the file /nope in container"),
        "{err}"
    );
    let (code, _, err) = env.run(&["cp", &h("dir/f.txt"), "cpbox:/no/such/dir/x"])?;
    assert_ne!(code, 0);
    assert!(err.contains("no such directory in the container"), "{err}");
    // A trailing slash asks for an existing directory: a file is not put there as that name.
    let (code, _, err) = env.run(&["cp", &h("dir/f.txt"), "cpbox:/newdir/"])?;
    assert_ne!(code, 0);
    assert!(err.contains("/newdir/ does not exist"), "{err}");
    // A directory never replaces a file.
    let (code, _, err) = env.run(&["cp", &h("dir"), "cpbox:/renamed"])?;
    assert_ne!(code, 0);
    assert!(err.contains("cannot copy a directory to /renamed"), "{err}");
    // A running container sees what was copied, and takes more.
    env.ok(&["start", "cpbox"])?;
    env.ok(&["cp", &h("dir/f.txt"), "cpbox:/live"])?;
    let seen = env.ok(&[
        "exec",
        "cpbox",
        "cat",
        "/tmp/f.txt",
        "/renamed",
        "/copied/f.txt",
        "/live",
    ])?;
    assert_eq!(seen, "hellohellohellohello");
    env.ok(&["rm", "-f", "cpbox"])?;
    env.assert_clean(&[id]);
    Ok(())
}
