//! The embedded DNS resolver of a user network (the role of docker's 127.0.0.11 and podman's
//! aardvark-dns): one `berth __dns <network>` process per network, listening on the network's
//! gateway addresses, port 53. It answers container names, short ids and aliases from the
//! store's endpoint records (so containers started later resolve at once), and forwards every
//! other query to the asking container's `--dns` servers or the host's resolv.conf servers.
//!
//! Lifecycle, daemonless: the first attach to the network starts it ([`ensure`]), and so does
//! any later attach that finds it dead. It holds `dns/<network-id>.lock` for as long as it
//! runs (so "running" is a lock test, immune to stale pid files) and exits by itself once no
//! endpoint of the network is left; `network rm` stops it ([`stop`]). Starting and the idle
//! exit both hold `dns/<network-id>.start`, so an exit never races an attach that just found
//! it running.

pub mod server;
pub mod table;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::store::{Network, NetworkStore, StoreError};
use crate::lock::{self, FileLock, LockError};

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("creating {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("starting the DNS resolver of network {network} ({program})")]
    Spawn {
        network: String,
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the DNS resolver of network {network} did not start: {detail}")]
    Start { network: String, detail: String },
    #[error("the DNS resolver of network {network} (pid {pid}) did not stop")]
    Stop { network: String, pid: i32 },
    #[error("the DNS resolver of network {network} cannot listen on {addr}")]
    Bind {
        network: String,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("detaching the DNS resolver from its parent")]
    Fork(#[source] io::Error),
    #[error("running the DNS resolver")]
    Runtime(#[source] io::Error),
}

/// How long a start may take before it counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a resolver gets to exit on SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The files of one network's resolver.
pub(crate) struct Files {
    pub lock: PathBuf,
    pub start: PathBuf,
    pub pid: PathBuf,
    pub log: PathBuf,
}

pub(crate) fn files(store: &NetworkStore, net: &Network) -> Files {
    let d = store.dns_dir();
    Files {
        lock: d.join(format!("{}.lock", net.id)),
        start: d.join(format!("{}.start", net.id)),
        pid: d.join(format!("{}.pid", net.id)),
        log: d.join(format!("{}.log", net.id)),
    }
}

fn open_lock(path: &Path) -> Result<File, DnsError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| {
            LockError::Open {
                path: path.to_path_buf(),
                source,
            }
            .into()
        })
}

/// Whether a resolver holds the lock at `path`.
fn running(path: &Path) -> Result<bool, DnsError> {
    if !path.exists() {
        return Ok(false);
    }
    let f = open_lock(path)?;
    let free = lock::try_lock_exclusive(&f).map_err(|source| LockError::Lock {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(!free)
}

/// Whether the resolver of `net` is running.
pub fn is_running(store: &NetworkStore, net: &Network) -> Result<bool, DnsError> {
    running(&files(store, net).lock)
}

/// The pid of the running resolver of `net`, if any.
pub fn pid(store: &NetworkStore, net: &Network) -> Option<i32> {
    let f = files(store, net);
    if !running(&f.lock).unwrap_or(false) {
        return None;
    }
    fs::read_to_string(&f.pid).ok()?.trim().parse().ok()
}

/// The addresses a network's resolver listens on: its gateways.
pub fn addresses(net: &Network) -> Vec<IpAddr> {
    std::iter::once(IpAddr::V4(net.gateway))
        .chain(net.ipv6.map(|v| IpAddr::V6(v.gateway)))
        .collect()
}

/// Starts the resolver of `net` unless one runs; returns once it answers on its addresses.
pub fn ensure(store: &NetworkStore, net: &Network) -> Result<(), DnsError> {
    let Some(program) = store.resolver_program() else {
        return Ok(());
    };
    let f = files(store, net);
    if running(&f.lock)? {
        return Ok(());
    }
    let dir = store.dns_dir();
    fs::create_dir_all(&dir).map_err(|source| DnsError::Io { path: dir, source })?;
    let _start = FileLock::exclusive(&f.start)?;
    if running(&f.lock)? {
        return Ok(());
    }
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&f.log)
        .map_err(|source| DnsError::Io {
            path: f.log.clone(),
            source,
        })?;
    let spawn_err = |source| DnsError::Spawn {
        network: net.name.clone(),
        program: program.to_path_buf(),
        source,
    };
    let mut cmd = Command::new(program);
    cmd.arg("--root")
        .arg(store.root())
        .arg("__dns")
        .arg(&net.name)
        .env("BERTH_RUN_DIR", store.run_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    // The resolver must not take the caller's signals (a ^C to `berth run`): a session of its
    // own, as any daemon. setsid(2) is async-signal-safe.
    // SAFETY: the closure calls only setsid, which allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(spawn_err)?;
    // The process forks once listening: its first half prints `ready` and exits, the second
    // closes the pipe. Read until both are done, within a bound.
    let mut out = child.stdout.take();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_string(&mut text);
        }
        let _ = tx.send(text);
    });
    let text = match rx.recv_timeout(START_TIMEOUT) {
        Ok(t) => t,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(DnsError::Start {
                network: net.name.clone(),
                detail: format!("no answer within {}s", START_TIMEOUT.as_secs()),
            });
        }
    };
    let _ = child.wait();
    if text.lines().any(|l| l == "ready") {
        return Ok(());
    }
    let log = fs::read_to_string(&f.log).unwrap_or_default();
    let detail = log
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("it exited without saying why")
        .to_string();
    Err(DnsError::Start {
        network: net.name.clone(),
        detail,
    })
}

