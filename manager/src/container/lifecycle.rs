//! The container verbs' shared steps: where a container's files are, spawning its monitor,
//! stopping it, and taking everything down again (mounts, snapshot, anonymous volumes,
//! records) with errors collected rather than stopping at the first.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::attach::{self, Frame, Hello};
use super::monitor::{Report, SOCKET};
use super::record::{PortBinding, Record, Status};
use super::runtime::Runtime;
use super::store::ContainerStore;
use super::ContainerError;
use crate::network::{self, Endpoint, Netns, NetworkStore, Request};
use crate::snapshot::{self, Backend};
use crate::volume::{VolumeError, VolumeStore};

type Result<T, E = ContainerError> = std::result::Result<T, E>;

/// Where one container's files live.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The storage root.
    pub root: PathBuf,
    pub dir: PathBuf,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub pid_file: PathBuf,
    /// The json-file log (`<id>-json.log`, docker's name).
    pub log: PathBuf,
    pub runtime_log: PathBuf,
    pub monitor_log: PathBuf,
    /// The `--root` given to the runtime (one per runtime binary name).
    pub runtime_root: PathBuf,
}

impl Paths {
    pub fn new(root: &Path, store: &ContainerStore, record: &Record) -> Self {
        let dir = store.dir(&record.id);
        let runtime_name = record
            .config
            .runtime_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "runtime".into());
        Self {
            bundle: dir.join("bundle"),
            rootfs: dir.join("bundle").join("rootfs"),
            pid_file: dir.join("init.pid"),
            log: dir.join(format!("{}-json.log", record.id)),
            runtime_log: dir.join("runtime.log"),
            monitor_log: dir.join("monitor.log"),
            runtime_root: root.join("runtime").join(runtime_name),
            root: root.to_path_buf(),
            dir,
        }
    }

    pub fn runtime(&self, record: &Record) -> Runtime {
        Runtime::new(
            record.config.runtime_path.clone(),
            self.runtime_root.clone(),
        )
        .with_log(self.runtime_log.clone())
    }
}

/// Starts the monitor of container `id` (`<berth> __monitor`, `berth` being the binary
/// `exe`) in its own session with its stdio on /dev/null and its diagnostics in
/// `monitor.log`, and waits for its first report: created (when `start` is false) or
/// started.
pub fn spawn_monitor(
    root: &Path,
    paths: &Paths,
    id: &str,
    start: bool,
    exe: &Path,
) -> Result<Report> {
    let (sync_r, sync_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ContainerError::Monitor {
            what: "making the sync pipe".into(),
            source: e.into(),
        })?;
    let log = File::create(&paths.monitor_log).map_err(|source| ContainerError::Io {
        path: paths.monitor_log.clone(),
        source,
    })?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root").arg(root).arg("__monitor").arg(id);
    if start {
        cmd.arg("--start");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    let sync_raw = std::os::fd::AsRawFd::as_raw_fd(&sync_w);
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (setsid, dup2); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            // The sync pipe becomes fd 3 without close-on-exec.
            if libc::dup2(sync_raw, 3) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|source| ContainerError::Monitor {
        what: "starting the monitor".into(),
        source,
    })?;
    drop(sync_w);
    drop(cmd);
    let pid = child.id() as i32;
    let start_time = proc_start_time(pid).unwrap_or(0);
    // The monitor outlives us; nobody waits for it here (its parent becomes our reaper).
    drop(child);
    let _ = ContainerStore::open(root)?.update(id, |r| {
        r.state.monitor_pid = pid;
        r.state.monitor_start = start_time;
    });
    let mut line = String::new();
    BufReader::new(File::from(sync_r))
        .read_line(&mut line)
        .map_err(|source| ContainerError::Monitor {
            what: "reading the monitor's report".into(),
            source,
        })?;
    if line.trim().is_empty() {
        return Err(ContainerError::MonitorGone {
            id: id.to_string(),
            log: paths.monitor_log.clone(),
        });
    }
    let mut report: Report =
        serde_json::from_str(line.trim()).map_err(|_| ContainerError::MonitorGone {
            id: id.to_string(),
            log: paths.monitor_log.clone(),
        })?;
    report.monitor_pid = pid;
    Ok(report)
}

