//! The per-container monitor (what conmon is to podman): a small process that outlives the
//! `berth` command that started it. It creates the container through the runtime, owns the
//! container's stdio (pipes, or the pty master received on a console socket), writes the
//! output to the json-file log and to attached clients, waits for the container's init (it
//! is the child subreaper, prctl(2) PR_SET_CHILD_SUBREAPER, so the init becomes its child
//! when the runtime's `create` exits), records the exit, applies the restart policy and
//! finally tears the container down (and removes it for `--rm`).
//!
//! The command that spawns it passes a pipe as fd 3; the monitor writes one JSON line there
//! once the container is created (and started, when asked to start at once), so the
//! spawner can report errors and exit codes like docker does.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use self::rootless::{user_mode_network, user_networks};
use super::attach::{self, Frame, Hello};
use super::health;
use super::lifecycle::{self, Paths};
use super::record::{now_rfc3339, Record, Status};
use super::store::ContainerStore;
use super::ContainerError;
use crate::logs::{LogOptions, LogWriter, Stream};

mod clients;
mod rootless;
pub use clients::resize;
use clients::{accept_loop, broadcast_exit, fail_waiting, lock, pump};

type Result<T, E = ContainerError> = std::result::Result<T, E>;

/// The file name of the monitor's socket in the container directory.
pub const SOCKET: &str = "attach.sock";

/// What the monitor reports on its sync pipe.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Report {
    pub ok: bool,
    #[serde(default)]
    pub code: i32,
    #[serde(default)]
    pub message: String,
    /// The monitor's pid (filled in by the spawner, which is its parent).
    #[serde(skip)]
    pub monitor_pid: i32,
}

/// A client attached to the monitor's socket.
struct Client {
    stream: UnixStream,
    hello: Hello,
}

/// The container's side of stdio for one run.
struct Stdio3 {
    /// Writer to the container's stdin (pipe) or the pty master, when stdin is open.
    stdin: Option<File>,
    /// The pty master, for resizes.
    pty: Option<OwnedFd>,
    /// Readers of the container's output.
    outputs: Vec<(Stream, File)>,
}

/// State shared by the monitor's threads.
struct Shared {
    clients: Mutex<Vec<Client>>,
    /// The last exit status, once the container exited (late clients get it at once).
    exit: Mutex<Option<i32>>,
    stdin: Mutex<Option<File>>,
    pty: Mutex<Option<OwnedFd>>,
    log: Mutex<LogWriter>,
    /// Clients that asked for a start, answered once the start was tried.
    start_tx: Mutex<Sender<UnixStream>>,
}

