//! Running as an ordinary user (runc's rootless mode).
//!
//! A non-root caller can only make a container inside a user namespace of its own. The kernel
//! lets it write that namespace's id maps itself when they map nothing but its own uid and gid
//! (and setgroups is denied first, user_namespaces(7)); anything wider goes through the
//! set-uid helpers `newuidmap`/`newgidmap` (package uidmap), which check the caller's
//! subordinate ranges in /etc/subuid and /etc/subgid. What the spec asks for that such a user
//! cannot have is refused here, before anything is created, with the field at fault named.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType, Spec};

#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error("linux.namespaces: a rootless container needs a user namespace (run `berth-runtime spec --rootless` for a config that has one)")]
    NoUserNamespace,
    #[error("{field}: a user namespace needs mappings; none given")]
    NoMappings { field: &'static str },
    #[error("{field}: host {kind}s {first}-{last} are neither yours ({own}) nor delegated to {user} in {file}")]
    NotDelegated {
        field: &'static str,
        kind: &'static str,
        first: u64,
        last: u64,
        own: u32,
        user: String,
        file: &'static str,
    },
    #[error("{field}: mapping more than your own id needs {helper} (Debian package uidmap)")]
    NoHelper {
        field: &'static str,
        helper: &'static str,
    },
    #[error("{field}: {kind} {id} is not mapped in linux.{maps}")]
    Unmapped {
        field: &'static str,
        kind: &'static str,
        id: u32,
        maps: &'static str,
    },
    #[error("process.user.additionalGids: a rootless container whose gidMappings map only your own gid cannot set supplementary groups (setgroups is denied); map a range from /etc/subgid instead")]
    NoSupplementaryGroups,
    #[error("{field}: {helper} {args} failed: {message}")]
    Helper {
        field: &'static str,
        helper: &'static str,
        args: String,
        message: String,
    },
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Whether this process runs without root's privileges: a non-zero effective uid, or root
/// inside a user namespace that does not map the whole id space (runc's test).
pub fn is_rootless() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return true;
    }
    fs::read_to_string("/proc/self/uid_map")
        .map(|m| !is_initial_map(&m))
        .unwrap_or(false)
}

fn is_initial_map(map: &str) -> bool {
    let fields: Vec<&str> = map.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

/// The default `--root` of a non-root caller: `$XDG_RUNTIME_DIR/berth` (runc uses
/// `$XDG_RUNTIME_DIR/runc`). `None` for root or when the variable is unset.
pub fn default_state_root() -> Option<PathBuf> {
    // SAFETY: geteuid cannot fail and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        return None;
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .map(|d| PathBuf::from(d).join("berth"))
}

/// One line of /etc/subuid or /etc/subgid: `first` and `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubRange {
    pub first: u64,
    pub count: u64,
}

/// The ranges delegated to the user `name` (or numeric `id`) in a subuid/subgid text.
pub fn parse_subids(text: &str, name: &str, id: u32) -> Vec<SubRange> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, first, count) = (f.next()?, f.next()?, f.next()?);
            (who == name || who.parse::<u32>().ok() == Some(id)).then_some(())?;
            Some(SubRange {
                first: first.trim().parse().ok()?,
                count: count.trim().parse().ok()?,
            })
        })
        .collect()
}

/// The caller's name, from the password database ("" if it has no entry).
pub fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default()
}

/// The caller's subordinate uid and gid ranges.
pub fn own_ranges() -> (Vec<SubRange>, Vec<SubRange>) {
    // SAFETY: getuid cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    let name = user_name(uid);
    let read = |f: &str| parse_subids(&fs::read_to_string(f).unwrap_or_default(), &name, uid);
    (read("/etc/subuid"), read("/etc/subgid"))
}

/// How the id maps of a new user namespace get written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapWriter {
    /// By the runtime itself: root, or a map of the caller's own id alone.
    Direct,
    /// Through newuidmap/newgidmap.
    Helper,
}