/// Waits (at most 10 s) for a monitor this process spawned to exit, so a foreground `run`
/// returns only once everything of the container, its monitor included, is gone.
pub fn reap_monitor(pid: i32) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    if pid <= 0 {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(2)),
            // Exited, or not our child (nothing to wait for).
            _ => return,
        }
    }
}

/// Field 22 of /proc/<pid>/stat (proc(5)): the start time, to tell a pid's owner apart from
/// a later process that got the same pid.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the monitor recorded for the container is still that process.
pub fn monitor_alive(record: &Record) -> bool {
    record.state.monitor_pid > 0
        && proc_start_time(record.state.monitor_pid) == Some(record.state.monitor_start)
}

/// The record with its status corrected when its monitor died without saying so (killed,
/// machine rebooted): the container is then reported exited, as docker reports containers
/// whose daemon lost them.
pub fn refresh(store: &ContainerStore, record: Record) -> Result<Record> {
    if !record.state.status.is_active() || monitor_alive(&record) {
        return Ok(record);
    }
    if record.state.status == Status::Created && record.state.monitor_pid == 0 {
        return Ok(record);
    }
    store.update(&record.id, |r| {
        if r.state.status.is_active() && !monitor_alive(r) {
            r.state.status = if r.state.started_at.is_empty() {
                Status::Created
            } else {
                Status::Exited
            };
            r.state.pid = 0;
            r.state.monitor_pid = 0;
            if r.state.finished_at.is_empty() && !r.state.started_at.is_empty() {
                r.state.finished_at = super::record::now_rfc3339();
            }
        }
    })
}

/// Waits for the container's monitor to announce an exit; `None` on timeout. When no
/// monitor is running the container is down already and its recorded status is returned.
pub fn wait_exit(
    store: &ContainerStore,
    id: &str,
    timeout: Option<Duration>,
) -> Result<Option<i32>> {
    wait_exit_until(store, id, timeout.map(|t| Instant::now() + t), &|| false)
}

/// [`wait_exit`] until a deadline, also giving up (`None`) once `stop()` says so (checked
/// every 100 ms): a caller's cancellation.
pub fn wait_exit_until(
    store: &ContainerStore,
    id: &str,
    deadline: Option<Instant>,
    stop: &dyn Fn() -> bool,
) -> Result<Option<i32>> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    const SLICE: Duration = Duration::from_millis(100);
    let dir = store.dir(id);
    let mut conn = match attach::connect(&dir, SOCKET) {
        Ok(c) => c,
        Err(_) => return wait_by_polling(store, id, deadline, stop),
    };
    if Frame::Hello(Hello::default()).write_to(&mut conn).is_err() {
        return wait_by_polling(store, id, deadline, stop);
    }
    loop {
        if stop() {
            return Ok(None);
        }
        let slice = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(None);
                }
                left.min(SLICE)
            }
            None => SLICE,
        };
        // Poll first, so that a timeout never cuts a frame in half: the monitor writes each
        // frame whole, and a readable socket has one coming.
        let mut fds = [PollFd::new(conn.as_fd(), PollFlags::POLLIN)];
        let ms = u16::try_from(slice.as_millis().max(1)).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => return wait_by_polling(store, id, deadline, stop),
        }
        match Frame::read_from(&mut conn) {
            Ok(Some(Frame::Exit(code))) => return Ok(Some(code)),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return wait_by_polling(store, id, deadline, stop),
        }
    }
}