/// Stops the resolver of `net` (SIGTERM, then SIGKILL) and removes its files.
pub fn stop(store: &NetworkStore, net: &Network) -> Result<(), DnsError> {
    let f = files(store, net);
    if running(&f.lock)? {
        let pid: i32 = fs::read_to_string(&f.pid)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        // The pid file is only trusted while the process is the resolver of this network.
        let ours = pid > 0
            && fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"__dns"));
        if ours {
            for (signal, limit) in [
                (rustix::process::Signal::TERM, STOP_TIMEOUT),
                (rustix::process::Signal::KILL, Duration::from_secs(2)),
            ] {
                if let Some(p) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(p, signal);
                }
                let deadline = Instant::now() + limit;
                while running(&f.lock)? && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if !running(&f.lock)? {
                    break;
                }
            }
        }
        if running(&f.lock)? {
            return Err(DnsError::Stop {
                network: net.name.clone(),
                pid,
            });
        }
    }
    for p in [&f.pid, &f.log, &f.start, &f.lock] {
        let _ = fs::remove_file(p);
    }
    Ok(())
}

/// `berth __dns NETWORK`: the resolver process. Takes the lock (another resolver holding it
/// means there is nothing to do), listens, forks to leave its parent, says `ready`, and serves
/// until the network has no container left or is removed. `ready` is called once the resolver
/// serves (or another one already does); the front end prints the word its spawner waits for.
pub fn serve(root: &Path, network: &str, ready: impl FnOnce()) -> Result<(), DnsError> {
    let store = NetworkStore::open(root, &super::run_dir())?;
    let net = store.get(network)?;
    let f = files(&store, &net);
    let dir = store.dns_dir();
    fs::create_dir_all(&dir).map_err(|source| DnsError::Io { path: dir, source })?;
    let lock = open_lock(&f.lock)?;
    let free = lock::try_lock_exclusive(&lock).map_err(|source| LockError::Lock {
        path: f.lock.clone(),
        source,
    })?;
    if !free {
        ready();
        return Ok(());
    }
    let sockets = server::Sockets::bind(&net)?;
    // SAFETY: the process is single-threaded here (no runtime or thread has started yet), so
    // the child may go on running Rust code after fork.
    match unsafe { nix::unistd::fork() }.map_err(|e| DnsError::Fork(e.into()))? {
        nix::unistd::ForkResult::Parent { .. } => {
            // The lock and the sockets stay with the child (same open file descriptions).
            ready();
            std::process::exit(0);
        }
        nix::unistd::ForkResult::Child => {}
    }
    // A session of its own (the spawner already made one; this keeps a resolver started by
    // hand off its terminal too).
    let _ = nix::unistd::setsid();
    detach_stdio().map_err(DnsError::Fork)?;
    fs::write(&f.pid, std::process::id().to_string()).map_err(|source| DnsError::Io {
        path: f.pid.clone(),
        source,
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DnsError::Runtime)?;
    let result = rt.block_on(server::run(store, net, sockets, f.start));
    drop(lock);
    result
}

/// Points stdin and stdout at /dev/null: the spawner reads stdout to its end, which comes
/// only when no process holds the pipe. stderr stays the log file.
fn detach_stdio() -> io::Result<()> {
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    Ok(())
}
