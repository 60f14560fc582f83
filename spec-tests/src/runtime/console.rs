//! The receiving end of runc's `--console-socket` protocol: the runtime connects to a unix
//! socket and sends the pty master as SCM_RIGHTS ancillary data (unix(7)).

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// A listening unix socket to pass as `--console-socket`.
pub struct ConsoleSocket {
    listener: UnixListener,
    pub path: PathBuf,
}

impl ConsoleSocket {
    /// Listens on `<dir>/console.sock` (keep `dir` short: sun_path holds 108 bytes).
    pub fn new(dir: &Path) -> Result<Self> {
        let path = dir.join("console.sock");
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("binding console socket {}", path.display()))?;
        listener.set_nonblocking(true)?;
        Ok(Self { listener, path })
    }

    /// Accepts the runtime's connection and receives the pty master fd.
    pub fn receive(&self, timeout: Duration) -> Result<OwnedFd> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        bail!("no connection on the console socket within {timeout:?}");
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e).context("accepting on the console socket"),
            }
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(timeout))?;
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([RawFd; 4]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .context("recvmsg on the console socket")?;
        for c in msg.cmsgs().context("reading control messages")? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                let mut fds = fds.into_iter();
                if let Some(first) = fds.next() {
                    for extra in fds {
                        // SAFETY: received fds are ours to close.
                        drop(unsafe { OwnedFd::from_raw_fd(extra) });
                    }
                    // SAFETY: a fresh fd received with SCM_RIGHTS, owned by nobody else.
                    return Ok(unsafe { OwnedFd::from_raw_fd(first) });
                }
            }
        }
        bail!("the console socket message carried no file descriptor")
    }
}

/// Reads from a pty master until the output contains `needle`; returns what was read.
pub fn read_pty_until(master: &OwnedFd, needle: &str, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "{needle:?} not seen on the pty within {timeout:?}; read: {:?}",
                String::from_utf8_lossy(&out)
            );
        }
        if !poll_readable(master, left)? {
            continue;
        }
        match nix::unistd::read(master, &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => bail!(
                "pty closed before {needle:?}; read: {:?}",
                String::from_utf8_lossy(&out)
            ),
            Ok(k) => out.extend_from_slice(&buf[..k]),
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(e).context("reading the pty master"),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Waits up to `left` (at most a second) for `fd` to be readable or hung up.
fn poll_readable(fd: &OwnedFd, left: Duration) -> Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(1000) as i32) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e).context("poll on the pty master");
    }
    Ok(n > 0)
}

/// Reads everything from a pty master until the slave side is closed by every process (read
/// then fails with EIO) or `timeout` passes.
pub fn read_pty_until_eof(master: &OwnedFd, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "pty still open after {timeout:?}; read so far: {:?}",
                String::from_utf8_lossy(&out)
            );
        }
        if !poll_readable(master, left)? {
            continue;
        }
        match nix::unistd::read(master, &mut buf) {
            Ok(0) => break,
            Ok(k) => out.extend_from_slice(&buf[..k]),
            Err(nix::errno::Errno::EIO) => break,
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(e).context("reading the pty master"),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
