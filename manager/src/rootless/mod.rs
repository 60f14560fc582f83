//! Berth run by an ordinary user (rootless): what changes, and what is not available.
//!
//! The store lives under `$XDG_DATA_HOME/berth`, the configuration under
//! `$XDG_CONFIG_HOME/berth` (see config.rs) and run-time state under `$XDG_RUNTIME_DIR/berth`
//! (network::run_dir). A container gets a user namespace mapping container root to the user
//! and, when the user has a subordinate range in /etc/subuid and /etc/subgid (and the uidmap
//! helpers are installed), container ids 1.. to that range. Its root filesystem is a copy
//! snapshot the runtime uses in place (an unprivileged user cannot mount on the host).
//! Networking: the default network is slirp4netns's user-mode network in a namespace the
//! runtime makes (network::slirp; `-p` forwards through it), plus `none` and `host`; the
//! user-defined networks live in a per-user network namespace of the user's own (`netns`,
//! `networks`), wired there by the root code.
//!
//! With subordinate ranges, image files are stored with their owners shifted into them (see
//! `userns`), so that the container's user namespace shows the image's owners.

pub mod netns;
pub mod networks;
pub mod userns;

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, MountBuilder,
    Spec,
};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error("--network {mode}: not available to rootless berth yet (use the default network, --network none or --network host)")]
    Network { mode: String },
    #[error("--network {mode}: rootless berth's default network needs slirp4netns (install the slirp4netns package), or use --network none or --network host")]
    NoSlirp { mode: String },
    #[error("network create {name}: {reason}")]
    NetworkCreate { name: String, reason: &'static str },
    #[error("--snapshotter {name}: not available to rootless berth (an unprivileged user cannot mount it on the host); use --snapshotter copy")]
    Snapshotter { name: String },
    #[error("building the rootless spec ({what})")]
    Build {
        what: &'static str,
        #[source]
        source: oci_spec::OciSpecError,
    },
}

/// Whether berth runs without root's privileges.
pub fn is_rootless() -> bool {
    !rustix::process::geteuid().is_root()
}

/// One subordinate range: `first` and `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SubRange {
    pub first: u32,
    pub count: u32,
}

/// The ids a rootless container maps: the user's own, then its first subordinate ranges
/// (when the helpers that may write them are installed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdRanges {
    pub uid: u32,
    pub gid: u32,
    pub sub_uids: Option<SubRange>,
    pub sub_gids: Option<SubRange>,
}

/// A feature that is off when rootless, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disabled {
    pub feature: &'static str,
    pub reason: String,
}

pub(crate) fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/bin", "/usr/sbin", "/bin"].map(PathBuf::from))
        .any(|d| d.join(program).is_file())
}

/// The ranges delegated to user `name` (or numeric `id`) in a subuid/subgid text: the first.
pub fn parse_subids(text: &str, name: &str, id: u32) -> Option<SubRange> {
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let (who, first, count) = (f.next()?, f.next()?, f.next()?);
        (who == name || who.parse::<u32>().ok() == Some(id)).then_some(())?;
        Some(SubRange {
            first: first.trim().parse().ok()?,
            count: count.trim().parse().ok()?,
        })
    })
}

/// The caller's ids and subordinate ranges.
pub fn id_ranges() -> IdRanges {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default();
    let read = |file: &str, helper: &str| {
        which(helper)
            .then(|| parse_subids(&fs::read_to_string(file).unwrap_or_default(), &name, uid))
            .flatten()
    };
    IdRanges {
        uid,
        gid,
        sub_uids: read("/etc/subuid", "newuidmap"),
        sub_gids: read("/etc/subgid", "newgidmap"),
    }
}

