//! User-mode networking for rootless containers: slirp4netns (package slirp4netns) gives the
//! container's network namespace a tap device whose traffic it carries through ordinary
//! sockets of the user's, and forwards published ports from the host to the container.
//!
//! slirp4netns joins the namespaces of the container's init by pid (its user namespace
//! first). It lives as long as the monitor holds the write end of its `--exit-fd` pipe, and
//! says it is ready on `--ready-fd`; published ports are added through its `--api-socket`
//! (`add_hostfwd`). The container sees 10.0.2.100/24, gateway 10.0.2.2 and DNS at 10.0.2.3.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ports::{PortMapping, Protocol};

/// The address slirp4netns's `--configure` gives the container.
pub const GUEST_ADDR: &str = "10.0.2.100";
/// The DNS forwarder slirp4netns answers at.
pub const DNS_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
const PROGRAM: &str = "slirp4netns";

#[derive(Debug, thiserror::Error)]
pub enum SlirpError {
    #[error("starting {PROGRAM} (install the slirp4netns package)")]
    Spawn(#[source] std::io::Error),
    #[error("{PROGRAM} for pid {pid} did not get ready: {log}")]
    NotReady { pid: i32, log: String },
    #[error("-p {mapping}: {PROGRAM} refused the port forward: {message}")]
    Forward { mapping: String, message: String },
    #[error("Bind for {addr} failed: port is already allocated")]
    PortAllocated { addr: String },
    #[error("-p {mapping}: no free host port")]
    NoFreePort {
        mapping: String,
        #[source]
        source: std::io::Error,
    },
    #[error("creating a pipe for {PROGRAM}")]
    Pipe(#[source] nix::Error),
}

/// Whether slirp4netns is installed.
pub fn available() -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/bin", "/bin"].map(PathBuf::from))
        .any(|d| d.join(PROGRAM).is_file())
}

/// A running slirp4netns, stopped (and reaped) on drop.
pub struct Slirp {
    child: Child,
    api: PathBuf,
    _exit_w: OwnedFd,
}

impl Slirp {
    /// Starts slirp4netns for the network namespace of `pid`, with its API socket at `api`
    /// and its messages in `log`, and waits (at most 10 s) until it is ready.
    pub fn start(pid: i32, api: &Path, log: &Path) -> Result<Slirp, SlirpError> {
        let (exit_r, exit_w) = nix::unistd::pipe().map_err(SlirpError::Pipe)?;
        let (ready_r, ready_w) = nix::unistd::pipe().map_err(SlirpError::Pipe)?;
        let _ = std::fs::remove_file(api);
        let log_file = std::fs::File::create(log).map_err(SlirpError::Spawn)?;
        let (er, rw) = (exit_r.as_raw_fd(), ready_w.as_raw_fd());
        let mut cmd = Command::new(PROGRAM);
        cmd.args(["--configure", "--mtu=65520", "--disable-host-loopback"])
            .arg(format!("--exit-fd={er}"))
            .arg(format!("--ready-fd={rw}"))
            .arg("--api-socket")
            .arg(api)
            .arg(pid.to_string())
            .arg("tap0")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(SlirpError::Spawn)?)
            .stderr(log_file);
        // SAFETY: runs in the forked child before exec and only calls fcntl, which is
        // async-signal-safe, on two descriptors the child inherited.
        unsafe {
            cmd.pre_exec(move || {
                for fd in [er, rw] {
                    if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(SlirpError::Spawn)?;
        drop((exit_r, ready_w));
        let slirp = Slirp {
            child,
            api: api.to_path_buf(),
            _exit_w: exit_w,
        };
        let mut ready = std::fs::File::from(ready_r);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut byte = [0u8; 1];
        let fd = ready.as_raw_fd();
        let not_ready = || SlirpError::NotReady {
            pid,
            log: std::fs::read_to_string(log)
                .unwrap_or_default()
                .trim()
                .to_string(),
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(not_ready());
            }
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll on one valid pollfd, for the remaining time.
            let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(1000) as i32) };
            if n > 0 {
                break;
            }
        }
        match ready.read(&mut byte) {
            Ok(1) => {}
            _ => return Err(not_ready()),
        }
        // The API socket is bound before the ready byte; wait for it briefly anyway.
        while !slirp.api.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(slirp)
    }