fn wait_by_polling(
    store: &ContainerStore,
    id: &str,
    deadline: Option<Instant>,
    stop: &dyn Fn() -> bool,
) -> Result<Option<i32>> {
    loop {
        if stop() {
            return Ok(None);
        }
        let r = match store.load(id) {
            Ok(r) => refresh(store, r)?,
            // Removed meanwhile (`--rm`): it is down.
            Err(ContainerError::NotFound { .. }) => return Ok(Some(0)),
            Err(e) => return Err(e),
        };
        if !r.state.status.is_active() || !monitor_alive(&r) {
            return Ok(Some(r.state.exit_code));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `stop`: the stop signal, then SIGKILL after `timeout`; the restart policy stays off.
pub fn stop(
    root: &Path,
    store: &ContainerStore,
    record: &Record,
    signal: &str,
    timeout: Duration,
) -> Result<()> {
    let record = store.update(&record.id, |r| r.state.manually_stopped = true)?;
    let record = refresh(store, record)?;
    if !matches!(
        record.state.status,
        Status::Running | Status::Paused | Status::Restarting
    ) {
        return Ok(());
    }
    let paths = Paths::new(root, store, &record);
    let runtime = paths.runtime(&record);
    if record.state.status == Status::Restarting {
        return wait_exit(store, &record.id, Some(Duration::from_secs(70))).map(drop);
    }
    let _ = runtime.kill(&record.id, signal, false);
    if record.state.status == Status::Paused {
        let _ = runtime.resume(&record.id);
    }
    if wait_exit(store, &record.id, Some(timeout))?.is_some() {
        return Ok(());
    }
    let _ = runtime.kill(&record.id, "KILL", true);
    wait_exit(store, &record.id, Some(Duration::from_secs(30))).map(drop)
}

/// Whether the container's memory cgroup saw an OOM kill (v1 `memory.oom_control`, v2
/// `memory.events`). Read before the runtime deletes the cgroup.
pub fn oom_killed(record: &Record) -> bool {
    let rel = record.cgroup();
    let rel = rel.strip_prefix("/").unwrap_or(&rel);
    let candidates = [
        Path::new("/sys/fs/cgroup/memory")
            .join(rel)
            .join("memory.oom_control"),
        Path::new("/sys/fs/cgroup").join(rel).join("memory.events"),
    ];
    candidates.iter().any(|path| {
        fs::read_to_string(path).is_ok_and(|text| {
            text.lines().any(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
            })
        })
    })
}

pub use crate::snapshot::is_mount_point;

/// Mounts the container's writable snapshot on its bundle's rootfs (idempotent).
pub fn mount_rootfs(root: &Path, paths: &Paths, record: &Record) -> Result<()> {
    if is_mount_point(&paths.rootfs) {
        return Ok(());
    }
    fs::create_dir_all(&paths.rootfs).map_err(|source| ContainerError::Io {
        path: paths.rootfs.clone(),
        source,
    })?;
    let backend: Backend = record.snapshotter.parse()?;
    let sn = backend.open(root)?;
    let mounts = sn.mounts(&record.id)?;
    snapshot::mount_all(&mounts, &paths.rootfs)?;
    Ok(())
}

/// Whether the container gets a network namespace of its own (made and wired by berth).
pub fn own_netns(record: &Record) -> bool {
    // Rootless, the runtime makes the namespace (slirp4netns wires it, from the monitor).
    is_own_netns_mode(&record.config.network_mode) && !crate::rootless::is_rootless()
}

/// Whether a network mode gives the container a network namespace of its own.
pub fn is_own_netns_mode(mode: &str) -> bool {
    mode != "host" && !mode.starts_with("container:")
}

/// Sets up what a start needs on the host: the root filesystem mounted, and for a container
/// with its own network namespace, the namespace made and attached to its networks with its
/// ports published. Idempotent. On failure whatever this call made is undone.
pub fn prepare(root: &Path, store: &ContainerStore, record: &Record) -> Result<Record> {
    let paths = Paths::new(root, store, record);
    if crate::rootless::uses_slirp(&record.config.network_mode)
        || crate::rootless::networks::uses_user_networks(record)
    {
        // slirp4netns publishes later, from the monitor: a taken host port is refused now.
        if let Some(addr) = network::slirp::taken_port(&record.config.publish) {
            return Err(ContainerError::PortAllocated { addr });
        }
    }
    mount_rootfs(root, &paths, record)?;
    if !own_netns(record) {
        return Ok(record.clone());
    }
    let attached = (|| -> Result<Record> {
        let run = network::run_dir();
        let netns = Netns::path(&run, &record.id);
        if !network::netns::is_netns(&netns) {
            Netns::create(&run, &record.id)?;
        }
        let nets = NetworkStore::open(root, &run)?;
        check_ports_free(&nets, &record.id, &record.config.publish)?;
        let endpoint = |name: &str| {
            record
                .config
                .endpoints
                .get(name)
                .cloned()
                .unwrap_or_default()
        };
        let mut requests: Vec<Request> = match record.config.network_mode.as_str() {
            "none" => Vec::new(),
            name => {
                let mut r = Request::new(name);
                r.aliases = record.config.aliases.clone();
                r.ip = endpoint(name).ip;
                vec![r]
            }
        };
        requests.extend(record.config.extra_networks.iter().map(|n| {
            let e = endpoint(n);
            let mut r = Request::new(n);
            r.aliases = e.aliases;
            r.ip = e.ip;
            r
        }));
        let ep = Endpoint {
            container_id: &record.id,
            container_name: &record.name,
            netns: &netns,
            etc: record.config.etc.as_ref(),
        };
        let attachments = network::attach(&nets, &ep, &requests, &record.config.publish)?;
        let published = network::published_ports(&nets, &record.id)?;
        store.update(&record.id, |r| {
            r.networks = attachments
                .iter()
                .map(|a| (a.network.clone(), a.settings_json()))
                .collect();
            r.config.ports = published.iter().map(PortBinding::from).collect();
        })
    })();
    match attached {
        Ok(r) => Ok(r),
        Err(e) => {
            let also = match teardown(store, record, &paths) {
                Ok(()) => Vec::new(),
                Err(cleanup) => vec![format!(
                    "also: undoing the setup of {}: {cleanup}",
                    record.id
                )],
            };
            Err(e.with_also(also))
        }
    }
}

/// docker refuses a host port another container publishes or a host process listens on
/// ("port is already allocated"); CNI's portmap would silently install a second DNAT rule.
fn check_ports_free(nets: &NetworkStore, id: &str, publish: &[network::PortMapping]) -> Result<()> {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
    let taken: Vec<network::PortMapping> = network::endpoint::load_all(nets)?
        .into_iter()
        .filter(|e| e.container_id != id)
        .flat_map(|e| e.ports)
        .collect();
    for m in publish.iter().filter(|m| m.host_port != 0) {
        let ip = m.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let clash = taken.iter().any(|t| {
            t.host_port == m.host_port
                && t.protocol == m.protocol
                && (t.host_ip.is_none() || m.host_ip.is_none() || t.host_ip == m.host_ip)
        });
        let addr = SocketAddr::new(ip, m.host_port);
        let in_use = match m.protocol {
            network::Protocol::Tcp => TcpListener::bind(addr).is_err(),
            network::Protocol::Udp => UdpSocket::bind(addr).is_err(),
        };
        if clash || in_use {
            return Err(ContainerError::PortAllocated {
                addr: addr.to_string(),
            });
        }
    }
    Ok(())
}

/// Undoes what [`prepare`] set up: the network attachments and namespace, the rootfs mount.
/// Idempotent; every step runs and the first error is returned.
pub fn teardown(_store: &ContainerStore, record: &Record, paths: &Paths) -> Result<()> {
    let mut first: Option<ContainerError> = None;
    if crate::rootless::networks::uses_user_networks(record) {
        // The monitor detaches at the end of each run; this is for a monitor that died.
        if let Err(e) = crate::rootless::networks::detach(&paths.root, &record.id) {
            first.get_or_insert(crate::network::AttachError::Rootless(Box::new(e)).into());
        }
    }
    if own_netns(record) {
        let run = network::run_dir();
        let detached = NetworkStore::open(&paths.root, &run)
            .map_err(ContainerError::from)
            .and_then(|nets| network::detach(&nets, &record.id, None).map_err(Into::into));
        if let Err(e) = detached {
            first.get_or_insert(e);
        }
        if let Err(e) = Netns::remove(&run, &record.id) {
            first.get_or_insert(e.into());
        }
    }
    if is_mount_point(&paths.rootfs) {
        if let Err(e) = snapshot::unmount(&paths.rootfs) {
            first.get_or_insert(e.into());
        }
    }
    match first {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// Removes everything of a stopped container: host state, its writable snapshot, with
/// `volumes` its anonymous volumes, and its directory. Every step runs; the first error is
/// returned with the others reported beside it.
pub fn remove_files(
    root: &Path,
    store: &ContainerStore,
    record: &Record,
    volumes: bool,
) -> Result<()> {
    let paths = Paths::new(root, store, record);
    let mut errors: Vec<ContainerError> = Vec::new();
    let runtime = paths.runtime(record);
    if runtime.state(&record.id).ok().flatten().is_some() {
        if let Err(e) = runtime.delete(&record.id, true) {
            errors.push(e);
        }
    }
    if let Err(e) = teardown(store, record, &paths) {
        errors.push(e);
    }
    match record.snapshotter.parse::<Backend>() {
        Ok(backend) => match backend.open(root).map(|sn| sn.remove(&record.id)) {
            Ok(Ok(())) | Ok(Err(snapshot::SnapshotError::NotFound { .. })) => {}
            Ok(Err(e)) | Err(e) => errors.push(e.into()),
        },
        Err(e) => errors.push(e.into()),
    }
    if volumes {
        if let Err(e) = remove_anonymous_volumes(root, record) {
            errors.push(e);
        }
    }
    {
        let _names = store.names_lock()?;
        if let Err(e) = store.remove_dir(&record.id) {
            errors.push(e);
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => {
            let first = errors.remove(0);
            let also = errors.iter().map(|e| format!("also: {e}")).collect();
            Err(first.with_also(also))
        }
    }
}

/// Removes the container's anonymous volumes that no other container uses.
fn remove_anonymous_volumes(root: &Path, record: &Record) -> Result<()> {
    let anonymous: Vec<&str> = record
        .config
        .mounts
        .iter()
        .filter(|m| m.kind == "volume" && m.anonymous)
        .map(|m| m.name.as_str())
        .collect();
    if anonymous.is_empty() {
        return Ok(());
    }
    let users = super::store::volume_users(root)?;
    let volumes = VolumeStore::open(root)?;
    for name in anonymous {
        let others: Vec<String> = users
            .get(name)
            .map(|u| u.iter().filter(|n| **n != record.name).cloned().collect())
            .unwrap_or_default();
        match volumes.remove(name, &others) {
            Ok(()) => crate::events::emit(
                root,
                "volume",
                "destroy",
                name,
                &[("driver", "local".into())],
            ),
            Err(VolumeError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads at most `limit` bytes of a small file (the monitor log, for error messages).
pub fn read_small(path: &Path, limit: u64) -> String {
    let mut s = String::new();
    if let Ok(f) = File::open(path) {
        let _ = f.take(limit).read_to_string(&mut s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_belongs_to_a_live_pid() {
        let me = std::process::id() as i32;
        assert!(proc_start_time(me).is_some());
        assert_eq!(proc_start_time(i32::MAX), None);
    }
}
