use super::*;

use std::os::unix::fs::{symlink, FileTypeExt, PermissionsExt};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn store() -> (tempfile::TempDir, VolumeStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = VolumeStore::open(dir.path()).unwrap();
    (dir, store)
}

#[test]
fn names_follow_docker_rules() {
    for ok in ["ab", "a1", "my-vol_1.2", "0x"] {
        validate_name(ok).unwrap();
    }
    assert!(matches!(
        validate_name("a"),
        Err(VolumeError::NameTooShort { .. })
    ));
    for bad in ["", "-ab", ".ab", "a/b", "a b", "ä1", "_x", "..", "a/../b"] {
        assert!(
            matches!(validate_name(bad), Err(VolumeError::InvalidName { .. })),
            "{bad}"
        );
    }
}

#[test]
fn create_is_idempotent_and_records_everything() {
    let (dir, s) = store();
    let v = s
        .create(
            Some("data"),
            labels(&[("team", "a")]),
            labels(&[("type", "tmpfs"), ("device", "tmpfs")]),
        )
        .unwrap();
    assert_eq!(v.mountpoint, dir.path().join("volumes/data/_data"));
    assert!(v.mountpoint.is_dir());
    assert_eq!(v.driver, "local");
    assert!(!v.anonymous);
    humantime::parse_rfc3339(&v.created_at).unwrap();
    // Docker returns the existing volume, ignoring the new labels.
    let again = s
        .create(Some("data"), labels(&[("other", "b")]), BTreeMap::new())
        .unwrap();
    assert_eq!(again, v);
    assert_eq!(s.get("data").unwrap(), v);
    let j = v.inspect_json();
    assert_eq!(j["Name"], "data");
    assert_eq!(j["Scope"], "local");
    assert_eq!(j["Labels"]["team"], "a");
    assert_eq!(j["Options"]["type"], "tmpfs");
    assert!(matches!(
        s.create(Some("x"), BTreeMap::new(), BTreeMap::new()),
        Err(VolumeError::NameTooShort { .. })
    ));
    assert!(matches!(
        s.create(Some("ok"), BTreeMap::new(), labels(&[("bogus", "1")])),
        Err(VolumeError::InvalidOptions { .. })
    ));
    assert!(matches!(s.get("nope"), Err(VolumeError::NotFound { .. })));
}

#[test]
fn anonymous_volumes_get_random_hex_names_and_the_docker_label() {
    let (_dir, s) = store();
    let a = s.create(None, BTreeMap::new(), BTreeMap::new()).unwrap();
    let b = s.create(None, BTreeMap::new(), BTreeMap::new()).unwrap();
    assert_ne!(a.name, b.name);
    assert_eq!(a.name.len(), 64);
    assert!(a.name.bytes().all(|c| c.is_ascii_hexdigit()));
    assert!(a.anonymous);
    assert_eq!(a.labels.get(ANONYMOUS_LABEL).map(String::as_str), Some(""));
}

#[test]
fn list_filters_by_name_label_dangling_and_driver() {
    let (_dir, s) = store();
    s.create(Some("web-data"), labels(&[("app", "web")]), BTreeMap::new())
        .unwrap();
    s.create(
        Some("db-data"),
        labels(&[("app", "db"), ("tier", "x")]),
        BTreeMap::new(),
    )
    .unwrap();
    s.create(Some("cache"), BTreeMap::new(), BTreeMap::new())
        .unwrap();
    let users: HashMap<String, Vec<String>> =
        [("db-data".to_string(), vec!["c1".to_string()])].into();
    let names = |terms: &[&str]| -> Vec<String> {
        let terms: Vec<String> = terms.iter().map(|t| t.to_string()).collect();
        let f = VolumeFilter::parse(&terms).unwrap();
        s.list(&f, &users)
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect()
    };
    assert_eq!(names(&[]), ["cache", "db-data", "web-data"]);
    assert_eq!(names(&["name=data"]), ["db-data", "web-data"]);
    assert_eq!(names(&["label=app"]), ["db-data", "web-data"]);
    assert_eq!(names(&["label=app=web"]), ["web-data"]);
    assert_eq!(names(&["label!=app"]), ["cache"]);
    assert_eq!(names(&["label=app", "label=tier=x"]), ["db-data"]);
    assert_eq!(names(&["dangling=true"]), ["cache", "web-data"]);
    assert_eq!(names(&["dangling=false"]), ["db-data"]);
    assert_eq!(names(&["driver=local", "name=cache"]), ["cache"]);
    for bad in ["bogus=1", "dangling=maybe", "noequals"] {
        assert!(VolumeFilter::parse(&[bad.to_string()]).is_err(), "{bad}");
    }
}

