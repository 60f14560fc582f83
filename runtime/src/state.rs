//! Persistent container state under `--root/<id>/`.
//!
//! Layout of a container directory:
//! - `state.json`: [`State`] plus, under `config`, the validated config `exec` needs (the
//!   bundle may change or vanish). Written once, by `create`, while it holds the lock;
//!   lock-free readers (`list`) skip a file they cannot parse yet. One file rather than a
//!   separate config.json: each inode created and unlinked per container is measurable on
//!   the `run` hot path (ext4 inode allocation was ~18 % of a `run`'s CPU profile);
//! - `exec.fifo`: the start barrier; present from `create` until `start` opened it;
//! - the directory itself is the lock: every command that changes the container holds an
//!   exclusive `flock(2)` on it, so concurrent commands on one container are serialised while
//!   commands on different containers never wait for each other. Waiting for it is bounded
//!   ([`LOCK_TIMEOUT`]); only the command that took it holds it (the init closes its inherited
//!   copy at once), so a killed command never leaves it taken.
//!
//! `create` writes state.json twice: first with pid 0 (status `creating`) before it makes
//! anything that would outlive it (cgroups, the init), so that `delete` can remove what a
//! `create` killed halfway left; then, complete, by an atomic rename.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::runtime::{Hooks, Spec};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::cgroups::CgroupPaths;

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";
/// How long a command waits for another command on the same container to finish with it.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// Where containers created before the config moved into state.json keep it.
const LEGACY_CONFIG_FILE: &str = "config.json";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("invalid container id {id:?}: must match [A-Za-z0-9_+.-]+ and not be . or ..")]
    InvalidId { id: String },
    #[error("container with id {id} already exists")]
    Exists { id: String },
    // runc's text: containerd's shim (kill, delete) and podman match "does not exist", dockerd
    // matches "container does not exist" (libcontainerd wrapError) to report "no such container".
    #[error("container does not exist")]
    NotFound { id: String },
    #[error("container {id} is busy: its state directory {path} is still locked{} after {waited:?}", holder_suffix(.holder))]
    Busy {
        id: String,
        path: PathBuf,
        holder: Option<i32>,
        waited: Duration,
    },
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parsing state file {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn holder_suffix(holder: &Option<i32>) -> String {
    holder.map(|p| format!(" by pid {p}")).unwrap_or_default()
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StateError {
    let path = path.to_path_buf();
    move |source| StateError::Io {
        action,
        path,
        source,
    }
}

/// The lifecycle status, as `runc state` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
    pub fn can_start(self) -> bool {
        self == Status::Created
    }
    pub fn can_kill(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }
    pub fn can_delete(self) -> bool {
        matches!(self, Status::Created | Status::Stopped)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the runtime remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub oci_version: String,
    pub id: String,
    /// Host pid of the container's init process.
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot (`/proc/<pid>/stat` field 22): a recycled
    /// pid has a different start time, so a stale state never signals a stranger.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, as runc prints it.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: CgroupPaths,
    /// Whether the container has its own pid namespace: without one, `kill`/`delete` must reach
    /// every process in the cgroup because the init's death does not take them down.
    pub own_pid_ns: bool,
    /// Hooks still to run after create (poststart at `start`, poststop at `delete`).
    #[serde(default)]
    pub hooks: Option<Hooks>,
}

/// What state.json holds: the state, and the config beside it.
#[derive(Serialize)]
struct StateFile<'a> {
    #[serde(flatten)]
    state: &'a State,
    config: &'a RawValue,
}

/// Reads only the config out of state.json (serde skips the other fields).
#[derive(Deserialize)]
struct ConfigOnly {
    config: Option<Spec>,
}

/// The runc-compatible JSON printed by `state` and `list --format json`.
#[derive(Debug, Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

impl State {
    /// The status now, derived from the kernel rather than stored, so it is never stale.
    /// Pid 0 is the record `create` writes before the init exists: still being created, or
    /// a `create` that died halfway (then whoever holds the lock may delete it).
    pub fn status(&self, dir: &Path) -> Status {
        if self.pid == 0 {
            return Status::Creating;
        }
        match crate::linux::proc::stat(self.pid) {
            Some(stat) if stat.start_time == self.pid_start_time && !stat.is_dead() => {
                if dir.join(EXEC_FIFO).exists() {
                    Status::Created
                } else if self.cgroup.is_frozen() {
                    Status::Paused
                } else {
                    Status::Running
                }
            }
            _ => Status::Stopped,
        }
    }

    pub fn oci<'a>(&'a self, status: Status) -> OciState<'a> {
        OciState {
            oci_version: &self.oci_version,
            id: &self.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            annotations: &self.annotations,
        }
    }
}