/// Whether a rootless container can have resource limits: on cgroup v2, when this process's
/// own cgroup (or its parent, systemd's delegation) is writable by the user.
pub fn limits_available() -> bool {
    let root = Path::new("/sys/fs/cgroup");
    if !root.join("cgroup.controllers").exists() {
        return false;
    }
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let Some(rel) = own.lines().find_map(|l| l.strip_prefix("0::")) else {
        return false;
    };
    let dir = root.join(rel.trim_start_matches('/'));
    let writable = |d: &Path| {
        d.starts_with(root)
            && rustix::fs::access(
                d.join("cgroup.subtree_control"),
                rustix::fs::Access::WRITE_OK,
            )
            .is_ok()
    };
    writable(&dir) || dir.parent().is_some_and(writable)
}

/// What rootless berth does not offer, with the reason (for `info`).
pub fn disabled_features(ids: &IdRanges) -> Vec<Disabled> {
    let mut out = vec![
        Disabled {
            feature: "host bridge networks",
            reason: if crate::network::slirp::available() {
                "bridges, veths and firewall rules cannot be made on the host: the default network is slirp4netns's user-mode network, user-defined networks live in berth's rootless network namespace (reached through slirp4netns; -p forwards from the host's addresses)".into()
            } else {
                "creating bridges, veth pairs and firewall rules needs root, and slirp4netns is not installed: use --network none or host".into()
            },
        },
        Disabled {
            feature: "overlay snapshotter",
            reason: "an unprivileged user cannot mount overlayfs on the host; the copy snapshotter is used".into(),
        },
    ];
    if !limits_available() {
        out.push(Disabled {
            feature: "resource limits",
            reason: "no writable (delegated) cgroup: --memory, --cpus, --pids-limit and the like are ignored with a warning".into(),
        });
    }
    if ids.sub_uids.is_none() || ids.sub_gids.is_none() {
        out.push(Disabled {
            feature: "users other than root in containers",
            reason: "no subordinate ids for this user in /etc/subuid and /etc/subgid (or newuidmap/newgidmap missing): only container root is mapped".into(),
        });
    }
    out
}

/// Checks a network mode for a rootless container: none, host, the default network, which
/// slirp4netns provides, or a user-defined network (made in the rootless network namespace,
/// see `networks`; its existence is the network store's to check). (Another container's
/// namespace belongs to that container's user namespace, which a new one cannot enter yet.)
pub fn check_network(mode: &str) -> Result<(), RootlessError> {
    match mode {
        "none" | "host" => Ok(()),
        m if networks::is_user_network(m) && crate::network::slirp::available() => Ok(()),
        crate::network::DEFAULT_NETWORK if crate::network::slirp::available() => Ok(()),
        crate::network::DEFAULT_NETWORK => Err(RootlessError::NoSlirp { mode: mode.into() }),
        m => Err(RootlessError::Network { mode: m.into() }),
    }
}

/// Whether a rootless container of this network mode gets slirp4netns's network.
pub fn uses_slirp(mode: &str) -> bool {
    is_rootless() && mode == crate::network::DEFAULT_NETWORK
}

fn mapping(container: u32, host: u32, size: u32) -> Result<LinuxIdMapping, RootlessError> {
    LinuxIdMappingBuilder::default()
        .container_id(container)
        .host_id(host)
        .size(size)
        .build()
        .map_err(|source| RootlessError::Build {
            what: "id mapping",
            source,
        })
}

