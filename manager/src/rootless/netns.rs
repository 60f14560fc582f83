//! The rootless network namespace: where a rootless berth's user-defined networks live.
//!
//! An unprivileged user cannot make bridges or veths on the host, but is root in a user
//! namespace of its own. So berth keeps one per user ("R", mapping root to the user and ids
//! 1.. to its subordinate range, as a rootless container's does) with a network namespace
//! ("N0") in it, made on first need under `$XDG_RUNTIME_DIR/berth/rootless-netns`:
//!
//! - a *pause* process (`berth` started by `unshare --user --net`, [`PAUSE_ARG`]) holds R and
//!   N0; it exits when its stdin (a pipe from the keeper) closes, or when it is killed;
//! - the *keeper* (`berth`, [`KEEPER_ARG`], a session of its own) starts it, runs slirp4netns
//!   on N0 (its tap0 is 10.0.2.100, outbound traffic of N0 leaves through it and published
//!   ports come in through its API), and ends with the pause process, stopping slirp4netns;
//! - `userns` and `netns` in the directory link to the pause process's namespaces: a
//!   container on a user network joins R (its spec names the `userns` link), so the network
//!   namespace the runtime makes for it belongs to R too, and root in R may wire it.
//!
//! The network work itself is the root code (`network::attach`, `detach`, the native backend,
//! the embedded DNS), run by berth as root in R and N0: [`run_job`] starts `nsenter --user
//! --net` on the pause process with the job in [`JOB_ENV`]. Its host-wide state (lock,
//! markers, saved sysctls) goes to `host/` in the directory, iptables' lock beside it.
//!
//! [`stop`] ends it all (the caller stops the resolvers first); berth does so once no
//! container is attached to a user network (see `rootless::networks`), so nothing of it
//! outlives the containers.

use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::lock::{FileLock, LockError};
use crate::network::endpoint::Attachment;
use crate::network::etc::EtcConfig;
use crate::network::ports::PortMapping;
use crate::network::slirp::{Slirp, SlirpError};
use crate::network::store::Network;

/// The argument that makes `berth` the keeper.
pub const KEEPER_ARG: &str = "__rootless-netns-keeper";
/// The argument that makes `berth` the pause process.
pub const PAUSE_ARG: &str = "__rootless-netns-pause";
/// The environment variable carrying a job for berth in the namespace (JSON).
pub const JOB_ENV: &str = "BERTH_ROOTLESS_NETNS_JOB";
/// slirp4netns's address in N0: published ports arrive there.
pub const SLIRP_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);

/// How long the keeper may take to have the namespace ready, and a job to finish.
const START_TIMEOUT: Duration = Duration::from_secs(20);
const JOB_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("starting the rootless network namespace: {detail}")]
    Start { detail: String },
    #[error("the rootless network namespace is not running")]
    NotRunning,
    #[error("{detail}")]
    Job { detail: String },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Slirp(#[from] SlirpError),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> NetnsError {
    let what = what.into();
    move |source| NetnsError::Io { what, source }
}

/// One network attachment asked of berth in the namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRequest {
    pub network: String,
    pub aliases: Vec<String>,
    pub ip: Option<Ipv4Addr>,
}

/// Work for berth in the namespace (root in R, in N0).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// `network::attach` of the container whose network namespace is `netns`; answers
    /// [`Attached`].
    Attach {
        root: PathBuf,
        container_id: String,
        container_name: String,
        netns: PathBuf,
        etc: Option<EtcConfig>,
        requests: Vec<NetRequest>,
        ports: Vec<PortMapping>,
    },
    /// `network::detach` of a container (from `network`, or from all).
    Detach {
        root: PathBuf,
        container_id: String,
        network: Option<String>,
    },
    /// What a removed network had in N0 (bridge, rules, resolver files, leases).
    RemoveNetwork { root: PathBuf, network: Network },
    /// `network::recover`: teardowns that crashed commands left.
    Recover { root: PathBuf },
}

/// What an attach job answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attached {
    pub attachments: Vec<Attachment>,
    pub ports: Vec<PortMapping>,
}

/// The namespace's directory.
pub fn dir() -> PathBuf {
    crate::network::run_dir().join("rootless-netns")
}

/// The link to R that a container on a user network joins.
pub fn userns_link() -> PathBuf {
    dir().join("userns")
}

/// The API socket of the namespace's slirp4netns.
pub fn slirp_api() -> PathBuf {
    dir().join("slirp.sock")
}

fn lock() -> Result<FileLock, NetnsError> {
    let run = crate::network::run_dir();
    fs::create_dir_all(&run).map_err(io_err(format!("creating {}", run.display())))?;
    Ok(FileLock::exclusive(&run.join("rootless-netns.lock"))?)
}

/// Whether pid `pid` runs berth as `arg`.
fn is(pid: i32, arg: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
}

