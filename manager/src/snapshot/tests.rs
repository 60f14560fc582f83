//! The suite every snapshotter runs (GUIDE section 3.5): layers are built in memory, unpacked
//! with `unpack::apply_layer` into active snapshots, committed under their ChainID, and read
//! back through a real mount of a view. Mounting needs root: without it the suite is skipped.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::Digest;

use super::*;
use crate::unpack::{apply_layer, UnpackError};

/// A layer tar built in memory.
struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        self.0.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    fn file_owned(mut self, path: &str, mode: u32, uid: u64, data: &[u8]) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(uid);
        self.0.append_data(&mut h, path, data).unwrap();
        self
    }

    fn file(self, path: &str, data: &[u8]) -> Self {
        self.file_owned(path, 0o644, 0, data)
    }

    fn link(mut self, kind: tar::EntryType, path: &str, target: &str) -> Self {
        let mut h = Self::header(kind, 0o777, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    fn node(mut self, kind: tar::EntryType, path: &str, major: u32, minor: u32) -> Self {
        let mut h = Self::header(kind, 0o640, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.0.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    fn pax(mut self, records: &[(&str, &[u8])]) -> Self {
        self.0
            .append_pax_extensions(records.iter().map(|(k, v)| (*k, *v)))
            .unwrap();
        self
    }

    /// An entry whose names are written raw, bypassing the builder's own `..` checks.
    fn raw(mut self, kind: tar::EntryType, name: &str, link: &str, data: &[u8]) -> Self {
        let mut h = Self::header(kind, 0o644, data.len() as u64);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn tar(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn gzip(tar: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(tar).unwrap();
    enc.finish().unwrap()
}

fn zstd(tar: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(tar, 3).unwrap()
}

fn sha(bytes: &[u8]) -> Digest {
    crate::content::sha256_of(bytes)
}

/// Unpacks `blob` on top of `parent` and commits it under its ChainID (as `unpack_image`
/// does); returns the ChainID.
fn commit_layer(
    sn: &dyn Snapshotter,
    parent: Option<&str>,
    blob: &[u8],
) -> Result<String, UnpackError> {
    static N: AtomicU64 = AtomicU64::new(0);
    let key = format!("test-extract-{}", N.fetch_add(1, Ordering::Relaxed));
    sn.prepare(&key, parent)?;
    let applied = match sn
        .apply_target(&key)
        .map_err(UnpackError::from)
        .and_then(|t| apply_layer(blob, &t))
    {
        Ok(a) => a,
        Err(e) => {
            sn.remove(&key).unwrap();
            return Err(e);
        }
    };
    let parent = parent.map(|p| Digest::from_str(p).unwrap());
    let chain = chain_id(parent.as_ref(), &applied.diff_id).to_string();
    if let Err(e) = sn.commit(&chain, &key) {
        sn.remove(&key).unwrap();
        return Err(e.into());
    }
    Ok(chain)
}

/// A read-only view of `top` mounted on a temp dir; unmounted and removed on drop.
struct Mounted<'a> {
    sn: &'a dyn Snapshotter,
    key: String,
    dir: tempfile::TempDir,
}

impl<'a> Mounted<'a> {
    fn view(sn: &'a dyn Snapshotter, top: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let key = format!("test-view-{}", N.fetch_add(1, Ordering::Relaxed));
        let dir = tempfile::tempdir().unwrap();
        let mounts = sn.view(&key, top).unwrap();
        mount_all(&mounts, dir.path()).unwrap();
        Self { sn, key, dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = unmount(self.dir.path());
        let _ = self.sn.remove(&self.key);
    }
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn whiteouts_delete_lower_entries_and_opaque_dirs_hide_lower_content(sn: &dyn Snapshotter) {
    let base = Layer::new()
        .dir("etc", 0o755)
        .file("etc/hosts", b"lower")
        .file("etc/keep", b"keep")
        .dir("opt", 0o755)
        .dir("opt/app", 0o750)
        .file("opt/app/old", b"old")
        .dir("opt/app/sub", 0o755)
        .file("opt/app/sub/deep", b"deep")
        .dir("var/gone", 0o755)
        .file("var/gone/x", b"x")
        .pax(&[("SCHILY.xattr.user.kept", b"yes")])
        .file_owned("lower-suid", 0o4750, 7, b"s")
        .link(tar::EntryType::Link, "lower-suid-link", "lower-suid")
        .node(tar::EntryType::Char, "lower-null", 1, 3)
        .tar();
    let base = commit_layer(sn, None, &gzip(&base)).unwrap();
    let top = Layer::new()
        .file("etc/.wh.hosts", b"")
        .file("var/.wh.gone", b"")
        .dir("opt/app", 0o750)
        .file("opt/app/new", b"new")
        .file("opt/app/.wh..wh..opq", b"")
        .file(".wh.never-existed", b"")
        .tar();
    let top = commit_layer(sn, Some(&base), &zstd(&top)).unwrap();
    let m = Mounted::view(sn, &top);
    assert!(!m.path("etc/hosts").exists(), "whiteout left etc/hosts");
    assert_eq!(fs::read(m.path("etc/keep")).unwrap(), b"keep");
    assert!(!m.path("var/gone").exists());
    assert!(m.path("var").is_dir());
    let mut app: Vec<_> = fs::read_dir(m.path("opt/app"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    app.sort();
    assert_eq!(app, [OsStr::new("new")], "opaque dir kept lower entries");
    assert!(!m.path(".wh.never-existed").exists());
    assert!(!m.path("never-existed").exists());
    // Lower layers' attributes survive in the upper snapshot (copy: through the copy).
    let suid = fs::symlink_metadata(m.path("lower-suid")).unwrap();
    assert_eq!(
        (suid.mode() & 0o7777, suid.uid(), suid.gid()),
        (0o4750, 7, 7)
    );
    assert_eq!(
        xattr(&m.path("lower-suid"), "user.kept").as_deref(),
        Some(&b"yes"[..])
    );
    let link = fs::symlink_metadata(m.path("lower-suid-link")).unwrap();
    assert_eq!(link.ino(), suid.ino());
    let null = fs::symlink_metadata(m.path("lower-null")).unwrap();
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    // The lower view is untouched.
    let lower = Mounted::view(sn, &base);
    assert_eq!(fs::read(lower.path("etc/hosts")).unwrap(), b"lower");
    assert!(lower.path("opt/app/sub/deep").exists());
}

fn file_types_modes_owners_and_xattrs_survive(sn: &dyn Snapshotter) {
    use tar::EntryType as E;
    let long_dir = "d".repeat(120);
    let long = format!("{long_dir}/{}", "f".repeat(140));
    let layer = Layer::new()
        .dir("usr/bin", 0o755)
        .file_owned("usr/bin/su", 0o4755, 0, b"su")
        .file_owned("usr/bin/wall", 0o2755, 5, b"wall")
        .dir("tmp", 0o1777)
        .file_owned("home/u/f", 0o600, 1000, b"mine")
        .link(E::Symlink, "bin", "usr/bin")
        .link(E::Symlink, "dangling", "/nowhere/at/all")
        .link(E::Link, "usr/bin/su-again", "usr/bin/su")
        .node(E::Char, "dev/null", 1, 3)
        .node(E::Block, "dev/loop9", 7, 9)
        .node(E::Fifo, "run/fifo", 0, 0)
        .pax(&[("SCHILY.xattr.user.note", b"hello")])
        .file("xattr-file", b"x")
        .pax(&[(
            "SCHILY.xattr.security.capability",
            &[
                1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        )])
        .file("cap-file", b"c")
        .pax(&[("uid", b"3000000"), ("gid", b"3000001")])
        .file("big-ids", b"b")
        .file(&long, b"long")
        .pax(&[("path", "p/".repeat(150).as_bytes())])
        .file("short-name-replaced-by-pax", b"pax")
        .tar();
    let top = commit_layer(sn, None, &layer).unwrap();
    let m = Mounted::view(sn, &top);
    let md = |p: &str| fs::symlink_metadata(m.path(p)).unwrap();
    assert_eq!(md("usr/bin/su").mode() & 0o7777, 0o4755);
    assert_eq!(md("usr/bin/wall").mode() & 0o7777, 0o2755);
    assert_eq!(md("usr/bin/wall").gid(), 5);
    assert_eq!(md("tmp").mode() & 0o7777, 0o1777);
    assert_eq!((md("home/u/f").uid(), md("home/u/f").gid()), (1000, 1000));
    assert_eq!(md("home/u/f").permissions().mode() & 0o777, 0o600);
    assert_eq!(md("usr/bin/su").mtime(), 1_600_000_000);
    assert_eq!(fs::read_link(m.path("bin")).unwrap(), Path::new("usr/bin"));
    assert_eq!(fs::read(m.path("bin/su")).unwrap(), b"su");
    assert_eq!(
        fs::read_link(m.path("dangling")).unwrap(),
        Path::new("/nowhere/at/all")
    );
    assert_eq!(md("usr/bin/su-again").ino(), md("usr/bin/su").ino());
    assert!(md("dev/null").file_type().is_char_device());
    assert_eq!(md("dev/null").rdev(), rustix::fs::makedev(1, 3));
    assert!(md("dev/loop9").file_type().is_block_device());
    assert!(md("run/fifo").file_type().is_fifo());
    assert_eq!(
        xattr(&m.path("xattr-file"), "user.note").as_deref(),
        Some(&b"hello"[..])
    );
    assert!(xattr(&m.path("cap-file"), "security.capability").is_some());
    assert_eq!(
        (md("big-ids").uid(), md("big-ids").gid()),
        (3_000_000, 3_000_001)
    );
    assert_eq!(fs::read(m.path(&long)).unwrap(), b"long");
    let pax_path = "p/".repeat(150);
    assert_eq!(
        fs::read(m.path(pax_path.trim_end_matches('/'))).unwrap(),
        b"pax"
    );
}

fn escapes_are_refused_and_nothing_is_written_outside(sn: &dyn Snapshotter, store: &Path) {
    use tar::EntryType as E;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dot-dot",
            Layer::new().raw(E::Regular, "a/../../evil", "", b"x").tar(),
            "escapes the root",
        ),
        (
            "hardlink",
            Layer::new()
                .raw(E::Link, "innocent", "../../../../../../etc/passwd", b"")
                .tar(),
            "points outside the root",
        ),
        (
            "symlink-parent",
            Layer::new()
                .link(E::Symlink, "up", "../../../../../../..")
                .raw(E::Regular, "up/evil", "", b"x")
                .tar(),
            "points outside the root",
        ),
        (
            "hardlink-through-symlink",
            Layer::new()
                .link(E::Symlink, "up", "../..")
                .raw(E::Link, "innocent", "up/etc/passwd", b"")
                .tar(),
            "points outside the root",
        ),
    ];
    let mut cases = cases;
    cases.push((
        "symlink-loop",
        Layer::new()
            .link(E::Symlink, "a", "b")
            .link(E::Symlink, "b", "a")
            .raw(E::Regular, "a/x", "", b"x")
            .tar(),
        "too many levels of symlinks",
    ));
    for (what, marker) in [
        ("whiteout-dotdot", "sub/.wh..."),
        ("whiteout-dot", "sub/.wh.."),
        ("whiteout-empty", ".wh."),
        ("whiteout-dotdot-at-root", ".wh..."),
    ] {
        let tar = Layer::new().dir("sub", 0o755).file(marker, b"").tar();
        cases.push((what, tar, "names no file"));
    }
    for (what, tar, msg) in cases {
        let err = commit_layer(sn, None, &tar).unwrap_err();
        assert!(err.to_string().contains(msg), "{what}: {err}");
    }
    let before = sn.list().unwrap();
    assert!(
        before.iter().all(|i| !i.key.starts_with("test-extract")),
        "{before:?}"
    );
    let mut stack = vec![store.parent().unwrap().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            assert_ne!(e.file_name(), "evil", "{} written", e.path().display());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    // Absolute names and absolute symlinks stay inside, as docker and umoci keep them.
    let layer = Layer::new()
        .raw(E::Regular, "/abs-name", "", b"a")
        .link(E::Symlink, "root-link", "/")
        .raw(E::Regular, "root-link/via-abs-link", "", b"b")
        .tar();
    let top = commit_layer(sn, None, &layer).unwrap();
    let m = Mounted::view(sn, &top);
    assert_eq!(fs::read(m.path("abs-name")).unwrap(), b"a");
    assert_eq!(fs::read(m.path("via-abs-link")).unwrap(), b"b");
}

fn layers_are_shared_by_chain_id_and_removed_only_when_unused(sn: &dyn Snapshotter) {
    let base = Layer::new().file("base", b"base").tar();
    let a = Layer::new().file("a", b"a").tar();
    let b = Layer::new().file("b", b"b").tar();
    // The same tar compressed differently has the same diffID, so the same ChainID.
    let base1 = commit_layer(sn, None, &gzip(&base)).unwrap();
    assert_eq!(base1, sha(&base).to_string());
    let err = commit_layer(sn, None, &zstd(&base)).unwrap_err();
    assert!(
        matches!(
            err,
            UnpackError::Snapshot(SnapshotError::AlreadyExists { .. })
        ),
        "{err}"
    );
    let top_a = commit_layer(sn, Some(&base1), &a).unwrap();
    let top_b = commit_layer(sn, Some(&base1), &b).unwrap();
    let expected = chain_id(Some(&sha(&base)), &sha(&a)).to_string();
    assert_eq!(top_a, expected);
    assert!(matches!(
        sn.remove(&base1),
        Err(SnapshotError::InUse { .. })
    ));
    {
        let m = Mounted::view(sn, &top_a);
        assert!(m.path("base").exists() && m.path("a").exists() && !m.path("b").exists());
        // A view in use protects its chain.
        assert_eq!(remove_chain(sn, &top_a).unwrap(), Vec::<String>::new());
    }
    assert!(sn.usage(&top_a).unwrap().inodes >= 2);
    assert_eq!(remove_chain(sn, &top_a).unwrap(), vec![top_a.clone()]);
    assert_eq!(
        remove_chain(sn, &top_b).unwrap(),
        vec![top_b.clone(), base1.clone()]
    );
    assert!(sn.list().unwrap().is_empty());
}

fn active_snapshots_are_writable_and_commit_makes_them_visible(sn: &dyn Snapshotter) {
    let base = commit_layer(sn, None, &Layer::new().file("f", b"1").tar()).unwrap();
    let mounts = sn.prepare("container", Some(&base)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    mount_all(&mounts, dir.path()).unwrap();
    let wrote =
        fs::write(dir.path().join("f"), b"2").and_then(|()| fs::write(dir.path().join("g"), b"3"));
    unmount(dir.path()).unwrap();
    wrote.unwrap();
    assert!(matches!(
        sn.view("x", "container"),
        Err(SnapshotError::WrongKind { .. })
    ));
    assert!(matches!(
        sn.commit(&base, "container"),
        Err(SnapshotError::AlreadyExists { .. })
    ));
    sn.commit("committed-container", "container").unwrap();
    let m = Mounted::view(sn, "committed-container");
    assert_eq!(fs::read(m.path("f")).unwrap(), b"2");
    assert_eq!(fs::read(m.path("g")).unwrap(), b"3");
    let lower = Mounted::view(sn, &base);
    assert_eq!(fs::read(lower.path("f")).unwrap(), b"1");
    assert!(
        fs::write(lower.path("new"), b"").is_err(),
        "views are read-only"
    );
}

fn diff_id_is_the_hash_of_the_uncompressed_tar(sn: &dyn Snapshotter) {
    let tar = Layer::new().file("x", &[7u8; 100_000]).tar();
    let mut padded = tar.clone();
    padded.extend_from_slice(&[0u8; 10240]);
    for blob in [tar.clone(), gzip(&tar), zstd(&tar), padded.clone()] {
        let key = "diff";
        sn.prepare(key, None).unwrap();
        let t = sn.apply_target(key).unwrap();
        let applied = apply_layer(&blob[..], &t).unwrap();
        let raw = if blob == padded { &padded } else { &tar };
        assert_eq!(applied.diff_id, sha(raw));
        sn.remove(key).unwrap();
    }
}

fn a_layer_unpacks_while_it_is_still_being_written(sn: &dyn Snapshotter) {
    use crate::unpack::stream::{Progress, Tail};
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..2_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let tar = Layer::new()
        .file("first", b"early")
        .file("big", &noise)
        .tar();
    let blob = gzip(&tar);
    let dir = tempfile::tempdir().unwrap();
    let ingest = dir.path().join("ingest");
    let mut file = fs::File::create(&ingest).unwrap();
    let progress = Progress::new();
    let reader = Tail::open(&ingest, progress.clone()).unwrap();
    let (layer, diff) = (sha(&blob), sha(&tar));
    std::thread::scope(|s| {
        let unpacker =
            s.spawn(|| crate::unpack::unpack_layer_from(sn, reader, &layer, &diff, None));
        // Half the blob "downloaded": the first file must appear before the rest arrives.
        let half = blob.len() / 2;
        file.write_all(&blob[..half]).unwrap();
        progress.advance(half as u64);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let seen = loop {
            let early = sn
                .list()
                .unwrap()
                .into_iter()
                .find(|i| i.key.starts_with("extract-"));
            if let Some(info) = early {
                if sn
                    .apply_target(&info.key)
                    .unwrap()
                    .dir
                    .join("first")
                    .exists()
                {
                    break true;
                }
            }
            if std::time::Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        file.write_all(&blob[half..]).unwrap();
        progress.advance(blob.len() as u64);
        progress.finish();
        let (chain, _) = unpacker.join().unwrap().unwrap();
        assert!(seen, "nothing was unpacked before the download finished");
        assert_eq!(chain, diff);
        let m = Mounted::view(sn, chain.as_ref());
        assert_eq!(fs::read(m.path("big")).unwrap(), noise);
    });
}

/// More lower directories than fit in mount(2)'s one page of options.
fn a_long_chain_of_layers_mounts(sn: &dyn Snapshotter) {
    let mut top: Option<String> = None;
    for i in 0..130 {
        let layer = Layer::new().file(&format!("layer-{i}"), b"x").tar();
        top = Some(commit_layer(sn, top.as_deref(), &layer).unwrap());
    }
    let top = top.unwrap();
    let m = Mounted::view(sn, &top);
    for i in 0..130 {
        assert!(m.path(&format!("layer-{i}")).exists(), "layer {i} missing");
    }
    let mounts = sn.prepare("rw-on-long-chain", Some(&top)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    mount_all(&mounts, dir.path()).unwrap();
    let wrote = fs::write(dir.path().join("new"), b"n");
    unmount(dir.path()).unwrap();
    wrote.unwrap();
}

fn skip() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("skipped: mounting snapshots needs root");
    }
    !root
}

macro_rules! suite {
    ($backend:ident, $open:expr) => {
        mod $backend {
            use super::*;

            fn open() -> (tempfile::TempDir, Box<dyn Snapshotter>, PathBuf) {
                let dir = tempfile::tempdir().unwrap();
                let store = dir.path().join("snapshots");
                let sn: Box<dyn Snapshotter> = Box::new($open(&store).unwrap());
                (dir, sn, store)
            }

            #[test]
            fn whiteouts_delete_lower_entries_and_opaque_dirs_hide_lower_content() {
                if skip() {
                    return;
                }
                let (_d, sn, _) = open();
                super::whiteouts_delete_lower_entries_and_opaque_dirs_hide_lower_content(&*sn);
            }

            #[test]
            fn file_types_modes_owners_and_xattrs_survive() {
                if skip() {
                    return;
                }
                let (_d, sn, _) = open();
                super::file_types_modes_owners_and_xattrs_survive(&*sn);
            }

            #[test]
            fn escapes_are_refused_and_nothing_is_written_outside() {
                if skip() {
                    return;
                }
                let (_d, sn, store) = open();
                super::escapes_are_refused_and_nothing_is_written_outside(&*sn, &store);
            }

            #[test]
            fn layers_are_shared_by_chain_id_and_removed_only_when_unused() {
                if skip() {
                    return;
                }
                let (_d, sn, _) = open();
                super::layers_are_shared_by_chain_id_and_removed_only_when_unused(&*sn);
            }

            #[test]
            fn active_snapshots_are_writable_and_commit_makes_them_visible() {
                if skip() {
                    return;
                }
                let (_d, sn, _) = open();
                super::active_snapshots_are_writable_and_commit_makes_them_visible(&*sn);
            }

            #[test]
            fn a_layer_unpacks_while_it_is_still_being_written() {
                if skip() {
                    return;
                }
                let (_d, sn, _) = open();
                super::a_layer_unpacks_while_it_is_still_being_written(&*sn);
            }

            #[test]
            fn a_long_chain_of_layers_mounts() {
                if skip() {
                    return;
                }
                let (_d, sn, _) = open();
                super::a_long_chain_of_layers_mounts(&*sn);
            }

            #[test]
            fn diff_id_is_the_hash_of_the_uncompressed_tar() {
                if skip() {
                    return;
                }
                let (_d, sn, _) = open();
                super::diff_id_is_the_hash_of_the_uncompressed_tar(&*sn);
            }
        }
    };
}

suite!(overlay, OverlaySnapshotter::open);
suite!(copy, CopySnapshotter::open);
