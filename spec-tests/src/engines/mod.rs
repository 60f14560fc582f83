//! Harness for the engine tests: real dockerd and containerd from Debian's packages, each
//! started by a test with its own roots, sockets and pidfiles in a private temp dir, driving
//! the runtime under test (`BERTH_TEST_RUNTIME`, see [`crate::runtime::runtime_binary`]).
//!
//! A daemon guard stops its daemon by PID on drop, even when the test fails, then kills and
//! reaps whatever it left (shims, container processes), unmounts everything under its temp
//! dir and removes its cgroup tree. [`docker::Dockerd::shutdown`] and
//! [`containerd::Containerd::shutdown`] do the same and return the leaks they had to clean
//! up, so a test fails if the engine or the runtime left anything behind.
//!
//! ```no_run
//! use spec_tests::engines::docker::Dockerd;
//! let d = Dockerd::start()?; // dockerd --add-runtime berth=<runtime under test>
//! let out = d.run(&["sh", "-c", "exit 3"])?; // docker run --runtime berth --network none
//! assert_eq!(out.code, Some(3));
//! d.shutdown()?; // stop, clean up, fail on leaks
//! # anyhow::Ok(())
//! ```

pub mod cleanup;
pub mod containerd;
pub mod docker;

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::runtime::Outcome;

/// How long one engine client command may take.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The test process adopts the shims (they daemonise) and their orphans, so it can reap them:
/// this machine's PID 1 does not reap. See prctl(2), PR_SET_CHILD_SUBREAPER.
pub(crate) fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        nix::sys::prctl::set_child_subreaper(true).expect("prctl(PR_SET_CHILD_SUBREAPER)");
    });
}

/// Runs `cmd` to completion (stdin /dev/null, output captured), killing it after `timeout`.
pub fn run_cmd(mut cmd: Command, timeout: Duration) -> Result<Outcome> {
    let args: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .with_context(|| format!("spawning {}", args.join(" ")))?;
    wait_output(child, args, timeout)
}

/// Waits for a child whose stdout/stderr are pipes, with a deadline.
fn wait_output(mut child: Child, args: Vec<String>, timeout: Duration) -> Result<Outcome> {
    use std::io::Read;
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let out_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(p) = out_pipe.as_mut() {
            let _ = p.read_to_end(&mut s);
        }
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_end(&mut s);
        }
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{}` did not finish within {timeout:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
    Ok(Outcome {
        args,
        code: status.code(),
        signal: status.signal(),
        stdout,
        stderr,
    })
}

/// A client command running with a pseudo-terminal as its stdin, stdout and stderr (and as its
/// controlling terminal), as `docker run -it` and `ctr run -t` insist on.
pub struct PtyClient {
    pub child: Child,
    pub master: OwnedFd,
}

impl PtyClient {
    pub fn spawn(mut cmd: Command) -> Result<Self> {
        let pty = nix::pty::openpty(None, None).context("openpty")?;
        let slave = pty.slave;
        cmd.stdin(slave.try_clone()?)
            .stdout(slave.try_clone()?)
            .stderr(slave.try_clone()?);
        // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().context("spawning a client on a pty")?;
        drop(slave);
        Ok(Self {
            child,
            master: pty.master,
        })
    }

    /// Types `text` into the terminal.
    pub fn write(&self, text: &str) -> Result<()> {
        let mut left = text.as_bytes();
        while !left.is_empty() {
            let n = nix::unistd::write(&self.master, left).context("writing to the pty")?;
            left = &left[n..];
        }
        Ok(())
    }

    /// Reads until `needle` appears (see [`crate::runtime::read_pty_until`]).
    pub fn read_until(&self, needle: &str, timeout: Duration) -> Result<String> {
        crate::runtime::read_pty_until(&self.master, needle, timeout)
    }

    /// Waits for the client to exit and returns its exit code; drains the pty meanwhile so the
    /// client never blocks on a full terminal.
    pub fn wait(mut self, timeout: Duration) -> Result<Option<i32>> {
        let deadline = Instant::now() + timeout;
        // SAFETY: fcntl on a descriptor we own.
        unsafe {
            let fd = self.master.as_raw_fd();
            let fl = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        let mut buf = [0u8; 4096];
        loop {
            while let Ok(n) = nix::unistd::read(&self.master, &mut buf) {
                if n == 0 {
                    break;
                }
            }
            if let Some(s) = self.child.try_wait()? {
                return Ok(s.code());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("client on the pty did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PtyClient {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Makes a busybox root filesystem at `rootfs` (busybox-static, one symlink per applet,
/// /etc/passwd and /etc/group) for images and `ctr run --rootfs`.
pub fn make_busybox_rootfs(rootfs: &Path) -> Result<()> {
    let bin = rootfs.join("bin");
    fs::create_dir_all(&bin)?;
    for d in ["proc", "dev", "sys", "tmp", "etc", "root", "usr/bin"] {
        fs::create_dir_all(rootfs.join(d))?;
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::copy("/bin/busybox", bin.join("busybox")).context("copying /bin/busybox")?;
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .context("busybox --list (install busybox-static)")?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if !applet.is_empty() && applet != "busybox" {
            symlink("busybox", bin.join(applet))?;
        }
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    Ok(())
}

/// Polls `f` every 50 ms until it returns Some, or fails after `timeout` with `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