#[test]
fn remove_refuses_volumes_in_use_and_missing_ones() {
    let (dir, s) = store();
    s.create(Some("busy"), BTreeMap::new(), BTreeMap::new())
        .unwrap();
    let e = s.remove("busy", &["abc123".to_string()]).unwrap_err();
    assert_eq!(e.to_string(), "remove busy: volume is in use - [abc123]");
    assert!(s.get("busy").is_ok());
    std::fs::write(dir.path().join("volumes/busy/_data/f"), b"x").unwrap();
    s.remove("busy", &[]).unwrap();
    assert!(!dir.path().join("volumes/busy").exists());
    assert!(matches!(
        s.remove("busy", &[]),
        Err(VolumeError::NotFound { .. })
    ));
    // A volume whose data directory went missing can still be removed.
    s.create(Some("damaged"), BTreeMap::new(), BTreeMap::new())
        .unwrap();
    std::fs::remove_dir(dir.path().join("volumes/damaged/_data")).unwrap();
    s.remove("damaged", &[]).unwrap();
    assert!(!dir.path().join("volumes/damaged").exists());
}

#[test]
fn prune_removes_unused_anonymous_volumes_unless_all() {
    let (_dir, s) = store();
    let anon_free = s.create(None, BTreeMap::new(), BTreeMap::new()).unwrap();
    let anon_used = s.create(None, BTreeMap::new(), BTreeMap::new()).unwrap();
    s.create(Some("named"), labels(&[("keep", "no")]), BTreeMap::new())
        .unwrap();
    s.create(Some("named2"), BTreeMap::new(), BTreeMap::new())
        .unwrap();
    std::fs::write(anon_free.mountpoint.join("f"), vec![0u8; 1000]).unwrap();
    let users: HashMap<String, Vec<String>> =
        [(anon_used.name.clone(), vec!["c".to_string()])].into();
    let report = s.prune(false, &VolumeFilter::default(), &users).unwrap();
    assert_eq!(report.deleted, vec![anon_free.name]);
    assert_eq!(report.reclaimed, 1000);
    let f = VolumeFilter::parse(&["label=keep=no".to_string()]).unwrap();
    let report = s.prune(true, &f, &users).unwrap();
    assert_eq!(report.deleted, ["named"]);
    let report = s.prune(true, &VolumeFilter::default(), &users).unwrap();
    assert_eq!(report.deleted, ["named2"]);
    let left: Vec<String> = s
        .list(&VolumeFilter::default(), &users)
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(left, [anon_used.name]);
}

#[test]
fn concurrent_creates_of_one_name_agree() {
    let (_dir, s) = store();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                s.create(Some("shared"), BTreeMap::new(), BTreeMap::new())
                    .unwrap()
            })
        })
        .collect();
    let vols: Vec<Volume> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(vols.iter().all(|v| v == &vols[0]));
}

/// A container rootfs with content under /srv/app: files with odd modes and owners, a
/// hardlink, symlinks (one pointing outside the rootfs, one dangling), a FIFO, a device, an
/// empty dir, an xattr and old mtimes; plus a host file the outward symlink names.
struct Rootfs {
    dir: tempfile::TempDir,
}