fn read_pid(name: &str) -> Option<i32> {
    fs::read_to_string(dir().join(name))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// The pause process's pid, when the namespace is up.
pub fn running() -> Option<i32> {
    read_pid("pid").filter(|p| is(*p, PAUSE_ARG))
}

/// The namespace exclusively held: callers that must not see it stopped or started under
/// them (an attach, the idle stop) hold this.
pub struct Held {
    _lock: FileLock,
}

/// Takes the namespace's lock.
pub fn hold() -> Result<Held, NetnsError> {
    Ok(Held { _lock: lock()? })
}

/// Starts the namespace unless it runs; returns the pause process's pid.
pub fn ensure(_held: &Held) -> Result<i32, NetnsError> {
    if let Some(pid) = running() {
        return Ok(pid);
    }
    let d = dir();
    // Leftovers of a keeper that died with the machine or a kill.
    if d.exists() {
        fs::remove_dir_all(&d).map_err(io_err(format!("removing {}", d.display())))?;
    }
    fs::create_dir_all(&d).map_err(io_err(format!("creating {}", d.display())))?;
    let exe = std::env::current_exe().map_err(io_err("finding berth's executable"))?;
    let log = fs::File::create(d.join("keeper.log")).map_err(io_err(format!(
        "creating {}",
        d.join("keeper.log").display()
    )))?;
    let mut cmd = Command::new(&exe);
    cmd.arg(KEEPER_ARG)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    // SAFETY: the closure calls only setsid, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            Ok(())
        });
    }
    let text = without_subreaper(|| -> Result<Option<String>, NetnsError> {
        let mut child = cmd.spawn().map_err(io_err("starting the keeper"))?;
        let text = read_bounded(child.stdout.take(), START_TIMEOUT);
        // The keeper forks at once: this is its first half, gone already.
        let _ = child.wait();
        Ok(text)
    })?;
    match (text, running()) {
        (Some(t), Some(pid)) if t.lines().any(|l| l == "ready") => Ok(pid),
        (text, _) => {
            let log = fs::read_to_string(d.join("keeper.log")).unwrap_or_default();
            let detail = text
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| format!("no answer within {}s", START_TIMEOUT.as_secs()));
            Err(NetnsError::Start {
                detail: format!("{} {}", detail.trim(), log.trim())
                    .trim()
                    .to_string(),
            })
        }
    }
}

/// Runs `f` with this process's child-subreaper flag off (a container's monitor has it on):
/// the keeper and the resolvers leave their spawners by forking, and must then become init's
/// children, not zombies of a monitor that never reaps them.
fn without_subreaper<T>(f: impl FnOnce() -> T) -> T {
    let mut was: libc::c_int = 0;
    // SAFETY: PR_GET_CHILD_SUBREAPER writes one int through the valid pointer given.
    let got = unsafe { libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut was as *mut libc::c_int) };
    let on = got == 0 && was != 0;
    if on {
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) };
    }
    let out = f();
    if on {
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    out
}

/// Reads `r` to its end on a thread; `None` when that takes longer than `limit`.
fn read_bounded<R: Read + Send + 'static>(r: Option<R>, limit: Duration) -> Option<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut r) = r {
            let _ = r.read_to_string(&mut text);
        }
        let _ = tx.send(text);
    });
    rx.recv_timeout(limit).ok()
}

/// Stops the namespace: the pause process is killed, the keeper then stops slirp4netns and
/// exits; waits (bounded) for both and removes the directory.
pub fn stop(_held: &Held) -> Result<(), NetnsError> {
    let keeper = read_pid("keeper").filter(|p| is(*p, KEEPER_ARG));
    if let Some(pid) = running().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while (running().is_some() || keeper.is_some_and(|k| is(k, KEEPER_ARG)))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    if let Some(k) = keeper.filter(|k| is(*k, KEEPER_ARG)) {
        if let Some(pid) = rustix::process::Pid::from_raw(k) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    let d = dir();
    match fs::remove_dir_all(&d) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(io_err(format!("removing {}", d.display()))(e))
        }
        _ => Ok(()),
    }
}

/// Runs `job` as root in R and N0 (`nsenter` on the pause process); returns its stdout.
pub fn run_job(job: &Job) -> Result<Vec<u8>, NetnsError> {
    without_subreaper(|| run_job_here(job))
}

