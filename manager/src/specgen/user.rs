//! Resolving `-u`/the image's User against the image's /etc/passwd and /etc/group.
//!
//! The files are read from inside the container's root filesystem, which is untrusted: an image
//! may make /etc/passwd a symlink to `/etc/shadow` or `../../../etc/passwd`. Opening with
//! openat2(2) RESOLVE_IN_ROOT makes the kernel resolve every component (symlinks and `..`
//! included) as if the rootfs were `/`, so nothing outside it is ever read.
//!
//! The matching rules follow libcontainer's GetExecUser, which docker and podman use.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rustix::fs::{openat2, FileType, Mode, OFlags, ResolveFlags, CWD};

/// Largest passwd or group file read (bytes).
const MAX_DB_SIZE: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {user}: no matching entries in passwd file")]
    NoSuchUser { user: String },
    #[error("unable to find group {group}: no matching entries in group file")]
    NoSuchGroup { group: String },
    #[error("user {spec:?}: ids must be between 0 and {max}", max = u32::MAX - 1)]
    IdOutOfRange { spec: String },
    #[error("{file} in root filesystem {rootfs} is not a regular file")]
    NotRegular { rootfs: PathBuf, file: &'static str },
    #[error("reading {file} in root filesystem {rootfs}")]
    Read {
        rootfs: PathBuf,
        file: &'static str,
        #[source]
        source: io::Error,
    },
}

/// The process identity for `process.user`, plus the home directory for `HOME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the groups listing the user as a member, when no group was given.
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

/// Resolves `user[:group]` (names or numbers; empty means root) inside `rootfs`.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser, UserError> {
    let passwd = read_in_root(rootfs, "etc/passwd", "/etc/passwd")?;
    let group = read_in_root(rootfs, "etc/group", "/etc/group")?;
    resolve_from(spec, &passwd, &group)
}

/// Resolves `--group-add` values (group names or numeric ids) against the rootfs's /etc/group.
pub fn resolve_groups(rootfs: &Path, groups: &[String]) -> Result<Vec<u32>, UserError> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let group = read_in_root(rootfs, "etc/group", "/etc/group")?;
    groups.iter().map(|g| group_id(&group, g)).collect()
}

fn group_id(group: &str, name: &str) -> Result<u32, UserError> {
    if let Some(gid) = parse_group(group).find(|e| e.name == name).map(|e| e.gid) {
        return Ok(gid);
    }
    match name.parse::<u32>() {
        Ok(gid) if gid < u32::MAX => Ok(gid),
        Ok(_) => Err(UserError::IdOutOfRange {
            spec: name.to_string(),
        }),
        Err(_) => Err(UserError::NoSuchGroup {
            group: name.to_string(),
        }),
    }
}

fn resolve_from(spec: &str, passwd: &str, group: &str) -> Result<ResolvedUser, UserError> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let numeric = |s: &str| -> Result<Option<u32>, UserError> {
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
            return Ok(None);
        }
        match s.parse::<u32>() {
            Ok(n) if n < u32::MAX => Ok(Some(n)),
            _ => Err(UserError::IdOutOfRange {
                spec: spec.to_string(),
            }),
        }
    };
    let uid_arg = numeric(user_arg)?;

    let found = parse_passwd(passwd).find(|u| match (user_arg, uid_arg) {
        ("", _) => u.uid == 0,
        (_, Some(uid)) => u.uid == uid,
        (name, None) => u.name == name,
    });
    let (uid, mut gid, name, home) = match (found, uid_arg) {
        (Some(u), _) => (u.uid, u.gid, u.name, u.home.to_string()),
        (None, _) if user_arg.is_empty() => (0, 0, "", "/".to_string()),
        // A numeric uid without a passwd entry is fine: it runs with gid 0.
        (None, Some(uid)) => (uid, 0, "", "/".to_string()),
        (None, None) => {
            return Err(UserError::NoSuchUser {
                user: user_arg.to_string(),
            })
        }
    };

    let mut additional_gids = Vec::new();
    match group_arg {
        Some(g) => {
            let gid_arg = numeric(g)?;
            let found = parse_group(group).find(|e| match gid_arg {
                Some(gid) => e.gid == gid,
                None => e.name == g,
            });
            gid = match (found, gid_arg) {
                (Some(e), _) => e.gid,
                (None, Some(gid)) => gid,
                (None, None) => {
                    return Err(UserError::NoSuchGroup {
                        group: g.to_string(),
                    })
                }
            };
        }
        None if !name.is_empty() => {
            additional_gids = parse_group(group)
                .filter(|e| e.members.contains(&name))
                .map(|e| e.gid)
                .collect();
        }
        None => {}
    }
    // docker (since the fix for GHSA-rc4r-wh2q-q6c4) and containerd list the primary group
    // among the supplementary ones, so that setgroups(2) never leaves it out.
    if !additional_gids.contains(&gid) {
        additional_gids.insert(0, gid);
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home: if home.is_empty() {
            "/".to_string()
        } else {
            home
        },
    })
}