impl Rootfs {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("rootfs/srv/app");
        std::fs::create_dir_all(app.join("sub/empty")).unwrap();
        std::fs::write(dir.path().join("host-secret"), b"host only").unwrap();
        std::fs::write(app.join("conf"), b"config\n").unwrap();
        std::fs::set_permissions(app.join("conf"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::chown(app.join("conf"), Some(1234), Some(5678)).unwrap();
        std::fs::write(app.join("sub/tool"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            app.join("sub/tool"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        std::fs::hard_link(app.join("conf"), app.join("sub/conf-link")).unwrap();
        symlink(dir.path().join("host-secret"), app.join("escape")).unwrap();
        symlink("../../../../host-secret", app.join("sub/escape-rel")).unwrap();
        symlink("conf", app.join("rel")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            app.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            app.join("null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        let _ = rustix::fs::setxattr(
            app.join("conf"),
            "user.note",
            b"kept",
            rustix::fs::XattrFlags::empty(),
        );
        let old = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 5,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 5,
            },
        };
        for p in ["conf", "sub", "sub/empty"] {
            rustix::fs::utimensat(
                rustix::fs::CWD,
                app.join(p),
                &old,
                rustix::fs::AtFlags::empty(),
            )
            .unwrap();
        }
        std::os::unix::fs::chown(&app, Some(70), Some(70)).unwrap();
        std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o750)).unwrap();
        // /var/lib/data is a symlink to a directory outside the rootfs.
        std::fs::create_dir_all(dir.path().join("rootfs/var/lib")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside-dir")).unwrap();
        std::fs::write(dir.path().join("outside-dir/leak"), b"leak").unwrap();
        symlink(
            dir.path().join("outside-dir"),
            dir.path().join("rootfs/var/lib/data"),
        )
        .unwrap();
        Self { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
}

#[test]
fn populate_copies_image_content_without_following_symlinks_out() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root (chown, mknod)");
        return;
    }
    let rootfs = Rootfs::new();
    let (_dir, s) = store();
    let v = s
        .create(Some("app"), BTreeMap::new(), BTreeMap::new())
        .unwrap();
    assert!(s.populate(&v, &rootfs.root().join("srv/app")).unwrap());
    let d = &v.mountpoint;
    let md = |p: &str| std::fs::symlink_metadata(d.join(p)).unwrap();
    use std::os::unix::fs::MetadataExt;
    // The volume root takes the source directory's owner and mode.
    assert_eq!(
        (md(".").uid(), md(".").gid(), md(".").mode() & 0o7777),
        (70, 70, 0o750)
    );
    assert_eq!(std::fs::read(d.join("conf")).unwrap(), b"config\n");
    assert_eq!((md("conf").uid(), md("conf").gid()), (1234, 5678));
    assert_eq!(md("conf").mode() & 0o7777, 0o640);
    assert_eq!(md("conf").mtime(), 1_000_000);
    assert_eq!(md("conf").mtime_nsec(), 5);
    assert_eq!(md("sub").mtime(), 1_000_000);
    assert_eq!(md("sub/tool").mode() & 0o7777, 0o4755);
    assert!(md("sub/empty").is_dir());
    assert_eq!(md("sub/conf-link").ino(), md("conf").ino());
    assert!(md("fifo").file_type().is_fifo());
    assert!(md("null").file_type().is_char_device());
    assert_eq!(md("null").rdev(), rustix::fs::makedev(1, 3));
    // Symlinks are copied as links, never read through.
    assert!(md("escape").file_type().is_symlink());
    assert_eq!(
        std::fs::read_link(d.join("escape")).unwrap(),
        rootfs.dir.path().join("host-secret")
    );
    assert_eq!(
        std::fs::read_link(d.join("sub/escape-rel")).unwrap(),
        Path::new("../../../../host-secret")
    );
    assert_eq!(
        std::fs::read_link(d.join("rel")).unwrap(),
        Path::new("conf")
    );
    let mut buf = [0u8; 16];
    if let Ok(n) = rustix::fs::getxattr(
        rootfs.root().join("srv/app/conf"),
        "user.note",
        &mut buf[..],
    ) {
        assert_eq!(&buf[..n], b"kept");
        let n = rustix::fs::getxattr(d.join("conf"), "user.note", &mut buf[..]).unwrap();
        assert_eq!(&buf[..n], b"kept");
    }
    // A second mount finds the volume non-empty and copies nothing.
    std::fs::write(rootfs.root().join("srv/app/new"), b"n").unwrap();
    assert!(!s.populate(&v, &rootfs.root().join("srv/app")).unwrap());
    assert!(!d.join("new").exists());
}

#[test]
fn populate_from_rootfs_resolves_symlinks_inside_the_root() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root (chown, mknod)");
        return;
    }
    let rootfs = Rootfs::new();
    let (_dir, s) = store();
    let v = s
        .create(Some("data"), BTreeMap::new(), BTreeMap::new())
        .unwrap();
    // /var/lib/data -> <host>/outside-dir: resolved inside the rootfs, that target does not
    // exist there, so nothing is copied (and the host directory is not read).
    assert!(!s
        .populate_from_rootfs(&v, &rootfs.root(), Path::new("/var/lib/data"))
        .unwrap());
    assert!(std::fs::read_dir(&v.mountpoint).unwrap().next().is_none());
    // A path that does not exist in the image: nothing to copy.
    assert!(!s
        .populate_from_rootfs(&v, &rootfs.root(), Path::new("/no/such"))
        .unwrap());
    // A file, not a directory: nothing to copy.
    assert!(!s
        .populate_from_rootfs(&v, &rootfs.root(), Path::new("/srv/app/conf"))
        .unwrap());
    assert!(s
        .populate_from_rootfs(&v, &rootfs.root(), Path::new("/srv/../srv/app"))
        .unwrap());
    assert_eq!(
        std::fs::read(v.mountpoint.join("conf")).unwrap(),
        b"config\n"
    );
}