/// Runs the monitor of container `id` until the container is down for good. `start` starts it
/// right after create (`run -d`, `start`, restarts); otherwise a client's Hello starts it.
pub fn run(root: &Path, id: &str, start: bool, sync: Option<File>) -> Result<()> {
    let store = ContainerStore::open(root)?;
    let record = store.load(id)?;
    let paths = Paths::new(root, &store, &record);
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes an integer argument and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(ContainerError::Monitor {
            what: "becoming the child subreaper".into(),
            source: io::Error::last_os_error(),
        });
    }
    let listener = attach::listen(&paths.dir, SOCKET).map_err(|source| ContainerError::Io {
        path: paths.dir.join(SOCKET),
        source,
    })?;
    let log_opts = LogOptions {
        max_size: (record.config.log_max_size > 0).then_some(record.config.log_max_size),
        max_file: record.config.log_max_file.max(1),
        attrs: record.config.log_attrs.clone(),
    };
    let log = LogWriter::create(&paths.log, log_opts)?;
    let (start_tx, start_rx) = mpsc::channel();
    let shared = Arc::new(Shared {
        clients: Mutex::new(Vec::new()),
        exit: Mutex::new(None),
        stdin: Mutex::new(None),
        pty: Mutex::new(None),
        log: Mutex::new(log),
        start_tx: Mutex::new(start_tx),
    });
    {
        let shared = shared.clone();
        thread::spawn(move || accept_loop(listener, shared));
    }
    let mut sync = sync;
    let mut start_now = start;
    loop {
        let record = store.load(id)?;
        let outcome = run_once(
            &store, &record, &paths, &shared, start_now, &start_rx, &mut sync,
        );
        let code = match outcome {
            Ok(code) => code,
            Err(failure) => {
                // Nothing ran: tell whoever waits, tear down and stop.
                let (code, message) = failure;
                report(&mut sync, false, code, &message);
                let _ = store.update(id, |r| {
                    r.state.status = if r.state.started_at.is_empty() {
                        Status::Created
                    } else {
                        Status::Exited
                    };
                    r.state.pid = 0;
                    r.state.error = message.clone();
                    r.state.exit_code = code;
                    r.state.monitor_pid = 0;
                });
                let _ = lifecycle::teardown(&store, &store.load(id)?, &paths);
                fail_waiting(&shared, code, &message, &start_rx);
                broadcast_exit(&shared, code);
                if record.config.auto_remove {
                    let r = store.load(id)?;
                    if lifecycle::remove_files(root, &store, &r, true).is_ok() {
                        crate::events::container(root, &r, "destroy", &[]);
                    }
                }
                return Ok(());
            }
        };
        let current = store.load(id)?;
        let restart = current.config.restart.should_restart(
            code,
            current.state.restart_count,
            current.state.manually_stopped,
        );
        if restart {
            broadcast_exit(&shared, code);
            let delay = backoff(current.state.restart_count);
            store.update(id, |r| {
                r.state.status = Status::Restarting;
                r.state.restart_count += 1;
            })?;
            thread::sleep(delay);
            // A `stop` during the back-off wins.
            if store.load(id)?.state.manually_stopped {
                break;
            }
            start_now = true;
            continue;
        }
        break;
    }
    let record = store.load(id)?;
    let code = record.state.exit_code;
    let _ = lifecycle::teardown(&store, &record, &paths);
    store.update(id, |r| {
        r.state.monitor_pid = 0;
        r.state.monitor_start = 0;
    })?;
    if record.config.auto_remove && lifecycle::remove_files(root, &store, &record, true).is_ok() {
        crate::events::container(root, &record, "destroy", &[]);
    }
    broadcast_exit(&shared, code);
    Ok(())
}

/// What docker reports when a container starts: its networks connected, its volumes
/// mounted, then the start itself.
fn start_events(root: &Path, store: &ContainerStore, record: &Record) {
    let current = store.load(&record.id).unwrap_or_else(|_| record.clone());
    network_events(root, &current, "connect");
    for m in current.config.mounts.iter().filter(|m| m.kind == "volume") {
        crate::events::emit(
            root,
            "volume",
            "mount",
            &m.name,
            &[
                ("container", current.id.clone()),
                ("destination", m.destination.clone()),
                ("driver", "local".into()),
                ("propagation", String::new()),
                ("read/write", m.rw.to_string()),
            ],
        );
    }
    crate::events::container(root, &current, "start", &[]);
}

/// A network event (`connect`, `disconnect`) for each network the container is attached to.
fn network_events(root: &Path, r: &Record, action: &str) {
    let nets = crate::network::NetworkStore::open(root, &crate::network::run_dir()).ok();
    for name in r.networks.keys() {
        let id = nets
            .as_ref()
            .and_then(|n| n.inspect(name).ok())
            .map_or_else(|| name.clone(), |n| n.id);
        crate::events::emit(
            root,
            "network",
            action,
            &id,
            &[
                ("container", r.id.clone()),
                ("name", name.clone()),
                ("type", "bridge".into()),
            ],
        );
    }
}

/// Docker's restart back-off: 100 ms doubling per restart, at most a minute.
fn backoff(restarts: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << restarts.min(10))).min(Duration::from_secs(60))
}