pub fn validate_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidId { id: id.to_string() })
    }
}

/// A container's directory, locked for the lifetime of this value.
#[derive(Debug)]
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    /// `None` only for a forced delete that gave up waiting ([`ContainerDir::open_forced`]).
    lock: Option<Flock<File>>,
}

impl ContainerDir {
    /// Creates `root/id` for a new container and locks it. Fails if the id is taken.
    pub fn create(root: &Path, id: &str) -> Result<ContainerDir, StateError> {
        validate_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(io_err("creating state root", root))?;
        let path = root.join(id);
        match fs::DirBuilder::new().mode(0o711).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists { id: id.to_string() })
            }
            Err(e) => return Err(io_err("creating state dir", &path)(e)),
        }
        let lock = lock_dir(id, &path, Duration::ZERO)?;
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            lock: Some(lock),
        })
    }

    /// Opens and locks the directory of an existing container.
    pub fn open(root: &Path, id: &str) -> Result<ContainerDir, StateError> {
        let dir = ContainerDir::open_any(root, id, LOCK_TIMEOUT)?;
        // A concurrent `delete` may have removed the directory while we waited for the lock.
        if !dir.path.join(STATE_FILE).exists() {
            return Err(StateError::NotFound { id: id.to_string() });
        }
        Ok(dir)
    }

    /// Opens and locks `root/id` even without a state.json (what a `create` killed before
    /// its first write leaves), waiting at most `wait` for the lock.
    pub fn open_any(root: &Path, id: &str, wait: Duration) -> Result<ContainerDir, StateError> {
        validate_id(id)?;
        let path = root.join(id);
        let lock = match lock_dir(id, &path, wait) {
            Err(StateError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(StateError::NotFound { id: id.to_string() })
            }
            other => other?,
        };
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            lock: Some(lock),
        })
    }

    /// For `delete --force`: like [`ContainerDir::open_any`], but a lock still held after
    /// `wait` (a command stopped or stuck while holding it) does not stop the delete.
    pub fn open_forced(root: &Path, id: &str, wait: Duration) -> Result<ContainerDir, StateError> {
        match ContainerDir::open_any(root, id, wait) {
            Err(StateError::Busy { holder, .. }) => {
                crate::logging::warn(&format!(
                    "container {id}: state directory still locked{}; deleting anyway",
                    holder_suffix(&holder)
                ));
                Ok(ContainerDir {
                    id: id.to_string(),
                    path: root.join(id),
                    lock: None,
                })
            }
            other => other,
        }
    }

    /// The descriptor holding the lock: a process forked while we hold it (the init) closes
    /// its copy, or the lock would live as long as that process.
    pub fn lock_fd(&self) -> Option<RawFd> {
        self.lock.as_ref().map(|l| l.as_raw_fd())
    }

    pub fn load(&self) -> Result<State, StateError> {
        read_state(&self.path.join(STATE_FILE))
    }

    /// Writes the first state.json of a new container (pid 0: see the module doc), with its
    /// config (the bundle's config.json text, already validated).
    pub fn save_early(&self, state: &State, config: &RawValue) -> Result<(), StateError> {
        let path = self.path.join(STATE_FILE);
        self.write_state(&path, state, config)
    }

    /// Replaces state.json with the complete state, atomically (a `create` killed during the
    /// write leaves the early record, never half a file).
    pub fn save(&self, state: &State, config: &RawValue) -> Result<(), StateError> {
        let tmp = self.path.join(".state.json.tmp");
        let _ = fs::remove_file(&tmp);
        self.write_state(&tmp, state, config)?;
        let path = self.path.join(STATE_FILE);
        fs::rename(&tmp, &path).map_err(io_err("writing", &path))
    }

    fn write_state(&self, path: &Path, state: &State, config: &RawValue) -> Result<(), StateError> {
        let data = serde_json::to_vec(&StateFile { state, config }).map_err(|source| {
            StateError::Parse {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err("writing", path))?;
        f.write_all(&data).map_err(io_err("writing", path))
    }

    /// The state and the config kept for `exec`, from one read of state.json.
    pub fn load_with_config(&self) -> Result<(State, Spec), StateError> {
        let path = self.path.join(STATE_FILE);
        let data = fs::read(&path).map_err(io_err("reading state file", &path))?;
        let parse = |source| StateError::Parse {
            path: path.clone(),
            source,
        };
        let state: State = serde_json::from_slice(&data).map_err(parse)?;
        let kept: ConfigOnly = serde_json::from_slice(&data).map_err(parse)?;
        let config = match kept.config {
            Some(config) => config,
            // Created by an older berth-runtime, which kept the config beside the state.
            None => {
                let legacy = self.path.join(LEGACY_CONFIG_FILE);
                let data = fs::read(&legacy).map_err(io_err("reading", &legacy))?;
                serde_json::from_slice(&data).map_err(|source| StateError::Parse {
                    path: legacy,
                    source,
                })?
            }
        };
        Ok((state, config))
    }

    /// Removes the directory and everything in it; the lock goes with it.
    pub fn remove(self) -> Result<(), StateError> {
        fs::remove_dir_all(&self.path).map_err(io_err("removing state dir", &self.path))
    }
}

/// Takes the directory's lock, waiting at most `wait` for a command that holds it.
fn lock_dir(id: &str, path: &Path, wait: Duration) -> Result<Flock<File>, StateError> {
    let start = Instant::now();
    let mut f = File::open(path).map_err(io_err("opening state dir", path))?;
    let mut delay = Duration::from_millis(1);
    loop {
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((file, nix::errno::Errno::EWOULDBLOCK | nix::errno::Errno::EINTR)) => {
                if start.elapsed() >= wait {
                    return Err(StateError::Busy {
                        id: id.to_string(),
                        path: path.to_path_buf(),
                        holder: lock_holder(&file),
                        waited: start.elapsed(),
                    });
                }
                f = file;
            }
            Err((_, errno)) => {
                return Err(StateError::Io {
                    action: "locking state dir",
                    path: path.to_path_buf(),
                    source: errno.into(),
                })
            }
        }
        std::thread::sleep(delay.min(wait.saturating_sub(start.elapsed())));
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// The pid that took the flock on `file`'s inode, from /proc/locks (proc(5)): a line such as
/// `3: FLOCK  ADVISORY  WRITE 4242 fd:01:123456 0 EOF`, the device in hex.
fn lock_holder(file: &File) -> Option<i32> {
    let meta = file.metadata().ok()?;
    let dev = meta.dev();
    let want = format!(
        "{:02x}:{:02x}:{}",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev),
        meta.ino()
    );
    let locks = fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&want.as_str()))
            .then(|| f.get(4)?.parse().ok())
            .flatten()
    })
}

