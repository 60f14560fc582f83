//! `exec` and `top`: processes in a running container through the runtime's `exec` and
//! `ps` verbs (runc's, and berth-runtime's).

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};

use crate::container::Status;
use crate::ops::error::{OpsError, Result};
use crate::ops::models::{ContainerTopResponse, ExecConfig};
use crate::ops::Engine;
use crate::specgen;

/// Where an exec's stdio goes.
#[derive(Debug)]
pub enum ExecStdio {
    /// This process's own stdio (a terminal's `-t` is proxied by the runtime); stdin only
    /// with `AttachStdin`.
    Inherit,
    /// Pipes the caller reads and writes through the returned child.
    Piped,
    /// A terminal the caller owns (the API's `Tty` exec): this pty slave becomes the
    /// runtime's stdio; the runtime relays it to the container's own pty, takes its size
    /// from it and again on SIGWINCH (the caller resizes the master, then signals the
    /// child).
    Terminal(std::os::fd::OwnedFd),
}

/// The exit status docker gives an exec whose command could not be started (not found, not
/// executable): the runtime's own failure status is not the command's.
pub const EXEC_START_FAILED: i32 = 126;

/// A started exec: the runtime's `exec` process, and the pid file it writes once the
/// command runs (removed with this value).
#[derive(Debug)]
pub struct ExecChild {
    pub child: Child,
    pid_file: PathBuf,
}

impl ExecChild {
    /// The exec's exit code from the runtime's exit status: the command's, or 126 when the
    /// runtime failed before the command started (no pid file; the runtime printed why), or
    /// 128 + the signal that ended the runtime.
    pub fn exit_code(&self, status: ExitStatus) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        match status.code() {
            Some(255) if !self.started() => EXEC_START_FAILED,
            Some(c) => c,
            None => 128 + status.signal().unwrap_or(libc::SIGKILL),
        }
    }

    fn started(&self) -> bool {
        std::fs::metadata(&self.pid_file).is_ok_and(|m| m.len() > 0)
    }

    /// Waits for the runtime's `exec` and returns [`ExecChild::exit_code`].
    pub fn wait(&mut self) -> Result<i32> {
        let status = self
            .child
            .wait()
            .map_err(|e| OpsError::io("waiting for the exec", e))?;
        Ok(self.exit_code(status))
    }
}

impl Drop for ExecChild {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// Starts `config.cmd` in the container; the caller waits for the child, whose exit status
/// is the command's (the runtime prints why when the command cannot run).
pub fn exec(
    engine: &Engine,
    what: &str,
    config: &ExecConfig,
    stdio: ExecStdio,
) -> Result<ExecChild> {
    let (store, r) = super::find(engine, what)?;
    match r.state.status {
        Status::Running => {}
        Status::Paused => return Err(OpsError::ExecPaused { id: r.id }),
        _ => return Err(OpsError::NotRunning { id: r.id }),
    }
    let runtime = super::runtime(engine, &store, &r);
    let mut cmd: Command = runtime.command("exec");
    if config.tty {
        cmd.arg("--tty");
    }
    if config.detach {
        cmd.arg("--detach");
    }
    if !config.working_dir.is_empty() {
        cmd.arg("--cwd").arg(&config.working_dir);
    }
    for kv in &config.env {
        cmd.arg("--env").arg(kv);
    }
    if !config.user.is_empty() {
        // Resolved in the container's root filesystem, mounted while it runs.
        let rootfs = store.dir(&r.id).join("bundle").join("rootfs");
        let u = specgen::resolve_user(&rootfs, &config.user)?;
        cmd.arg("--user").arg(format!("{}:{}", u.uid, u.gid));
        for g in u.additional_gids {
            cmd.arg("--additional-gids").arg(g.to_string());
        }
    }
    if config.privileged {
        for cap in specgen::known_capabilities() {
            cmd.arg("--cap").arg(format!("CAP_{cap}"));
        }
    }
    let exec_id = crate::container::names::random_id().map_err(|source| OpsError::Random {
        what: "exec id",
        source,
    })?;
    let pid_file = store
        .dir(&r.id)
        .join(format!("exec-{}.pid", &exec_id[..16]));
    cmd.arg("--pid-file").arg(&pid_file);
    cmd.arg(&r.id).args(&config.cmd);
    match stdio {
        ExecStdio::Inherit => {
            if !config.attach_stdin {
                cmd.stdin(Stdio::null());
            }
        }
        ExecStdio::Piped => {
            cmd.stdin(if config.attach_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        }
        ExecStdio::Terminal(slave) => {
            let dup = |fd: &std::os::fd::OwnedFd| {
                fd.try_clone()
                    .map_err(|e| OpsError::io("duplicating the exec's terminal", e))
            };
            cmd.stdin(Stdio::from(dup(&slave)?))
                .stdout(Stdio::from(dup(&slave)?))
                .stderr(Stdio::from(slave));
        }
    }
    let child = cmd.spawn().map_err(|source| OpsError::RuntimeExec {
        path: runtime.path.clone(),
        source,
    })?;
    let action = format!("exec_start: {}", config.cmd.join(" "));
    crate::events::container(engine.root(), &r, &action, &[]);
    Ok(ExecChild { child, pid_file })
}

/// `POST /containers/{id}/exec`: checks the container can take an exec (it runs, not
/// paused) and records the exec's creation (`exec_id` may be empty: the CLI's execs have
/// none); returns the container's full id.
pub fn exec_create(
    engine: &Engine,
    what: &str,
    config: &ExecConfig,
    exec_id: &str,
) -> Result<String> {
    let (_, r) = super::find(engine, what)?;
    match r.state.status {
        Status::Running => {}
        Status::Paused => return Err(OpsError::ExecPaused { id: r.id }),
        _ => return Err(OpsError::NotRunning { id: r.id }),
    }
    let action = format!("exec_create: {}", config.cmd.join(" "));
    let extra: &[(&str, String)] = if exec_id.is_empty() {
        &[]
    } else {
        &[("execID", exec_id.to_string())]
    };
    crate::events::container(engine.root(), &r, &action, extra);
    Ok(r.id)
}

/// `GET /containers/{id}/top`: the container's processes as the host's `ps` shows them
/// (`ps_args`, default `-ef`), through the runtime's `ps`.
pub fn top(engine: &Engine, what: &str, ps_args: &[String]) -> Result<ContainerTopResponse> {
    let (store, r) = super::find(engine, what)?;
    if !matches!(r.state.status, Status::Running | Status::Paused) {
        return Err(OpsError::NotRunning { id: r.id });
    }
    let runtime = super::runtime(engine, &store, &r);
    let mut cmd = runtime.command("ps");
    cmd.arg(&r.id).args(ps_args).stdin(Stdio::null());
    let out = cmd.output().map_err(|source| OpsError::RuntimeExec {
        path: runtime.path.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(OpsError::RuntimePs {
            code: out.status.code().unwrap_or(1),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(ContainerTopResponse::parse(out.stdout))
}