/// One create → start → exit cycle; returns the exit status, or (code, message) when the
/// container could not be created or started.
fn run_once(
    store: &ContainerStore,
    record: &Record,
    paths: &Paths,
    shared: &Arc<Shared>,
    start_now: bool,
    start_rx: &Receiver<UnixStream>,
    sync: &mut Option<File>,
) -> std::result::Result<i32, (i32, String)> {
    let runtime = paths.runtime(record);
    // Rootless, user-defined networks are in berth's rootless network namespace: it must be
    // up before the runtime makes the container in its user namespace, and stay up (held)
    // until the container is wired.
    let held = if crate::rootless::networks::uses_user_networks(record) {
        let held = crate::rootless::netns::hold()
            .and_then(|h| crate::rootless::netns::ensure(&h).map(|_| h))
            .map_err(|e| (125, crate::ops::error::chain(&e)))?;
        Some(held)
    } else {
        None
    };
    let (pid, stdio) = match create(record, paths, &runtime) {
        Ok(v) => v,
        Err(e) => {
            if let Some(held) = &held {
                // A namespace started for nothing does not stay.
                let _ = crate::rootless::networks::stop_if_idle(held, &paths.root);
            }
            return Err(failure(&e));
        }
    };
    let _user_networks = match held {
        Some(held) => match user_networks(&held, store, record, paths, pid) {
            Ok(g) => Some(g),
            Err(message) => {
                let _ = runtime.delete(&record.id, true);
                let _ = reap(pid);
                return Err((125, message));
            }
        },
        None => None,
    };
    // Rootless, the default network is slirp4netns's, wired into the new namespace before
    // the container starts; it stops with this run.
    let _slirp = if crate::rootless::uses_slirp(&record.config.network_mode) {
        match user_mode_network(store, record, paths, pid) {
            Ok(s) => Some(s),
            Err(message) => {
                let _ = runtime.delete(&record.id, true);
                let _ = reap(pid);
                return Err((125, message));
            }
        }
    } else {
        None
    };
    *lock(&shared.stdin) = stdio.stdin;
    *lock(&shared.pty) = stdio.pty;
    let pumps: Vec<JoinHandle<()>> = stdio
        .outputs
        .into_iter()
        .map(|(stream, file)| {
            let shared = shared.clone();
            thread::spawn(move || pump(stream, file, &shared))
        })
        .collect();
    let _ = store.update(&record.id, |r| {
        r.state.pid = pid.as_raw();
        r.state.error.clear();
    });
    let mut waiting: Vec<UnixStream> = Vec::new();
    if !start_now {
        report(sync, true, 0, "");
        // Wait for a client to ask for the start, or for the init to die (rm, kill).
        loop {
            match start_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(client) => {
                    waiting.push(client);
                    break;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if let Ok(status) = waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                if status != WaitStatus::StillAlive {
                    let code = exit_code(status);
                    finish(store, record, &runtime, code, pumps, false);
                    return Ok(code);
                }
            }
        }
    }
    // Everyone who asked for a start meanwhile gets the answer.
    while let Ok(c) = start_rx.try_recv() {
        waiting.push(c);
    }
    if let Err(e) = runtime.start(&record.id) {
        let (code, message) = failure(&e);
        for mut c in waiting {
            let _ = Frame::Failed {
                code,
                message: message.clone(),
            }
            .write_to(&mut c);
        }
        let _ = runtime.delete(&record.id, true);
        let _ = reap(pid);
        for p in pumps {
            let _ = p.join();
        }
        return Err((code, message));
    }
    // `start` clears `manually_stopped` before it spawns the monitor; a restart never does, so
    // a `stop` that lands while a restart is under way keeps its flag and wins here.
    let stopped_meanwhile = store
        .update(&record.id, |r| {
            r.state.status = Status::Running;
            r.state.started_at = now_rfc3339();
            r.state.finished_at.clear();
            r.state.exit_code = 0;
        })
        .is_ok_and(|r| r.state.manually_stopped);
    if stopped_meanwhile {
        let _ = runtime.kill(&record.id, "KILL", true);
    }
    start_events(&paths.root, store, record);
    for mut c in waiting {
        let _ = Frame::Started.write_to(&mut c);
    }
    report(sync, true, 0, "");
    let stop = Arc::new(AtomicBool::new(false));
    let health = record.config.healthcheck.clone().map(|check| {
        let (store, id, runtime, stop) = (
            store.clone(),
            record.id.clone(),
            runtime.clone(),
            stop.clone(),
        );
        thread::spawn(move || health::run(&store, &id, &runtime, &check, &stop))
    });
    let code = reap(pid);
    stop.store(true, Ordering::SeqCst);
    if let Some(h) = health {
        let _ = h.join();
    }
    let attached = store.load(&record.id).unwrap_or_else(|_| record.clone());
    finish(store, record, &runtime, code, pumps, true);
    network_events(&paths.root, &attached, "disconnect");
    let current = store.load(&record.id).unwrap_or_else(|_| record.clone());
    if current.state.oom_killed {
        crate::events::container(&paths.root, &current, "oom", &[]);
    }
    crate::events::container(
        &paths.root,
        &current,
        "die",
        &[("exitCode", code.to_string())],
    );
    Ok(code)
}