fn read_state(path: &Path) -> Result<State, StateError> {
    let data = fs::read(path).map_err(io_err("reading state file", path))?;
    serde_json::from_slice(&data).map_err(|source| StateError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads every container's state without taking locks (for `list`): a container being created
/// or deleted at the same moment is skipped rather than waited for.
pub fn list(root: &Path) -> Result<Vec<(State, Status)>, StateError> {
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("reading state root", root)(e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(state) = read_state(&path.join(STATE_FILE)) else {
            continue;
        };
        let status = state.status(&path);
        out.push((state, status));
    }
    out.sort_by(|a, b| a.0.created.cmp(&b.0.created));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runc_rules() {
        for good in ["a", "abc-1", "x_y.z+w", "0123456789abcdef"] {
            validate_id(good).expect(good);
        }
        for bad in ["", ".", "..", "a/b", "a b", "../x", "ä"] {
            assert!(validate_id(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    /// A state root under the temp dir, removed on drop (also when an assertion fails).
    struct TempRoot(PathBuf);
    impl TempRoot {
        fn new(tag: &str) -> TempRoot {
            let p = std::env::temp_dir().join(format!("berth-state-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            TempRoot(p)
        }
    }
    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn sample_state(id: &str) -> State {
        State {
            oci_version: "1.2.0".into(),
            id: id.into(),
            pid: 1,
            pid_start_time: 1,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-01-01T00:00:00Z".into(),
            owner: String::new(),
            annotations: HashMap::new(),
            cgroup: CgroupPaths::default(),
            own_pid_ns: true,
            hooks: None,
        }
    }

    const CONFIG: &str = r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},
        "process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"]}}"#;

    #[test]
    fn state_json_keeps_the_config_verbatim_for_exec() {
        let root = TempRoot::new("config");
        let dir = ContainerDir::create(&root.0, "c1").expect("create");
        let raw = RawValue::from_string(CONFIG.to_string()).expect("raw");
        dir.save(&sample_state("c1"), &raw).expect("save");
        let (state, spec) = dir.load_with_config().expect("load");
        assert_eq!(state.id, "c1");
        assert_eq!(dir.load().expect("load state").id, "c1");
        let args = spec.process().as_ref().and_then(|p| p.args().clone());
        assert_eq!(args, Some(vec!["sh".to_string()]));
        dir.remove().expect("remove");
    }

    #[test]
    fn a_config_json_beside_an_older_state_file_is_still_read() {
        let root = TempRoot::new("legacy");
        let dir = ContainerDir::create(&root.0, "c2").expect("create");
        let old = serde_json::to_vec(&sample_state("c2")).expect("json");
        fs::write(dir.path.join(STATE_FILE), old).expect("state");
        fs::write(dir.path.join(LEGACY_CONFIG_FILE), CONFIG).expect("config");
        let (_, spec) = dir.load_with_config().expect("load");
        assert_eq!(spec.version(), "1.2.0");
        dir.remove().expect("remove");
    }

    #[test]
    fn a_held_lock_is_waited_for_a_bounded_time_and_its_holder_named() {
        let root = TempRoot::new("busy");
        let held = ContainerDir::create(&root.0, "c3").expect("create");
        let start = Instant::now();
        let err = ContainerDir::open_any(&root.0, "c3", Duration::from_millis(200)).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2));
        match &err {
            // The holder is this very process (flock locks belong to the open file).
            StateError::Busy { holder, .. } => {
                assert_eq!(*holder, Some(std::process::id() as i32), "{err}")
            }
            other => panic!("expected Busy, got {other}"),
        }
        let forced = ContainerDir::open_forced(&root.0, "c3", Duration::ZERO).expect("forced");
        assert!(forced.lock_fd().is_none());
        drop(held);
        let dir = ContainerDir::open_any(&root.0, "c3", Duration::ZERO).expect("free again");
        dir.remove().expect("remove");
    }

    #[test]
    fn the_complete_state_replaces_the_early_record() {
        let root = TempRoot::new("early");
        let dir = ContainerDir::create(&root.0, "c4").expect("create");
        let raw = RawValue::from_string(CONFIG.to_string()).expect("raw");
        let mut state = sample_state("c4");
        state.pid = 0;
        dir.save_early(&state, &raw).expect("early");
        assert_eq!(
            dir.load().expect("load").status(&dir.path),
            Status::Creating
        );
        state.pid = 42;
        dir.save(&state, &raw).expect("final");
        assert_eq!(dir.load().expect("load").pid, 42);
        let names: Vec<_> = fs::read_dir(&dir.path)
            .expect("ls")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STATE_FILE)]);
        dir.remove().expect("remove");
    }

    #[test]
    fn status_transitions() {
        assert!(Status::Created.can_start());
        assert!(!Status::Running.can_start());
        assert!(Status::Stopped.can_delete());
        assert!(!Status::Running.can_delete());
        assert!(!Status::Stopped.can_kill());
    }
}