/// Checks what a non-root caller's spec asks for, before anything is created.
/// Returns how the uid and gid maps will be written.
pub fn check(spec: &Spec) -> Result<(MapWriter, MapWriter), RootlessError> {
    let linux = spec.linux().clone().unwrap_or_default();
    let new_user = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User);
    if !new_user {
        return Err(RootlessError::NoUserNamespace);
    }
    let joins_user = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_some());
    if joins_user {
        // The namespace exists: its maps are its owner's business.
        return Ok((MapWriter::Direct, MapWriter::Direct));
    }
    // SAFETY: geteuid/getegid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let (subuid, subgid) = own_ranges();
    let name = user_name(uid);
    let uids = linux.uid_mappings().clone().unwrap_or_default();
    let gids = linux.gid_mappings().clone().unwrap_or_default();
    let uw = check_maps(
        "linux.uidMappings",
        "uid",
        &uids,
        uid,
        &subuid,
        &name,
        "/etc/subuid",
    )?;
    let gw = check_maps(
        "linux.gidMappings",
        "gid",
        &gids,
        gid,
        &subgid,
        &name,
        "/etc/subgid",
    )?;
    if uw == MapWriter::Helper && which("newuidmap").is_none() {
        return Err(RootlessError::NoHelper {
            field: "linux.uidMappings",
            helper: "newuidmap",
        });
    }
    if gw == MapWriter::Helper && which("newgidmap").is_none() {
        return Err(RootlessError::NoHelper {
            field: "linux.gidMappings",
            helper: "newgidmap",
        });
    }
    if let Some(user) = spec.process().as_ref().map(|p| p.user()) {
        let mapped = |maps: &[LinuxIdMapping], id: u32| {
            maps.iter().any(|m| {
                id >= m.container_id() && (id as u64) < m.container_id() as u64 + m.size() as u64
            })
        };
        if !mapped(&uids, user.uid()) {
            return Err(RootlessError::Unmapped {
                field: "process.user.uid",
                kind: "uid",
                id: user.uid(),
                maps: "uidMappings",
            });
        }
        if !mapped(&gids, user.gid()) {
            return Err(RootlessError::Unmapped {
                field: "process.user.gid",
                kind: "gid",
                id: user.gid(),
                maps: "gidMappings",
            });
        }
        let extra = user.additional_gids().clone().unwrap_or_default();
        if !extra.is_empty() && gw == MapWriter::Direct {
            return Err(RootlessError::NoSupplementaryGroups);
        }
        if let Some(&g) = extra.iter().find(|&&g| !mapped(&gids, g)) {
            return Err(RootlessError::Unmapped {
                field: "process.user.additionalGids",
                kind: "gid",
                id: g,
                maps: "gidMappings",
            });
        }
    }
    Ok((uw, gw))
}

