//! The spec's mounts: docker's defaults, then the user's mounts and generated /etc files.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, MountBuilder};

use super::flags::{Propagation, TmpfsOptions};
use super::options::{NamespaceMode, Options, ResolvedSource};
use super::process::INIT_PATH;
use super::SpecGenError;

/// /dev/shm's size when --shm-size is not given (docker's 64 MiB).
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;

/// Paths docker hides with an empty read-only file or tmpfs: they leak host information
/// (/proc/kcore, /proc/keys, timer lists) or give handles on hardware.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths docker remounts read-only: writing them changes the host kernel's state.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn mount(
    dest: &str,
    typ: &str,
    source: impl Into<PathBuf>,
    options: &[&str],
) -> Result<Mount, SpecGenError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source.into())
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(|source| SpecGenError::Build {
            what: "mount",
            source,
        })
}

/// Docker's default mounts. /sys is read-write with --privileged; the cgroup filesystem is
/// read-write with --privileged or writable-cgroups.
fn default_mounts(opts: &Options) -> Result<Vec<Mount>, SpecGenError> {
    let sec = &opts.security;
    let sys_ro = if sec.privileged { "rw" } else { "ro" };
    let cgroup_ro = if sec.privileged || sec.writable_cgroups {
        "rw"
    } else {
        "ro"
    };
    let shm_size = format!(
        "size={}k",
        // --shm-size 0 means the default, as in docker.
        opts.resources
            .shm_size
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_SHM_SIZE)
            / 1024
    );
    // Sharing the host's IPC namespace means sharing its POSIX shared memory too, which lives
    // in the host's /dev/shm rather than in the namespace.
    let shm = if opts.namespaces.ipc == NamespaceMode::Host {
        mount("/dev/shm", "bind", "/dev/shm", &["rbind", "rprivate", "rw"])?
    } else {
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        )?
    };
    Ok(vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        // gid=5 is the conventional tty group; newinstance gives the container its own ptmx.
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_ro],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", cgroup_ro],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        shm,
    ])
}

/// All mounts in order, plus the root propagation that shared or slave binds need.
pub(crate) fn mounts(opts: &Options) -> Result<(Vec<Mount>, Option<String>), SpecGenError> {
    let mut user: Vec<Mount> = Vec::new();
    let mut root_propagation: Option<Propagation> = None;
    for m in &opts.mounts {
        let dest = path_str(&m.target)?;
        let rw = if m.readonly { "ro" } else { "rw" };
        match &m.source {
            ResolvedSource::Bind { path, propagation } => {
                let prop = propagation.unwrap_or(Propagation::Rprivate);
                root_propagation = stronger(root_propagation, prop);
                user.push(mount(dest, "bind", path, &["rbind", rw, prop.as_option()])?);
            }
            ResolvedSource::Tmpfs(t) => {
                let options = tmpfs_options(t, m.readonly);
                let refs: Vec<&str> = options.iter().map(String::as_str).collect();
                user.push(mount(dest, "tmpfs", "tmpfs", &refs)?);
            }
        }
    }
    // Generated /etc files follow the root's writability, as docker's do.
    let etc_rw = if opts.security.read_only { "ro" } else { "rw" };
    for (ctr, host) in &opts.etc_files {
        user.push(mount(
            path_str(ctr)?,
            "bind",
            host,
            &["rbind", "rprivate", etc_rw],
        )?);
    }
    if let Some(init) = &opts.process.init {
        user.push(mount(INIT_PATH, "bind", init, &["bind", "ro"])?);
    }
    // Parents before children, else a later parent mount would hide a child's; stable, so
    // equal depths keep the user's order.
    user.sort_by_key(|m| m.destination().components().count());

    let covered = |dest: &Path| {
        user.iter().any(|u| {
            u.destination() == dest
                || (u.destination() == Path::new("/dev") && dest.starts_with("/dev"))
        })
    };
    let mut all: Vec<Mount> = default_mounts(opts)?
        .into_iter()
        .filter(|m| !covered(m.destination()))
        .collect();
    all.extend(user);

    let root_propagation = root_propagation.and_then(|p| match p {
        Propagation::Shared | Propagation::Rshared => Some("rshared".to_string()),
        Propagation::Slave | Propagation::Rslave => Some("rslave".to_string()),
        _ => None,
    });
    Ok((all, root_propagation))
}

/// Shared binds need a shared root, slave binds at least a slave root (moby's rule).
fn stronger(current: Option<Propagation>, new: Propagation) -> Option<Propagation> {
    let rank = |p: Option<Propagation>| match p {
        Some(Propagation::Shared | Propagation::Rshared) => 2,
        Some(Propagation::Slave | Propagation::Rslave) => 1,
        _ => 0,
    };
    if rank(Some(new)) > rank(current) {
        Some(new)
    } else {
        current
    }
}

/// Docker's tmpfs defaults noexec,nosuid,nodev, where the user's own flag for the same
/// setting (exec, suid, dev) wins; then size and mode.
fn tmpfs_options(t: &TmpfsOptions, readonly: bool) -> Vec<String> {
    let opposite = |f: &str| -> String {
        match f.strip_prefix("no") {
            Some(rest) => rest.to_string(),
            None => format!("no{f}"),
        }
    };
    let mut out: Vec<String> = ["noexec", "nosuid", "nodev"]
        .iter()
        .filter(|d| !t.flags.iter().any(|f| *f == opposite(d) || f == *d))
        .map(|d| d.to_string())
        .collect();
    out.extend(t.flags.iter().cloned());
    if let Some(size) = t.size {
        out.push(format!("size={size}"));
    }
    if let Some(mode) = t.mode {
        out.push(format!("mode={mode:o}"));
    }
    out.push(if readonly { "ro" } else { "rw" }.to_string());
    out
}