/// Turns a generated spec into one an unprivileged user can run: a user namespace with the
/// user's ids, /sys bound from the host (sysfs cannot be mounted without a network namespace
/// of the container's own), no device cgroup rules.
pub fn adapt_spec(spec: &mut Spec, ids: &IdRanges) -> Result<(), RootlessError> {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    if !namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User)
    {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::User)
                .build()
                .map_err(|source| RootlessError::Build {
                    what: "user namespace",
                    source,
                })?,
        );
    }
    let maps = |own: u32, sub: Option<SubRange>| -> Result<Vec<LinuxIdMapping>, RootlessError> {
        let mut v = vec![mapping(0, own, 1)?];
        if let Some(r) = sub {
            v.push(mapping(1, r.first, r.count)?);
        }
        Ok(v)
    };
    linux.set_uid_mappings(Some(maps(ids.uid, ids.sub_uids)?));
    linux.set_gid_mappings(Some(maps(ids.gid, ids.sub_gids)?));
    let own_netns = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Network);
    linux.set_namespaces(Some(namespaces));
    if let Some(mut res) = linux.resources().clone() {
        res.set_devices(None);
        linux.set_resources(Some(res));
    }
    if !limits_available() {
        // No cgroup the user may write (the limits were discarded with a warning): runc, as
        // an alternative runtime, only tolerates that for a container without a cgroup path.
        linux.set_cgroups_path(None);
    }
    spec.set_linux(Some(linux));
    // The primary group listed among the supplementary ones (docker's rule, see specgen) is
    // implied by the gid anyway; runc refuses any supplementary group in a rootless container.
    if let Some(mut process) = spec.process().clone() {
        let mut user = process.user().clone();
        let gid = user.gid();
        if let Some(gids) = user.additional_gids().clone() {
            let rest: Vec<u32> = gids.into_iter().filter(|g| *g != gid).collect();
            user.set_additional_gids((!rest.is_empty()).then_some(rest));
            process.set_user(user);
            spec.set_process(Some(process));
        }
    }
    // The rootfs is a link to the snapshot (no bind mount on the host): runc, as an
    // alternative runtime, refuses a root path that is a symlink, so name the tree itself.
    if let Some(mut root) = spec.root().clone() {
        let is_link = fs::symlink_metadata(root.path()).is_ok_and(|m| m.file_type().is_symlink());
        if let (true, Ok(real)) = (is_link, fs::canonicalize(root.path())) {
            root.set_path(real);
            spec.set_root(Some(root));
        }
    }
    if !own_netns {
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        for m in mounts.iter_mut() {
            if m.destination() == Path::new("/sys") && m.typ().as_deref() == Some("sysfs") {
                *m = MountBuilder::default()
                    .destination("/sys")
                    .typ("none")
                    .source("/sys")
                    .options(
                        ["rbind", "nosuid", "noexec", "nodev", "ro"]
                            .map(String::from)
                            .to_vec(),
                    )
                    .build()
                    .map_err(|source| RootlessError::Build {
                        what: "/sys mount",
                        source,
                    })?;
            }
        }
        spec.set_mounts(Some(mounts));
    }
    // Supplementary groups outside the mapping cannot be set.
    if let Some(mut process) = spec.process().clone() {
        let mapped_gids = 1 + ids.sub_gids.map_or(0, |r| r.count);
        let mut user = process.user().clone();
        if let Some(extra) = user.additional_gids().clone() {
            let kept: Vec<u32> = extra.into_iter().filter(|g| *g < mapped_gids).collect();
            user.set_additional_gids((!kept.is_empty()).then_some(kept));
        }
        process.set_user(user);
        spec.set_process(Some(process));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_range_of_the_user_is_used() {
        let text = "alice:100000:65536\n1001:300000:10\nalice:500000:5\n";
        assert_eq!(
            parse_subids(text, "alice", 1000),
            Some(SubRange {
                first: 100000,
                count: 65536
            })
        );
        assert_eq!(
            parse_subids(text, "bob", 1001),
            Some(SubRange {
                first: 300000,
                count: 10
            })
        );
        assert_eq!(parse_subids(text, "carol", 7), None);
    }

    #[test]
    fn none_host_and_user_networks_are_allowed_and_container_mode_is_not() {
        assert!(check_network("none").is_ok());
        assert!(check_network("host").is_ok());
        assert_eq!(
            check_network("mynet").is_ok(),
            crate::network::slirp::available()
        );
        let err = check_network("container:abc").unwrap_err().to_string();
        assert!(err.starts_with("--network container:abc: "), "{err}");
    }
}
