//! A `berth system service` on a private socket over a berth root with the busybox test
//! image, and the clients that drive it: docker's CLIs (Debian's 20.10 and a newer one when
//! installed), raw HTTP over the socket, docker-compose and the Python SDK. The service is
//! stopped by PID on drop (SIGTERM, then SIGKILL after a bound); the root's containers are
//! force-removed by [`Env`]'s drop.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::berth::berth_bin;
use super::containers::Env;
use crate::engines::run_cmd;
use crate::runtime::Outcome;

/// Debian's docker client (API 1.41).
pub const DOCKER_20: &str = "/usr/bin/docker";
/// A newer client, when the machine has one (docker 28 asks for API 1.50).
pub const DOCKER_NEW: &str = "/usr/local/bin/docker";
/// The venv hack/setup makes with the `docker` SDK from PyPI.
pub const PYTHON_SDK: &str = "/opt/berth-pytest/bin/python";

/// The docker CLIs on this machine: Debian's always, the newer one when present.
pub fn docker_clients() -> Vec<&'static str> {
    let mut v = vec![DOCKER_20];
    if Path::new(DOCKER_NEW).exists() {
        v.push(DOCKER_NEW);
    }
    v
}

pub struct Service {
    pub env: Env,
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub socket: PathBuf,
}

impl Service {
    /// A service that runs until stopped (`--time 0`).
    pub fn start() -> Result<Self> {
        Self::start_with(&["--time", "0"])
    }

    pub fn start_with(extra: &[&str]) -> Result<Self> {
        let env = Env::new()?;
        // The clients name the image as docker users do.
        env.ok(&["tag", super::network::BUSYBOX, "busybox:latest"])?;
        // Short: sun_path holds 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("bapi-")
            .tempdir_in("/tmp")?;
        if super::berth::rootless_mode() {
            // The rootless pass's berth binds its socket here as its own user.
            std::fs::set_permissions(
                dir.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o1777),
            )?;
        }
        let socket = dir.path().join("api.sock");
        std::fs::create_dir_all(dir.path().join("docker"))?;
        let log = std::fs::File::create(dir.path().join("service.log"))?;
        let mut cmd = env.berth.cmd(&["system", "service", "--debug"])?;
        cmd.args(extra)
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd.spawn().context("starting berth system service")?;
        let mut s = Self {
            env,
            child: Some(child),
            dir,
            socket,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&s.socket).is_err() {
            if Instant::now() > deadline {
                bail!("the service did not listen: {}", s.log());
            }
            if let Some(Ok(Some(st))) = s.child.as_mut().map(|c| c.try_wait()) {
                bail!("the service exited ({st}): {}", s.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(s)
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A client command with DOCKER_HOST pointing here and a private docker config.
    pub fn client(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1");
        c
    }

    /// Runs `docker ARGS` with one of the CLIs (60 s bound).
    pub fn docker(&self, cli: &str, args: &[&str]) -> Result<Outcome> {
        let mut c = self.client(cli);
        c.args(args);
        run_cmd(c, Duration::from_secs(60))
    }

    /// `docker ARGS` that must succeed; its stdout.
    pub fn docker_ok(&self, cli: &str, args: &[&str]) -> Result<String> {
        Ok(self.docker(cli, args)?.ok()?.stdout)
    }

    /// Runs with `input` on stdin.
    pub fn docker_stdin(&self, cli: &str, args: &[&str], input: &[u8]) -> Result<Outcome> {
        let mut c = self.client(cli);
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn()?;
        if let Some(mut i) = child.stdin.take() {
            i.write_all(input)?;
        }
        let out = wait_bounded(child, Duration::from_secs(60))?;
        Ok(Outcome {
            args: args.iter().map(|s| s.to_string()).collect(),
            code: out.status.code(),
            signal: None,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// One HTTP request over the socket (`Connection: close`): status and body.
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String)> {
        http(&self.socket, method, path, body)
    }

    /// SIGTERM, and the service's exit status within `limit`.
    pub fn terminate(&mut self, limit: Duration) -> Result<std::process::ExitStatus> {
        let child = self.child.as_mut().context("service already stopped")?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )?;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = child.try_wait()? {
                self.child = None;
                return Ok(st);
            }
            if Instant::now() > deadline {
                bail!("the service did not exit within {limit:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the service to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> Result<std::process::ExitStatus> {
        let child = self.child.as_mut().context("service already stopped")?;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = child.try_wait()? {
                self.child = None;
                return Ok(st);
            }
            if Instant::now() > deadline {
                bail!("the service did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.terminate(Duration::from_secs(15));
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_bounded(mut child: Child, limit: Duration) -> Result<std::process::Output> {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(child.wait_with_output()?);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "client did not exit within {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP/1.1 request over a unix socket, read to the end (`Connection: close`).
pub fn http(socket: &Path, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String)> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").context("no end of headers")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Resident memory of a process in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The berth binary (for tests that run the CLI beside the service).
pub fn berth() -> Result<PathBuf> {
    berth_bin()
}