/// Reads `rel` with the rootfs as the resolution root; a missing file reads as empty, as
/// libcontainer treats it.
fn read_in_root(rootfs: &Path, rel: &str, file: &'static str) -> Result<String, UserError> {
    let err = |source: io::Error| UserError::Read {
        rootfs: rootfs.to_path_buf(),
        file,
        source,
    };
    let root = openat2(
        CWD,
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::empty(),
    )
    .map_err(|e| err(e.into()))?;
    // O_NONBLOCK so a FIFO planted by the image cannot hang us before the type check below.
    let fd = match openat2(
        &root,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(String::new()),
        Err(e) => return Err(err(e.into())),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| err(e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(UserError::NotRegular {
            rootfs: rootfs.to_path_buf(),
            file,
        });
    }
    // Bounded, so a giant file in an image cannot exhaust memory; real ones are kilobytes.
    let mut text = String::new();
    File::from(fd)
        .take(MAX_DB_SIZE)
        .read_to_string(&mut text)
        .map_err(err)?;
    Ok(text)
}

/// passwd(5) lines `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped.
fn parse_passwd(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.trim().split(':').collect();
        if f.len() < 4 || f[0].starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

/// group(5) lines `name:password:gid:member,member`; malformed lines are skipped.
fn parse_group(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.trim().split(':').collect();
        if f.len() < 3 || f[0].starts_with('#') {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f
                .get(3)
                .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
        # a comment\n\
        broken line\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\n\
        wheel:x:10:root,app\n\
        staff:x:50:app\n\
        app:x:1000:\n\
        nogroup:x:65534:\n";

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
        fs::write(dir.path().join("etc/group"), GROUP).unwrap();
        dir
    }

    fn user(spec: &str) -> Result<ResolvedUser, UserError> {
        let dir = rootfs();
        resolve_user(dir.path(), spec)
    }

    #[test]
    fn empty_user_is_root_with_its_home_and_groups() {
        let u = user("").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert_eq!(u.additional_gids, vec![0, 10]);
    }

    #[test]
    fn name_resolves_uid_gid_home_and_supplementary_groups() {
        let u = user("app").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/app"));
        assert_eq!(u.additional_gids, vec![1000, 10, 50]);
    }

    #[test]
    fn explicit_group_replaces_gid_and_drops_supplementary_groups() {
        let u = user("app:staff").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        assert_eq!(u.additional_gids, vec![50]);
        let u = user("1:65534").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1, 65534, "/usr/sbin"));
        let u = user("0:4242").unwrap();
        assert_eq!((u.uid, u.gid), (0, 4242));
    }

    #[test]
    fn numeric_uid_without_entry_gets_gid_zero() {
        let u = user("4321").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4321, 0, "/"));
        assert_eq!(u.additional_gids, vec![0]);
    }

    #[test]
    fn unknown_names_fail_with_docker_messages() {
        let err = user("nobody-here").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find user nobody-here: no matching entries in passwd file"
        );
        let err = user("app:nogroup-here").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find group nogroup-here: no matching entries in group file"
        );
        assert!(matches!(
            user("4294967295"),
            Err(UserError::IdOutOfRange { .. })
        ));
    }

    #[test]
    fn group_add_resolves_names_and_numbers() {
        let dir = rootfs();
        let gids = resolve_groups(dir.path(), &["staff".into(), "4242".into()]).unwrap();
        assert_eq!(gids, vec![50, 4242]);
        let err = resolve_groups(dir.path(), &["ghosts".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find group ghosts: no matching entries in group file"
        );
        assert!(resolve_groups(dir.path(), &[]).unwrap().is_empty());
    }

    #[test]
    fn missing_files_mean_no_entries() {
        let dir = tempfile::tempdir().unwrap();
        let u = resolve_user(dir.path(), "").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/"));
        let u = resolve_user(dir.path(), "1000:1000").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert!(matches!(
            resolve_user(dir.path(), "app"),
            Err(UserError::NoSuchUser { .. })
        ));
    }

    #[test]
    fn symlinked_passwd_pointing_outside_the_root_is_not_read_from_the_host() {
        // A host file the image tries to reach by an absolute and by a `..` symlink.
        let host = tempfile::tempdir().unwrap();
        let host_passwd = host.path().join("passwd");
        fs::write(&host_passwd, "evil:x:0:0::/evil:/bin/sh\n").unwrap();

        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        symlink(&host_passwd, root.path().join("etc/passwd")).unwrap();
        let err = resolve_user(root.path(), "evil").unwrap_err();
        assert!(matches!(err, UserError::NoSuchUser { .. }), "{err}");

        let ups = "../".repeat(host.path().components().count() + 8);
        let rel = format!("{ups}{}", host_passwd.display());
        fs::remove_file(root.path().join("etc/passwd")).unwrap();
        symlink(&rel, root.path().join("etc/passwd")).unwrap();
        let err = resolve_user(root.path(), "evil").unwrap_err();
        assert!(matches!(err, UserError::NoSuchUser { .. }), "{err}");
    }

    #[test]
    fn a_fifo_or_directory_passwd_is_refused_without_hanging() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.path().join("etc/passwd"),
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let err = resolve_user(root.path(), "app").unwrap_err();
        assert!(matches!(err, UserError::NotRegular { .. }), "{err}");
        fs::remove_file(root.path().join("etc/passwd")).unwrap();
        fs::create_dir(root.path().join("etc/passwd")).unwrap();
        let err = resolve_user(root.path(), "app").unwrap_err();
        assert!(matches!(err, UserError::NotRegular { .. }), "{err}");
    }

    #[test]
    fn symlink_inside_the_root_is_followed_within_it() {
        let root = rootfs();
        fs::rename(
            root.path().join("etc/passwd"),
            root.path().join("etc/passwd.real"),
        )
        .unwrap();
        symlink("/etc/passwd.real", root.path().join("etc/passwd")).unwrap();
        let u = resolve_user(root.path(), "app").unwrap();
        assert_eq!(u.uid, 1000);
    }
}