fn path_str(p: &Path) -> Result<&str, SpecGenError> {
    p.to_str().ok_or_else(|| SpecGenError::NonUtf8Path {
        path: p.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::specgen::options::ResolvedMount;

    fn find<'a>(ms: &'a [Mount], dest: &str) -> &'a Mount {
        ms.iter()
            .find(|m| m.destination() == Path::new(dest))
            .unwrap_or_else(|| panic!("no mount at {dest}"))
    }

    fn opts_of(m: &Mount) -> Vec<String> {
        m.options().clone().unwrap_or_default()
    }

    #[test]
    fn defaults_are_docker_like() {
        let (ms, prop) = mounts(&Options::default()).unwrap();
        let dests: Vec<_> = ms.iter().map(|m| m.destination().clone()).collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm"
            ]
            .map(PathBuf::from)
        );
        assert!(opts_of(find(&ms, "/sys")).contains(&"ro".to_string()));
        assert!(opts_of(find(&ms, "/dev/pts")).contains(&"gid=5".to_string()));
        assert!(opts_of(find(&ms, "/dev/shm")).contains(&"size=65536k".to_string()));
        assert_eq!(prop, None);
    }

    #[test]
    fn privileged_makes_sys_and_cgroup_writable_and_shm_size_applies() {
        let mut o = Options::default();
        o.security.privileged = true;
        o.resources.shm_size = Some(128 << 20);
        let (ms, _) = mounts(&o).unwrap();
        assert!(opts_of(find(&ms, "/sys")).contains(&"rw".to_string()));
        assert!(opts_of(find(&ms, "/sys/fs/cgroup")).contains(&"rw".to_string()));
        assert!(opts_of(find(&ms, "/dev/shm")).contains(&"size=131072k".to_string()));
    }

    #[test]
    fn user_mounts_replace_defaults_and_sort_parents_first() {
        let mut o = Options {
            mounts: vec![
                ResolvedMount {
                    target: "/data/sub".into(),
                    readonly: true,
                    source: ResolvedSource::Bind {
                        path: "/h/sub".into(),
                        propagation: Some(Propagation::Rshared),
                    },
                },
                ResolvedMount {
                    target: "/data".into(),
                    readonly: false,
                    source: ResolvedSource::Bind {
                        path: "/h".into(),
                        propagation: None,
                    },
                },
                ResolvedMount {
                    target: "/dev/shm".into(),
                    readonly: false,
                    source: ResolvedSource::Tmpfs(TmpfsOptions {
                        size: Some(1 << 20),
                        mode: Some(0o1777),
                        flags: vec!["exec".into()],
                    }),
                },
            ],
            ..Default::default()
        };
        o.etc_files = vec![("/etc/hosts".into(), "/run/berth/c1/hosts".into())];
        o.security.read_only = true;
        let (ms, prop) = mounts(&o).unwrap();
        assert_eq!(
            ms.iter()
                .filter(|m| m.destination() == Path::new("/dev/shm"))
                .count(),
            1
        );
        let shm = find(&ms, "/dev/shm");
        assert_eq!(shm.typ().as_deref(), Some("tmpfs"));
        assert_eq!(
            opts_of(shm),
            ["nosuid", "nodev", "exec", "size=1048576", "mode=1777", "rw"].map(String::from)
        );
        let pos = |d: &str| {
            ms.iter()
                .position(|m| m.destination() == Path::new(d))
                .unwrap()
        };
        assert!(pos("/data") < pos("/data/sub"));
        assert_eq!(
            opts_of(find(&ms, "/data/sub")),
            ["rbind", "ro", "rshared"].map(String::from)
        );
        assert_eq!(
            opts_of(find(&ms, "/data")),
            ["rbind", "rw", "rprivate"].map(String::from)
        );
        assert!(opts_of(find(&ms, "/etc/hosts")).contains(&"ro".to_string()));
        assert_eq!(prop.as_deref(), Some("rshared"));
    }

    #[test]
    fn a_user_dev_mount_replaces_all_dev_defaults() {
        let o = Options {
            mounts: vec![ResolvedMount {
                target: "/dev".into(),
                readonly: false,
                source: ResolvedSource::Bind {
                    path: "/dev".into(),
                    propagation: Some(Propagation::Rslave),
                },
            }],
            ..Default::default()
        };
        let (ms, prop) = mounts(&o).unwrap();
        let under_dev: Vec<_> = ms
            .iter()
            .filter(|m| m.destination().starts_with("/dev"))
            .collect();
        assert_eq!(under_dev.len(), 1);
        assert_eq!(under_dev[0].typ().as_deref(), Some("bind"));
        assert_eq!(prop.as_deref(), Some("rslave"));
    }

    #[test]
    fn init_binary_is_bound_read_only() {
        let mut o = Options::default();
        o.process.init = Some("/usr/bin/tini-static".into());
        let (ms, _) = mounts(&o).unwrap();
        let m = find(&ms, INIT_PATH);
        assert_eq!(
            m.source().as_deref(),
            Some(Path::new("/usr/bin/tini-static"))
        );
        assert!(opts_of(m).contains(&"ro".to_string()));
    }
}