    /// Forwards a published port from the host to the container.
    pub fn forward(&self, m: &PortMapping) -> Result<(), SlirpError> {
        forward(&self.api, m, GUEST_ADDR, m.container_port)
    }
}

/// Asks the slirp4netns of API socket `api` to forward `m`'s host port to
/// `guest_addr:guest_port` in its namespace.
pub fn forward(
    api: &Path,
    m: &PortMapping,
    guest_addr: &str,
    guest_port: u16,
) -> Result<(), SlirpError> {
    let host_addr = m.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let request = serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": proto(m),
            "host_addr": host_addr.to_string(),
            "host_port": m.host_port,
            "guest_addr": guest_addr,
            "guest_port": guest_port,
        }
    });
    let err = |message: String| SlirpError::Forward {
        mapping: m.to_string(),
        message,
    };
    let v = call(api, &request).map_err(|e| err(e.to_string()))?;
    if let Some(e) = v.get("error") {
        // A host port taken meanwhile: docker's words.
        if let Some(addr) = taken_port(std::slice::from_ref(m)) {
            return Err(SlirpError::PortAllocated { addr });
        }
        let desc = e
            .get("desc")
            .and_then(|d| d.as_str())
            .map_or_else(|| e.to_string(), str::to_string);
        return Err(err(desc));
    }
    Ok(())
}

/// Removes the forwards of `m`'s host ports from the slirp4netns of API socket `api`
/// (those it lists with the same protocol and host port); errors are ignored: a slirp4netns
/// that is gone forwards nothing.
pub fn unforward(api: &Path, ports: &[PortMapping]) {
    let Ok(v) = call(api, &serde_json::json!({"execute": "list_hostfwd"})) else {
        return;
    };
    let entries = v["return"]["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for e in entries {
        let hit = ports.iter().any(|m| {
            e["host_port"].as_u64() == Some(u64::from(m.host_port))
                && e["proto"].as_str() == Some(proto(m))
        });
        if let (true, Some(id)) = (hit, e["id"].as_i64()) {
            let _ = call(
                api,
                &serde_json::json!({"execute": "remove_hostfwd", "arguments": {"id": id}}),
            );
        }
    }
}

fn proto(m: &PortMapping) -> &'static str {
    match m.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// One request to a slirp4netns API socket; its JSON answer (bounded by a 5 s timeout).
fn call(api: &Path, request: &serde_json::Value) -> std::io::Result<serde_json::Value> {
    let mut s = UnixStream::connect(api)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(request.to_string().as_bytes())?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(serde_json::from_str(&reply).unwrap_or_default())
}

impl Drop for Slirp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.api);
    }
}

/// A host port for a mapping without one (`-p 80`, `-P`): one that is free now.
pub fn free_port(m: &PortMapping) -> Result<u16, SlirpError> {
    let ip = m.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let port = match m.protocol {
        Protocol::Tcp => TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()),
        Protocol::Udp => UdpSocket::bind((ip, 0)).and_then(|s| s.local_addr()),
    };
    port.map(|a| a.port())
        .map_err(|source| SlirpError::NoFreePort {
            mapping: m.to_string(),
            source,
        })
}

/// The first published host address of `publish` that cannot be bound now (another process,
/// another container's slirp4netns, listens there), as `ip:port`.
pub fn taken_port(publish: &[PortMapping]) -> Option<String> {
    publish.iter().filter(|m| m.host_port != 0).find_map(|m| {
        let ip = m.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let addr = std::net::SocketAddr::new(ip, m.host_port);
        let taken = match m.protocol {
            Protocol::Tcp => TcpListener::bind(addr).is_err(),
            Protocol::Udp => UdpSocket::bind(addr).is_err(),
        };
        taken.then(|| addr.to_string())
    })
}
