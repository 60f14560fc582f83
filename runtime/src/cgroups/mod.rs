//! Placing a container in cgroups, limiting it, freezing it and reading its statistics.
//!
//! Host layouts vary: cgroup v1 (one hierarchy per controller), hybrid (v1 controllers plus a
//! cgroup2 mount at /sys/fs/cgroup/unified that has no controllers) and unified v2. The
//! container gets a directory of the same relative path in every mounted hierarchy, like runc's
//! cgroupfs driver; each resource is written to the hierarchy that holds its controller
//! ([`v1`] or [`v2`]), after being validated once into [`Limits`].
//!
//! About the cgroups-rs crate: it is used where it fits, for the v1 OOM notification
//! (`cgroup.event_control` + eventfd) and the v1 memory and cpuacct statistics, which it reads
//! from any directory we give it. It does not drive the rest because it lacks what this runtime
//! needs: hybrid hosts (its `auto()` picks v1 and ignores the unified mount, and its v2 root is
//! fixed at /sys/fs/cgroup), a v2 device controller (no eBPF program support at all), errors
//! that name the file and value at fault, and a v2 OOM watch (it registers
//! `memory.oom_control`, a v1-only file, on v2 too). Releases after 0.3 also pull in a D-Bus
//! stack for a systemd driver unconditionally.

mod devices;
mod hierarchy;
mod resources;
mod stats;
mod v1;
mod v2;