#[test]
fn volumes_with_mount_options_mount_once_and_unmount_on_removal() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root (mount)");
        return;
    }
    /// Unmounts what the test mounted even when an assertion fails, so no mount outlives
    /// the temp dirs.
    struct Unmount(Vec<PathBuf>);
    impl Drop for Unmount {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = mount::unmount_all(p);
            }
        }
    }
    let (dir, s) = store();
    let _guard = Unmount(vec![
        dir.path().join("volumes/fast/_data"),
        dir.path().join("volumes/bound/_data"),
    ]);
    let v = s
        .create(
            Some("fast"),
            BTreeMap::new(),
            labels(&[
                ("type", "tmpfs"),
                ("device", "tmpfs"),
                ("o", "size=1m,mode=0750"),
            ]),
        )
        .unwrap();
    assert!(!mount::is_mounted(&v.mountpoint).unwrap());
    let path = s.mount(&v).unwrap();
    assert_eq!(path, v.mountpoint);
    assert!(mount::is_mounted(&path).unwrap());
    let fs = rustix::fs::statfs(&path).unwrap();
    assert_eq!(fs.f_type as i64, 0x0102_1994, "tmpfs magic");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o750);
    std::fs::write(path.join("f"), b"x").unwrap();
    // A second user finds it mounted and does not stack another tmpfs.
    s.mount(&v).unwrap();
    assert_eq!(std::fs::read(path.join("f")).unwrap(), b"x");
    s.remove("fast", &[]).unwrap();
    assert!(!path.exists());

    // A bind of a host directory: removing the volume unmounts and leaves the host files.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("keep"), b"host").unwrap();
    let b = s
        .create(
            Some("bound"),
            BTreeMap::new(),
            labels(&[
                ("type", "none"),
                ("device", host.path().to_str().unwrap()),
                ("o", "bind,ro"),
            ]),
        )
        .unwrap();
    let path = s.mount(&b).unwrap();
    assert_eq!(std::fs::read(path.join("keep")).unwrap(), b"host");
    assert!(std::fs::write(path.join("new"), b"x").is_err(), "ro bind");
    s.remove("bound", &[]).unwrap();
    assert_eq!(std::fs::read(host.path().join("keep")).unwrap(), b"host");
}

#[test]
fn a_failed_copy_leaves_the_volume_empty_for_the_next_try() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root (chown, mknod, mount)");
        return;
    }
    let rootfs = Rootfs::new();
    let app = rootfs.root().join("srv/app");
    // Sorted after the small entries, so the copy fails part-way.
    std::fs::write(app.join("zz-big"), vec![1u8; 512 * 1024]).unwrap();
    let (dir, s) = store();
    let data = dir.path().join("volumes/small/_data");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = mount::unmount_all(&self.0);
        }
    }
    let _guard = Unmount(data.clone());
    // A 256 KiB tmpfs: the big file does not fit.
    let v = s
        .create(
            Some("small"),
            BTreeMap::new(),
            labels(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=256k")]),
        )
        .unwrap();
    s.mount(&v).unwrap();
    let err = s.populate(&v, &app).unwrap_err();
    let chain = format!("{:?}", error_chain(&err));
    assert!(chain.contains("zz-big"), "{chain}");
    assert!(
        std::fs::read_dir(&data).unwrap().next().is_none(),
        "partial copy left behind"
    );
    // With room, the next start copies everything.
    std::fs::remove_file(app.join("zz-big")).unwrap();
    assert!(s.populate(&v, &app).unwrap());
    assert_eq!(std::fs::read(data.join("conf")).unwrap(), b"config\n");
}

fn error_chain(e: &dyn std::error::Error) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push(c.to_string());
        cur = c.source();
    }
    out
}
