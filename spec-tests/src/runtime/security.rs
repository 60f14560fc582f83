//! Helpers for the security tests: copying a host program (with its shared libraries) into a
//! rootfs, a docker-default-like seccomp profile, and a seccomp-notify agent that receives
//! the listener fd and container state from the runtime and answers notifications.

use std::fs;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::Value;

/// The profile Docker-style engines put in every bundle, in our own words: default ERRNO
/// (EPERM), an allowlist of ordinary syscalls, `personality` and `clone` allowed only with
/// harmless arguments, `clone3` answered with ENOSYS; mount, unshare, keyctl, ptrace, setns,
/// bpf, module and clock syscalls refused. It also lists names this kernel does not know.
pub fn default_seccomp_profile() -> Value {
    serde_json::from_str(include_str!("../../fixtures/seccomp-default.json"))
        .expect("the fixture is JSON")
}

/// Copies the host program `host` into `rootfs` at `dest`, with the shared libraries `ldd`
/// lists at their host paths, so it runs in a busybox rootfs.
pub fn install_host_program(rootfs: &Path, host: &Path, dest: &str) -> Result<()> {
    let target = rootfs.join(dest.trim_start_matches('/'));
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(host, &target).with_context(|| format!("copying {}", host.display()))?;
    fs::set_permissions(&target, fs::Permissions::from_mode(0o755))?;
    let out = Command::new("ldd")
        .arg(host)
        .output()
        .context("running ldd")?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux... (0x...)"
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let lib_target = rootfs.join(path.trim_start_matches('/'));
        if lib_target.exists() {
            continue;
        }
        if let Some(parent) = lib_target.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(path, &lib_target).with_context(|| format!("copying {path}"))?;
    }
    Ok(())
}

/// What the agent received and did.
#[derive(Debug, Default, Clone)]
pub struct AgentLog {
    /// The JSON message sent with the listener fd.
    pub state: Option<Value>,
    /// How many fds came with it.
    pub fds: usize,
    /// Syscall numbers of the notifications answered.
    pub notified: Vec<i32>,
}

/// A seccomp agent on a unix socket: accepts one connection, takes the fd and state, then
/// answers every notification with `-errno` until the container's filter has no users.
pub struct NotifyAgent {
    pub path: PathBuf,
    log: Arc<Mutex<AgentLog>>,
    thread: Option<JoinHandle<Result<()>>>,
}

// struct seccomp_notif / seccomp_notif_resp and their ioctls (linux/seccomp.h):
// _IOWR('!', 0, struct seccomp_notif) and _IOWR('!', 1, struct seccomp_notif_resp).
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

impl NotifyAgent {
    pub fn start(path: PathBuf, errno: i32) -> Result<NotifyAgent> {
        let listener = UnixListener::bind(&path).with_context(|| format!("binding {path:?}"))?;
        let log = Arc::new(Mutex::new(AgentLog::default()));
        let log2 = Arc::clone(&log);
        let thread = std::thread::spawn(move || serve(listener, errno, log2));
        Ok(NotifyAgent {
            path,
            log,
            thread: Some(thread),
        })
    }

    /// Waits for the agent to finish (the filter lost its last user) and returns its log.
    pub fn finish(mut self, timeout: Duration) -> Result<AgentLog> {
        let deadline = Instant::now() + timeout;
        while self.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            if Instant::now() > deadline {
                bail!("the agent did not finish: {:?}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(t) = self.thread.take() {
            t.join().map_err(|_| anyhow::anyhow!("agent panicked"))??;
        }
        Ok(self.log())
    }

    pub fn log(&self) -> AgentLog {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn serve(listener: UnixListener, errno: i32, log: Arc<Mutex<AgentLog>>) -> Result<()> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => bail!("no connection from the runtime: {e}"),
        }
    };
    stream.set_nonblocking(false)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(list) = c {
            // SAFETY: SCM_RIGHTS fds are new descriptors owned by us.
            fds.extend(
                list.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let len = msg.bytes;
    let state: Value = serde_json::from_slice(&buf[..len]).context("state JSON")?;
    {
        let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
        l.state = Some(state);
        l.fds = fds.len();
    }
    let Some(notify_fd) = fds.first() else {
        bail!("no fd came with the state");
    };
    loop {
        let mut pfd = libc::pollfd {
            fd: notify_fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polling one valid descriptor.
        let n = unsafe { libc::poll(&mut pfd, 1, 100) };
        if Instant::now() > deadline {
            bail!("agent timed out");
        }
        if n <= 0 {
            continue;
        }
        if pfd.revents & libc::POLLIN == 0 {
            // POLLHUP: no task uses the filter any more.
            return Ok(());
        }
        let mut req = Notif::default();
        // SAFETY: NOTIF_RECV fills a zeroed struct seccomp_notif.
        if unsafe { libc::ioctl(notify_fd.as_raw_fd(), NOTIF_RECV, &mut req as *mut Notif) } < 0 {
            continue;
        }
        log.lock()
            .unwrap_or_else(|e| e.into_inner())
            .notified
            .push(req.nr);
        let mut resp = NotifResp {
            id: req.id,
            val: 0,
            error: -errno,
            flags: 0,
        };
        // SAFETY: NOTIF_SEND reads a struct seccomp_notif_resp.
        unsafe {
            libc::ioctl(
                notify_fd.as_raw_fd(),
                NOTIF_SEND,
                &mut resp as *mut NotifResp,
            )
        };
    }
}