pub use devices::DeviceRule;
pub use resources::{Limits, MEMORY_UNLIMITED};
pub use stats::{OomWatch, Stats};

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("linux.cgroupsPath {path:?}: must not contain '..'")]
    Escapes { path: PathBuf },
    #[error("--systemd-cgroup: systemd is not running on this host (/run/systemd/system is missing); use the cgroupfs driver")]
    NoSystemd,
    #[error("linux.cgroupsPath {path:?}: the systemd driver expects slice:prefix:name")]
    BadSystemdPath { path: String },
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no cgroup hierarchy is mounted (looked in /proc/self/mountinfo)")]
    NoHierarchy,
    #[error("{field}: invalid value {value}: {reason}")]
    Invalid {
        field: String,
        value: String,
        reason: &'static str,
    },
    #[error("{field}: the {controller} controller is not available on this host ({layout})")]
    NoController {
        field: &'static str,
        controller: &'static str,
        layout: &'static str,
    },
    #[error("{field}: not supported on cgroup {version}")]
    Unsupported {
        field: &'static str,
        version: &'static str,
    },
    #[error("linux.resources.unified: unknown key {key:?} (no such file in {dir}; is its controller enabled?)")]
    UnknownUnifiedKey { key: String, dir: PathBuf },
    #[error("invalid configuration: linux.resources.unified: key {key:?} needs cgroup v2 (this host: {layout})")]
    UnifiedNeedsV2 { key: String, layout: &'static str },
    #[error("{field}: writing {value:?} to {path}")]
    Write {
        field: String,
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: still {state} after {timeout:?}")]
    FreezeTimeout {
        path: PathBuf,
        state: String,
        timeout: Duration,
    },
    #[error("loading the device-controller eBPF program for {path}: {log}")]
    BpfLoad {
        path: PathBuf,
        log: String,
        #[source]
        source: io::Error,
    },
    #[error("attaching the device-controller eBPF program to {path}")]
    BpfAttach {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where a container's cgroup lives: its directory in every hierarchy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CgroupPaths {
    /// hierarchy key (v1 controller list such as `cpu,cpuacct` or `name=systemd`; empty for
    /// cgroup2) → absolute directory.
    pub dirs: BTreeMap<String, PathBuf>,
    /// hierarchy key → where that hierarchy is mounted on the host (for cgroup mounts in the
    /// container).
    #[serde(default)]
    pub mount_points: BTreeMap<String, PathBuf>,
}

/// Checks a `--systemd-cgroup` request: `linux.cgroupsPath` must be `slice:prefix:name`, and
/// the driver needs a running systemd, which this runtime does not talk to: without systemd
/// it is a clear error.
pub fn check_systemd(cgroups_path: Option<&Path>) -> Result<(), CgroupError> {
    if let Some(p) = cgroups_path {
        let s = p.to_string_lossy();
        let parts: Vec<&str> = s.split(':').collect();
        let well_formed = parts.len() == 3
            && !parts[2].is_empty()
            && (parts[0].is_empty() || parts[0].ends_with(".slice"))
            && !parts[0].contains('/');
        if !s.is_empty() && !well_formed {
            return Err(CgroupError::BadSystemdPath {
                path: s.into_owned(),
            });
        }
    }
    if !Path::new("/run/systemd/system").is_dir() {
        return Err(CgroupError::NoSystemd);
    }
    Ok(())
}

/// The runtime's own view of the host's cgroups: the mounted hierarchies and the cgroup this
/// process is in within each (/proc/self/mountinfo and /proc/self/cgroup), read once.
#[derive(Debug, Clone)]
pub struct Host {
    hierarchies: Vec<hierarchy::Hierarchy>,
    own: BTreeMap<String, PathBuf>,
}

impl Host {
    pub fn read() -> Result<Host, CgroupError> {
        let hierarchies = hierarchy::hierarchies_from(&read("/proc/self/mountinfo")?);
        if hierarchies.is_empty() {
            return Err(CgroupError::NoHierarchy);
        }
        let own = hierarchy::own_cgroups_from(&read("/proc/self/cgroup")?);
        Ok(Host { hierarchies, own })
    }

    /// Our own cgroup in hierarchy `h`, relative to that hierarchy's mount.
    fn own_path(&self, h: &hierarchy::Hierarchy) -> Option<PathBuf> {
        self.own.get(&h.key).map(|p| {
            // Our cgroup as seen from this mount's root.
            p.strip_prefix(&h.mount_root).unwrap_or(p).to_path_buf()
        })
    }
}

impl CgroupPaths {
    /// Where the container's directory goes in every mounted hierarchy. Nothing is created
    /// yet ([`CgroupPaths::make`]): a bad path fails here, before anything exists, and the
    /// init can be cloned knowing the paths while the directories are being made.
    pub fn plan(
        host: &Host,
        spec_path: Option<&Path>,
        id: &str,
    ) -> Result<CgroupPaths, CgroupError> {
        let mut paths = CgroupPaths::default();
        for h in &host.hierarchies {
            let rel = hierarchy::resolve(spec_path, id, host.own_path(h).as_deref())?;
            paths
                .mount_points
                .insert(h.key.clone(), h.mount_point.clone());
            paths.dirs.insert(h.key.clone(), h.mount_point.join(rel));
        }
        Ok(paths)
    }

    /// Creates the planned directories, with cpuset values (v1) and controllers (v2) ready
    /// for processes. On failure, removes what it created.
    pub fn make(&self) -> Result<(), CgroupError> {
        let unified_only = self.is_v2();
        for (key, dir) in &self.dirs {
            let Some(mount_point) = self.mount_points.get(key) else {
                continue;
            };
            if let Err(source) = fs::create_dir_all(dir) {
                let _ = self.remove();
                return Err(CgroupError::Io {
                    action: "creating cgroup",
                    path: dir.clone(),
                    source,
                });
            }
            let prepared = if key.split(',').any(|c| c == "cpuset") {
                v1::inherit_cpuset(mount_point, dir)
            } else if key.is_empty() && unified_only {
                v2::enable_controllers(mount_point, dir);
                Ok(())
            } else {
                Ok(())
            };
            if let Err(e) = prepared {
                let _ = self.remove();
                return Err(e);
            }
        }
        Ok(())
    }

    /// True on a unified (v2-only) host: the cgroup2 hierarchy holds the controllers.
    pub fn is_v2(&self) -> bool {
        self.dirs.contains_key("")
            && self
                .dirs
                .keys()
                .all(|k| k.is_empty() || k.starts_with("name="))
    }

    /// The v1 directory of `controller`, if that controller has a v1 hierarchy.
    pub(crate) fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(k, _)| k.split(',').any(|c| c == controller))
            .map(|(_, d)| d.as_path())
    }

    /// The cgroup2 directory (on hybrid hosts it has no controllers).
    pub(crate) fn unified_dir(&self) -> Option<&Path> {
        self.dirs.get("").map(PathBuf::as_path)
    }

    /// A short name of the layout for messages.
    pub fn layout(&self) -> &'static str {
        match (self.is_v2(), self.unified_dir().is_some()) {
            (true, _) => "cgroup v2",
            (false, true) => "hybrid: v1 controllers, cgroup2 without controllers",
            (false, false) => "cgroup v1",
        }
    }

    /// Writes the limits to the container's cgroup (at create and by `update`).
    pub fn apply(&self, limits: &Limits) -> Result<(), CgroupError> {
        if self.is_v2() {
            v2::apply(self, limits)
        } else {
            v1::apply(self, limits)
        }
    }

    /// Moves a process into the container's cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        let pid = pid.to_string();
        for dir in self.dirs.values() {
            let procs = dir.join("cgroup.procs");
            fs::write(&procs, &pid).map_err(|source| CgroupError::Io {
                action: "adding process to",
                path: procs,
                source,
            })?;
        }
        Ok(())
    }

    /// The directory used to enumerate processes: any hierarchy shows them all.
    fn primary(&self) -> Option<&Path> {
        ["pids", "freezer", "memory", ""]
            .iter()
            .find_map(|k| self.dirs.get(*k))
            .or_else(|| self.dirs.values().next())
            .map(PathBuf::as_path)
    }

    /// Every process in the container's cgroup and its descendants.
    pub fn pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        if let Some(dir) = self.primary() {
            collect_pids(dir, &mut out);
        }
        out
    }

    /// The file that says whether the cgroup is frozen (for messages).
    pub fn freezer_file(&self) -> PathBuf {
        match (self.v1_dir("freezer"), self.unified_dir()) {
            (Some(dir), _) => dir.join("freezer.state"),
            (None, Some(dir)) => dir.join("cgroup.freeze"),
            (None, None) => PathBuf::from("(no freezer)"),
        }
    }

    pub fn is_frozen(&self) -> bool {
        if let Some(dir) = self.v1_dir("freezer") {
            return fs::read_to_string(dir.join("freezer.state"))
                .map(|s| s.trim() != "THAWED")
                .unwrap_or(false);
        }
        if let Some(dir) = self.unified_dir() {
            return fs::read_to_string(dir.join("cgroup.freeze"))
                .map(|s| s.trim() == "1")
                .unwrap_or(false);
        }
        false
    }

    /// Freezes every process of the cgroup and its sub-cgroups and waits until the kernel
    /// reports the whole tree frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.set_frozen(true)
    }

    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        const TIMEOUT: Duration = Duration::from_secs(5);
        let deadline = Instant::now() + TIMEOUT;
        if let Some(dir) = self.v1_dir("freezer") {
            // Documentation/admin-guide/cgroup-v1/freezer-subsystem.rst: writing FROZEN moves
            // the cgroup to FREEZING until every task (descendants included) is frozen; a
            // task in uninterruptible sleep can hold it there, and writing FROZEN again
            // retries. THAWED takes effect at once.
            let (want, file) = (
                if frozen { "FROZEN" } else { "THAWED" },
                dir.join("freezer.state"),
            );
            loop {
                write_file("freezer.state", &file, want)?;
                let now = fs::read_to_string(&file).unwrap_or_default();
                if now.trim() == want {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    // Leave it thawed rather than half frozen.
                    let _ = fs::write(&file, "THAWED");
                    return Err(CgroupError::FreezeTimeout {
                        path: file,
                        state: now.trim().to_string(),
                        timeout: TIMEOUT,
                    });
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let Some(dir) = self.unified_dir() else {
            return Err(CgroupError::NoController {
                field: "pause",
                controller: "freezer",
                layout: self.layout(),
            });
        };
        // Documentation/admin-guide/cgroup-v2.rst, cgroup.freeze: the write only requests the
        // state; "frozen 1" in cgroup.events tells when every descendant actually is frozen.
        // cgroup.freeze is core cgroup2 (not a controller), so it works on hybrid hosts too.
        write_file(
            "cgroup.freeze",
            &dir.join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        )?;
        let events = dir.join("cgroup.events");
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        loop {
            let now = fs::read_to_string(&events).unwrap_or_default();
            if now.lines().any(|l| l.trim() == want) {
                return Ok(());
            }
            if Instant::now() > deadline {
                if frozen {
                    let _ = fs::write(dir.join("cgroup.freeze"), "0");
                }
                return Err(CgroupError::FreezeTimeout {
                    path: events,
                    state: now.replace('\n', " "),
                    timeout: TIMEOUT,
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Signals every process in the cgroup and its sub-cgroups. The cgroup is frozen while
    /// the list is read and signalled, so a process cannot fork a child that escapes the
    /// signal; SIGKILL on cgroup v2 uses `cgroup.kill` (Linux 5.14), which does all of it
    /// in the kernel. A paused container stays paused, except after SIGKILL, which thaws it so
    /// the processes can die.
    pub fn signal_all(&self, sig: i32) {
        if sig == libc::SIGKILL && self.is_v2() {
            if let Some(dir) = self.unified_dir() {
                if fs::write(dir.join("cgroup.kill"), "1").is_ok() {
                    return;
                }
            }
        }
        let was_frozen = self.is_frozen();
        let froze = !was_frozen && self.freeze().is_ok();
        for pid in self.pids() {
            // SAFETY: kill(2) with a plain pid and signal number touches no memory.
            unsafe { libc::kill(pid, sig) };
        }
        if froze || (was_frozen && sig == libc::SIGKILL) {
            if let Err(e) = self.thaw() {
                crate::logging::warn(&format!("thawing after signalling: {e}"));
            }
        }
    }

    /// Removes the container's directories (sub-cgroups first). Processes that are still
    /// exiting keep a cgroup busy for a moment, so EBUSY is retried briefly.
    pub fn remove(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        for dir in self.dirs.values() {
            if let Err(e) = remove_tree(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(s) = fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&e.path(), out);
            }
        }
    }
}

fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    // Most containers have no sub-cgroups and no process left: one rmdir does it, without
    // listing a directory of a dozen control files first.
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path())?;
            }
        }
    }
    let mut delay = Duration::from_millis(1);
    for _ in 0..12 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(source) => {
                return Err(CgroupError::Io {
                    action: "removing cgroup",
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
    Err(CgroupError::Io {
        action: "removing cgroup (still busy)",
        path: dir.to_path_buf(),
        source: io::Error::from_raw_os_error(libc::EBUSY),
    })
}

fn read(path: &str) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Io {
        action: "reading",
        path: PathBuf::from(path),
        source,
    })
}

/// Writes one value to one cgroup file; the error names the spec field, file and value.
pub(crate) fn write_file(field: &str, path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|source| CgroupError::Write {
        field: field.to_string(),
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}
