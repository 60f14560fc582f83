//! Exec instances: `POST /containers/{id}/exec` records one, `POST /exec/{id}/start` runs
//! it (hijacked, or detached), `POST /exec/{id}/resize` and `GET /exec/{id}/json`.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::streams::{hijack, pump, Chunk, Io, Sink};
use super::{json, json_body, Params};
use crate::api::error::{ApiError, ApiResult};
use crate::api::frames::DetachKeys;
use crate::api::state::{lock, AppState, ExecInstance};
use crate::api::version::ApiVersion;
use crate::ops::containers::{self, ExecChild, ExecStdio};
use crate::ops::models::ExecConfig;
use crate::ops::{Engine, OpsError};

type S = Arc<AppState>;

/// Finished exec instances are forgotten after this long (docker keeps them until the
/// container goes; a long-running service must not keep them forever).
const KEEP_FINISHED: Duration = Duration::from_secs(600);

pub fn routes() -> Router<S> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
}

/// `ExecConfig` plus the fields only the API has.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecCreate {
    #[serde(flatten)]
    config: ExecConfig,
    detach_keys: String,
}

async fn create(State(s): State<S>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let req: ExecCreate = json_body(&body, Some("exec config"))?;
    if req.config.cmd.is_empty() {
        return Err(ApiError::QueryValue {
            name: "Cmd",
            value: String::new(),
            reason: "No exec command specified".into(),
        });
    }
    if !req.detach_keys.is_empty() {
        DetachKeys::parse(&req.detach_keys).map_err(|e| ApiError::QueryValue {
            name: "DetachKeys",
            value: req.detach_keys.clone(),
            reason: e.reason.into(),
        })?;
    }
    let exec_id = random_id()?;
    let (engine, what, config, eid) = (s.engine.clone(), id, req.config.clone(), exec_id.clone());
    let id = super::blocking("exec create", move || {
        crate::ops::containers::exec_create(&engine, &what, &config, &eid)
    })
    .await?;
    let mut execs = lock(&s.execs);
    execs.retain(|_, e| e.running || e.exit_code.is_none() || e.created.elapsed() < KEEP_FINISHED);
    execs.insert(
        exec_id.clone(),
        ExecInstance {
            id: exec_id.clone(),
            container_id: id,
            config: req.config,
            detach_keys: req.detach_keys,
            running: false,
            exit_code: None,
            pid: 0,
            pty: None,
            runtime_pid: 0,
            created: Instant::now(),
        },
    );
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": exec_id }),
    ))
}

fn random_id() -> ApiResult<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|source| {
        ApiError::Ops(OpsError::Random {
            what: "exec id",
            source,
        })
    })?;
    Ok(hex::encode(b))
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct StartRequest {
    detach: bool,
    tty: bool,
    console_size: Option<[u16; 2]>,
}

async fn start(
    State(s): State<S>,
    Path(exec_id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let version = req.extensions().get::<ApiVersion>().copied();
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|source| ApiError::Body { source })?;
    let req = Request::from_parts(parts, axum::body::Body::empty());
    let start: StartRequest = json_body(&bytes, None)?;
    let (container, mut config, keys) = {
        let mut execs = lock(&s.execs);
        let e = execs
            .get_mut(&exec_id)
            .ok_or_else(|| ApiError::NoSuchExec {
                id: exec_id.clone(),
            })?;
        if e.running {
            return Err(ApiError::ExecRunning { id: exec_id });
        }
        if e.exit_code.is_some() {
            return Err(ApiError::ExecDone { id: exec_id });
        }
        e.running = true;
        (
            e.container_id.clone(),
            e.config.clone(),
            e.detach_keys.clone(),
        )
    };
    // docker: no keys (or bad ones) mean its default sequence, ctrl-p ctrl-q.
    let keys = match DetachKeys::parse(&keys) {
        Ok(k) if !k.is_empty() => k,
        _ => DetachKeys::default(),
    };
    // As dockerd: the process gets a pty when the exec was created with one; the stream
    // is raw when the start asks for a tty, multiplexed otherwise (docker-py starts a tty
    // exec with Tty=false and reads frames).
    let tty = start.tty;
    config.tty = config.tty && !start.detach;
    let engine = s.engine.clone();
    let spawned = tokio::task::spawn_blocking(move || spawn(&engine, &container, config, start))
        .await
        .map_err(|_| ApiError::Panicked { what: "exec" })?;
    let spawned = match spawned {
        Ok(sp) => sp,
        Err(e) => {
            if let Some(x) = lock(&s.execs).get_mut(&exec_id) {
                x.running = false;
                x.exit_code = Some(126);
            }
            return Err(e.into());
        }
    };
    {
        let mut execs = lock(&s.execs);
        if let Some(x) = execs.get_mut(&exec_id) {
            x.runtime_pid = spawned.child.child.id() as i32;
            x.pty = spawned.master.clone();
        }
    }
    if start.detach {
        let state = s.clone();
        let mut child = spawned.child;
        tokio::task::spawn_blocking(move || {
            let code = child.wait().unwrap_or(-1);
            finish(&state, &exec_id, code);
        });
        // dockerd writes nothing for a detached start.
        return Ok(StatusCode::OK.into_response());
    }
    let multiplexed = !tty && version.is_some_and(|v| v.at_least(1, 42));
    let state = s.clone();
    Ok(hijack(req, multiplexed, move |io| async move {
        let _busy = state.activity.begin();
        session(io, state, exec_id, spawned, tty, keys).await;
    }))
}