fn check_maps(
    field: &'static str,
    kind: &'static str,
    maps: &[LinuxIdMapping],
    own: u32,
    ranges: &[SubRange],
    user: &str,
    file: &'static str,
) -> Result<MapWriter, RootlessError> {
    if maps.is_empty() {
        return Err(RootlessError::NoMappings { field });
    }
    if let [m] = maps {
        if m.host_id() == own && m.size() == 1 {
            return Ok(MapWriter::Direct);
        }
    }
    for m in maps {
        let (first, last) = (
            m.host_id() as u64,
            m.host_id() as u64 + (m.size() as u64).max(1) - 1,
        );
        let own_id = first == own as u64 && last == own as u64;
        let delegated = ranges
            .iter()
            .any(|r| first >= r.first && last < r.first + r.count);
        if !own_id && !delegated {
            return Err(RootlessError::NotDelegated {
                field,
                kind,
                first,
                last,
                own,
                user: if user.is_empty() {
                    format!("uid {own}")
                } else {
                    user.to_string()
                },
                file,
            });
        }
    }
    Ok(MapWriter::Helper)
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/bin", "/usr/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Writes the id maps of the new user namespace of `pid`: itself (setgroups denied first when
/// a non-root caller maps its own gid) or through newuidmap/newgidmap.
pub fn write_id_maps(
    pid: i32,
    linux: &Linux,
    writers: (MapWriter, MapWriter),
) -> Result<(), RootlessError> {
    // SAFETY: geteuid cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    let jobs = [
        (
            "uid_map",
            "newuidmap",
            "linux.uidMappings",
            linux.uid_mappings(),
            writers.0,
        ),
        (
            "gid_map",
            "newgidmap",
            "linux.gidMappings",
            linux.gid_mappings(),
            writers.1,
        ),
    ];
    for (file, helper, field, maps, writer) in jobs {
        let maps = maps.clone().unwrap_or_default();
        if maps.is_empty() {
            continue;
        }
        if writer == MapWriter::Helper {
            let mut args = vec![pid.to_string()];
            for m in &maps {
                args.extend([m.container_id(), m.host_id(), m.size()].map(|v| v.to_string()));
            }
            let out = Command::new(which(helper).unwrap_or_else(|| PathBuf::from(helper)))
                .args(&args)
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|source| RootlessError::Io {
                    action: "running",
                    path: PathBuf::from(helper),
                    source,
                })?;
            if !out.status.success() {
                return Err(RootlessError::Helper {
                    field,
                    helper,
                    args: args.join(" "),
                    message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
            continue;
        }
        if file == "gid_map" && !root {
            write(&format!("/proc/{pid}/setgroups"), "deny")?;
        }
        let content: String = maps
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        write(&format!("/proc/{pid}/{file}"), &content)?;
    }
    Ok(())
}

fn write(path: &str, content: &str) -> Result<(), RootlessError> {
    fs::write(path, content).map_err(|source| RootlessError::Io {
        action: "writing",
        path: Path::new(path).to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subids_are_found_by_name_or_number() {
        let text = "alice:100000:65536\n1001:300000:10\nbob:200000:65536\nalice:500000:5\n";
        assert_eq!(
            parse_subids(text, "alice", 1000),
            vec![
                SubRange {
                    first: 100000,
                    count: 65536
                },
                SubRange {
                    first: 500000,
                    count: 5
                }
            ]
        );
        assert_eq!(
            parse_subids(text, "carol", 1001),
            vec![SubRange {
                first: 300000,
                count: 10
            }]
        );
        assert!(parse_subids(text, "dave", 7).is_empty());
    }

    fn map(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        oci_spec::runtime::LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(s)
            .build()
            .expect("mapping")
    }

    #[test]
    fn own_id_alone_is_written_directly_and_ranges_need_delegation() {
        let ranges = [SubRange {
            first: 100000,
            count: 65536,
        }];
        let f = "linux.uidMappings";
        let direct = check_maps(
            f,
            "uid",
            &[map(0, 1000, 1)],
            1000,
            &ranges,
            "a",
            "/etc/subuid",
        );
        assert_eq!(direct.expect("ok"), MapWriter::Direct);
        let wide = [map(0, 1000, 1), map(1, 100000, 65536)];
        let helper = check_maps(f, "uid", &wide, 1000, &ranges, "a", "/etc/subuid");
        assert_eq!(helper.expect("ok"), MapWriter::Helper);
        let err = check_maps(f, "uid", &[map(0, 0, 1)], 1000, &ranges, "a", "/etc/subuid")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("linux.uidMappings: host uids 0-0 "),
            "{err}"
        );
        let err = check_maps(
            f,
            "uid",
            &[map(0, 100000, 65537)],
            1000,
            &ranges,
            "a",
            "/etc/subuid",
        );
        assert!(err.is_err());
    }

    #[test]
    fn the_initial_map_is_recognised() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        assert!(!is_initial_map("         0       1000          1\n"));
    }
}