fn run_job_here(job: &Job) -> Result<Vec<u8>, NetnsError> {
    let pid = running().ok_or(NetnsError::NotRunning)?;
    let exe = std::env::current_exe().map_err(io_err("finding berth's executable"))?;
    let spec = serde_json::to_string(job).map_err(|e| NetnsError::Job {
        detail: e.to_string(),
    })?;
    let d = dir();
    let mut child = Command::new("nsenter")
        .arg(format!("--target={pid}"))
        .args(["--user", "--net", "--"])
        .arg(&exe)
        .env(JOB_ENV, spec)
        .env("BERTH_RUN_DIR", crate::network::run_dir())
        .env(crate::network::firewall::HOST_DIR_ENV, d.join("host"))
        .env("XTABLES_LOCKFILE", d.join("xtables.lock"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_err(
            "starting nsenter (util-linux) for the rootless network namespace",
        ))?;
    let errors = child.stderr.take();
    let errors = std::thread::spawn(move || read_bounded(errors, JOB_TIMEOUT));
    let out = read_bounded(child.stdout.take(), JOB_TIMEOUT);
    let status = wait_bounded(&mut child, JOB_TIMEOUT);
    let text = errors.join().ok().flatten().unwrap_or_default();
    match (out, status) {
        (Some(out), Some(s)) if s.success() => Ok(out.into_bytes()),
        (_, Some(_)) => Err(NetnsError::Job {
            detail: text.trim().to_string(),
        }),
        _ => Err(NetnsError::Job {
            detail: format!(
                "berth in the rootless network namespace did not finish within {}s",
                JOB_TIMEOUT.as_secs()
            ),
        }),
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// The process side: the keeper, the pause process or a job, by argument or environment;
/// `None` for an ordinary berth.
pub fn main() -> Option<i32> {
    let arg: Option<OsString> = std::env::args_os().nth(1);
    if arg.as_deref() == Some(KEEPER_ARG.as_ref()) {
        return Some(keeper());
    }
    if arg.as_deref() == Some(PAUSE_ARG.as_ref()) {
        return Some(pause());
    }
    let spec = std::env::var_os(JOB_ENV)?;
    // What this job starts (a network's resolver, `berth __dns`) must not run it again.
    std::env::remove_var(JOB_ENV);
    let result = serde_json::from_slice::<Job>(spec.as_encoded_bytes())
        .map_err(|e| format!("bad {JOB_ENV}: {e}"))
        .and_then(|job| super::networks::do_job(job).map_err(|e| crate::ops::error::chain(&*e)));
    match result {
        Ok(answer) => {
            let mut out = io::stdout().lock();
            let _ = out.write_all(&answer);
            let _ = out.flush();
            Some(0)
        }
        Err(text) => {
            let _ = io::stderr().write_all(format!("{text}\n").as_bytes());
            Some(1)
        }
    }
}

/// One line of the handshake with the spawner, which reads this process's stdout (a pipe,
/// not a terminal: protocol, not output for a user).
fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The pause process: says `ready`, then waits for its stdin to close.
fn pause() -> i32 {
    say("ready");
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    0
}

/// The keeper: leaves its spawner (fork), starts the pause process in R and N0 and
/// slirp4netns on it, answers `ready` (or the error) on stdout and lives as long as the pause
/// process.
fn keeper() -> i32 {
    // SAFETY: the process is single-threaded here (nothing has spawned a thread yet), so the
    // child may go on running Rust code after fork.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            say(&format!("forking the keeper: {e}"));
            return 1;
        }
    }
    let d = dir();
    let (mut pause, slirp) = match start_pause(&d) {
        Ok(v) => v,
        Err(e) => {
            say(&crate::ops::error::chain(&e));
            return 1;
        }
    };
    say("ready");
    // The spawner reads until end of file: stdout goes to /dev/null now.
    if let Ok(null) = fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 onto descriptor 1, which nothing else in this single-threaded process
        // holds as an owned descriptor (std's stdout handle writes to fd 1 by number).
        unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 1) };
    }
    // Child::wait closes the child's stdin first: the pause process would end at once.
    let stdin = pause.stdin.take();
    let _ = pause.wait();
    drop(stdin);
    drop(slirp);
    for f in ["pid", "keeper", "userns", "netns"] {
        let _ = fs::remove_file(d.join(f));
    }
    0
}

/// Starts the pause process and slirp4netns on it; writes the pid files and links.
fn start_pause(d: &Path) -> Result<(Child, Slirp), NetnsError> {
    let exe = std::env::current_exe().map_err(io_err("finding berth's executable"))?;
    let ids = super::id_ranges();
    let mut cmd = Command::new("unshare");
    cmd.arg("--user");
    if let (Some(u), Some(g)) = (ids.sub_uids, ids.sub_gids) {
        cmd.arg(format!("--map-users={},1,{}", u.first, u.count))
            .arg(format!("--map-groups={},1,{}", g.first, g.count));
    }
    cmd.args(["--map-root-user", "--net", "--"])
        .arg(&exe)
        .arg(PAUSE_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().map_err(io_err(
        "starting unshare (util-linux) for the pause process",
    ))?;
    let mut line = String::new();
    let ready = child
        .stdout
        .take()
        .map(|o| BufReader::new(o).read_line(&mut line));
    if !matches!(ready, Some(Ok(_))) || line.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        return Err(NetnsError::Start {
            detail: "the pause process did not start (unshare failed)".into(),
        });
    }
    let pid = child.id() as i32;
    let slirp = match Slirp::start(pid, &d.join("slirp.sock"), &d.join("slirp.log")) {
        Ok(s) => s,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e.into());
        }
    };
    let written = (|| -> io::Result<()> {
        std::os::unix::fs::symlink(format!("/proc/{pid}/ns/user"), d.join("userns"))?;
        std::os::unix::fs::symlink(format!("/proc/{pid}/ns/net"), d.join("netns"))?;
        fs::write(d.join("keeper"), std::process::id().to_string())?;
        fs::write(d.join("pid"), pid.to_string())
    })();
    if let Err(e) = written {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io_err(format!("writing {}", d.display()))(e));
    }
    Ok((child, slirp))
}