/// After the init exited: drain output, delete the runtime's container, record the exit.
fn finish(
    store: &ContainerStore,
    record: &Record,
    runtime: &super::runtime::Runtime,
    code: i32,
    pumps: Vec<JoinHandle<()>>,
    started: bool,
) {
    // Output ends when the last writer closes; a process that escaped the pid namespace
    // (`--pid host`) may hold it open, so stop waiting after a while.
    let deadline = Instant::now() + Duration::from_secs(2);
    for p in pumps {
        while !p.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        if p.is_finished() {
            let _ = p.join();
        }
    }
    let oom = lifecycle::oom_killed(record);
    let _ = runtime.delete(&record.id, true);
    let _ = store.update(&record.id, |r| {
        r.state.status = if started {
            Status::Exited
        } else {
            Status::Created
        };
        if started {
            r.state.finished_at = now_rfc3339();
        }
        r.state.exit_code = code;
        r.state.pid = 0;
        r.state.oom_killed = oom;
    });
}

/// Creates the container through the runtime with the monitor's pipes or a pty as stdio.
fn create(
    record: &Record,
    paths: &Paths,
    runtime: &super::runtime::Runtime,
) -> Result<(Pid, Stdio3)> {
    let _ = std::fs::remove_file(&paths.pid_file);
    let mut cmd = runtime.command("create");
    cmd.arg("--bundle")
        .arg(&paths.bundle)
        .arg("--pid-file")
        .arg(&paths.pid_file);
    let mut stdio = Stdio3 {
        stdin: None,
        pty: None,
        outputs: Vec::new(),
    };
    let console = if record.config.tty {
        let (path, listener) = console_socket(&record.id)?;
        cmd.arg("--console-socket").arg(&path);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Some((path, listener))
    } else {
        if record.config.open_stdin {
            let (r, w) = pipe()?;
            cmd.stdin(Stdio::from(r));
            stdio.stdin = Some(File::from(w));
        } else {
            cmd.stdin(Stdio::null());
        }
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        cmd.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
        stdio.outputs.push((Stream::Stdout, File::from(out_r)));
        stdio.outputs.push((Stream::Stderr, File::from(err_r)));
        None
    };
    cmd.arg(&record.id);
    let spawned = cmd.spawn();
    // Our copies of the container's ends must close, or reading its output never ends.
    drop(cmd);
    let mut child = spawned.map_err(|source| ContainerError::RuntimeSpawn {
        path: runtime.path.clone(),
        source,
    })?;
    let master = console
        .as_ref()
        .map(|(_, listener)| receive_pty(listener, &mut child));
    let out = child
        .wait_with_output()
        .map_err(|source| ContainerError::RuntimeSpawn {
            path: runtime.path.clone(),
            source,
        })?;
    if let Some((path, _)) = &console {
        let _ = std::fs::remove_file(path);
    }
    if !out.status.success() {
        return Err(ContainerError::Runtime {
            verb: "create".into(),
            message: runtime.failure_message(&out.stderr),
            code: out.status.code().unwrap_or(-1),
        });
    }
    if let Some(master) = master {
        let master = master.map_err(|source| ContainerError::Monitor {
            what: "receiving the pty master".into(),
            source,
        })?;
        let reader = master
            .try_clone()
            .map_err(|source| ContainerError::Monitor {
                what: "duplicating the pty master".into(),
                source,
            })?;
        if record.config.open_stdin {
            let writer = master
                .try_clone()
                .map_err(|source| ContainerError::Monitor {
                    what: "duplicating the pty master".into(),
                    source,
                })?;
            stdio.stdin = Some(File::from(writer));
        }
        stdio.outputs.push((Stream::Stdout, File::from(reader)));
        stdio.pty = Some(master);
    }
    let text = std::fs::read_to_string(&paths.pid_file).map_err(|source| ContainerError::Io {
        path: paths.pid_file.clone(),
        source,
    })?;
    let pid = text
        .trim()
        .parse::<i32>()
        .map_err(|_| ContainerError::PidFile {
            path: paths.pid_file.clone(),
        })?;
    Ok((Pid::from_raw(pid), stdio))
}