/// A started exec: the runtime's process and our ends of its stdio.
struct Spawned {
    child: ExecChild,
    master: Option<Arc<OwnedFd>>,
}

fn spawn(
    engine: &Engine,
    container: &str,
    config: ExecConfig,
    start: StartRequest,
) -> crate::ops::Result<Spawned> {
    if start.detach {
        // Docker discards a detached exec's output.
        let null = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| OpsError::io("opening /dev/null", e))?;
        let mut config = config;
        config.tty = false;
        config.attach_stdin = false;
        let child = containers::exec(engine, container, &config, ExecStdio::Terminal(null.into()))?;
        return Ok(Spawned {
            child,
            master: None,
        });
    }
    if config.tty {
        let pty = nix::pty::openpty(None, None)
            .map_err(|e| OpsError::io("allocating a pty for the exec", e.into()))?;
        if let Some([h, w]) = start.console_size {
            set_size(&pty.master, h, w);
        }
        let child = containers::exec(engine, container, &config, ExecStdio::Terminal(pty.slave))?;
        return Ok(Spawned {
            child,
            master: Some(Arc::new(pty.master)),
        });
    }
    let child = containers::exec(engine, container, &config, ExecStdio::Piped)?;
    Ok(Spawned {
        child,
        master: None,
    })
}

fn set_size(master: &OwnedFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize through a valid pointer; the fd is borrowed.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

fn finish(state: &AppState, exec_id: &str, code: i32) {
    if let Some(x) = lock(&state.execs).get_mut(exec_id) {
        x.running = false;
        x.exit_code = Some(i64::from(code));
        x.pty = None;
        x.runtime_pid = 0;
        x.created = Instant::now();
    }
}

async fn session(
    io: Box<dyn Io>,
    state: Arc<AppState>,
    exec_id: String,
    sp: Spawned,
    tty: bool,
    keys: DetachKeys,
) {
    let Spawned { mut child, master } = sp;
    let (tx, rx) = mpsc::channel(16);
    let mut readers: Vec<(bool, Box<dyn Read + Send>)> = Vec::new();
    let sink = match &master {
        Some(m) => {
            let dup = m.try_clone().ok().map(File::from);
            if let Some(r) = dup.as_ref().and_then(|f| f.try_clone().ok()) {
                readers.push((false, Box::new(r)));
            }
            dup.map(|f| Sink::File(Arc::new(f)))
        }
        None => {
            if let Some(o) = child.child.stdout.take() {
                readers.push((false, Box::new(o)));
            }
            if let Some(e) = child.child.stderr.take() {
                readers.push((true, Box::new(e)));
            }
            child
                .child
                .stdin
                .take()
                .map(|i| Sink::File(Arc::new(File::from(OwnedFd::from(i)))))
        }
    };
    drop(master);
    let st = state.clone();
    let id = exec_id.clone();
    // Output until every stream ends, then the exit status is recorded before the stream
    // closes (the client asks for it right after).
    let output = tokio::task::spawn_blocking(move || {
        let threads: Vec<_> = readers
            .into_iter()
            .map(|(err, mut r)| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match r.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let d = buf[..n].to_vec();
                                let c = if err {
                                    Chunk::Stderr(d)
                                } else {
                                    Chunk::Stdout(d)
                                };
                                if tx.blocking_send(c).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
        let code = child.wait().unwrap_or(-1);
        finish(&st, &id, code);
        drop(tx);
    });
    let cancel = state.shutdown.child_token();
    pump(io, tty, rx, sink, keys, cancel).await;
    // Detached or gone: the process runs on; its status is recorded when it ends.
    let _ = output.await;
}

async fn resize(State(s): State<S>, Path(id): Path<String>, q: Params) -> ApiResult<Response> {
    let rows: u16 = q.int("h")?.unwrap_or(0);
    let cols: u16 = q.int("w")?.unwrap_or(0);
    let (pty, pid) = {
        let execs = lock(&s.execs);
        let e = execs
            .get(&id)
            .ok_or_else(|| ApiError::NoSuchExec { id: id.clone() })?;
        (e.pty.clone(), e.runtime_pid)
    };
    if let Some(m) = pty {
        set_size(&m, rows, cols);
        if pid > 0 {
            // The runtime copies the size to the container's pty on SIGWINCH.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGWINCH,
            );
        }
    }
    Ok(json(StatusCode::OK, &serde_json::json!({})))
}

async fn inspect(State(s): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    let execs = lock(&s.execs);
    let e = execs
        .get(&id)
        .ok_or_else(|| ApiError::NoSuchExec { id: id.clone() })?;
    let c = &e.config;
    let (entrypoint, args) = c
        .cmd
        .split_first()
        .map_or((String::new(), Vec::new()), |(a, b)| {
            (a.clone(), b.to_vec())
        });
    let v = serde_json::json!({
        "ID": e.id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "ProcessConfig": {
            "tty": c.tty,
            "entrypoint": entrypoint,
            "arguments": args,
            "privileged": c.privileged,
            "user": c.user,
        },
        "OpenStdin": c.attach_stdin,
        "OpenStderr": c.attach_stderr,
        "OpenStdout": c.attach_stdout,
        "CanRemove": false,
        "ContainerID": e.container_id,
        "DetachKeys": e.detach_keys,
        "Pid": e.pid,
    });
    Ok(json(StatusCode::OK, &v))
}