/// A listening console socket at a short path (the runtime connects to the path itself, so
/// it must fit in `sun_path`).
fn console_socket(id: &str) -> Result<(PathBuf, UnixListener)> {
    let path = std::env::temp_dir().join(format!(
        "berth-console-{}-{}.sock",
        &id[..12.min(id.len())],
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|source| ContainerError::Io {
        path: path.clone(),
        source,
    })?;
    Ok((path, listener))
}

/// Accepts the runtime's connection and takes the pty master out of its SCM_RIGHTS message.
/// Gives up when the runtime exits without connecting (it failed before making the pty).
fn receive_pty(listener: &UnixListener, child: &mut std::process::Child) -> io::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    listener.set_nonblocking(true)?;
    let conn = loop {
        match listener.accept() {
            Ok((conn, _)) => break conn,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if child.try_wait()?.is_some() {
                    // One last look: it may have connected just before exiting.
                    match listener.accept() {
                        Ok((conn, _)) => break conn,
                        Err(_) => {
                            return Err(io::Error::new(
                                io::ErrorKind::NotConnected,
                                "the runtime exited without sending a pty",
                            ))
                        }
                    }
                }
                thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(e),
        }
    };
    conn.set_nonblocking(false)?;
    let mut name = [0u8; 4096];
    let mut iov = [io::IoSliceMut::new(&mut name)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us; we own it.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "the runtime sent no pty master",
    ))
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ContainerError::Monitor {
        what: "making a pipe".into(),
        source: e.into(),
    })
}

/// Waits for the init and maps its end to a shell-style status (128+N for signal N).
fn reap(pid: Pid) -> i32 {
    loop {
        match waitpid(pid, None) {
            Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return exit_code(s),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 255,
    }
}

/// docker's exit statuses for a container that could not run: 127 when the command does
/// not exist, 126 when it cannot be executed, 125 for everything else.
fn failure(e: &ContainerError) -> (i32, String) {
    let message = e.to_string();
    let lower = message.to_lowercase();
    let code = if lower.contains("not found") || lower.contains("no such file") {
        127
    } else if lower.contains("permission denied") || lower.contains("is a directory") {
        126
    } else {
        125
    };
    (code, message)
}

fn report(sync: &mut Option<File>, ok: bool, code: i32, message: &str) {
    if let Some(mut f) = sync.take() {
        let r = Report {
            ok,
            code,
            message: message.to_string(),
            monitor_pid: 0,
        };
        if let Ok(mut line) = serde_json::to_vec(&r) {
            line.push(b'\n');
            let _ = f.write_all(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_dockers_exit_statuses() {
        let e = |m: &str| ContainerError::Runtime {
            verb: "create".into(),
            message: m.into(),
            code: 1,
        };
        assert_eq!(
            failure(&e("exec: \"nope\": executable file not found in $PATH")).0,
            127
        );
        assert_eq!(failure(&e("exec /etc: permission denied")).0, 126);
        assert_eq!(failure(&e("cgroup: invalid argument")).0, 125);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(30), Duration::from_secs(60));
    }
}
