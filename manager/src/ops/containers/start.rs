//! Starting containers: in the background, with a client attached (`start -a`), and
//! `run` (create, then start at once without mounting the root filesystem twice).

use std::time::Duration;

use crate::container::attach::{self, Frame, Hello};
use crate::container::lifecycle::{self, monitor_alive, Paths};
use crate::container::monitor::{Report, SOCKET};
use crate::container::{ContainerError, ContainerStore, Record, Status};
use crate::ops::error::{chain, OpsError, Result};
use crate::ops::models::ContainerCreateRequest;
use crate::ops::Engine;

use super::attach::{AttachOptions, Attached};
use super::create::{create_mounted, CreateOptions};

/// `POST /containers/{id}/start`: starts a created or stopped container in the background.
/// A running container is left as it is.
pub fn start(engine: &Engine, what: &str) -> Result<()> {
    let (store, r) = super::find(engine, what)?;
    start_record(engine, &store, &r)
}

pub(crate) fn start_record(engine: &Engine, store: &ContainerStore, r: &Record) -> Result<()> {
    let root = engine.root();
    match r.state.status {
        Status::Running | Status::Restarting => return Ok(()),
        Status::Paused => return Err(OpsError::StartPaused { id: r.id.clone() }),
        _ => {}
    }
    let paths = Paths::new(root, store, r);
    if monitor_alive(r) {
        // A created container whose monitor waits for the go.
        let conn =
            attach::connect(&paths.dir, SOCKET).map_err(|source| OpsError::MonitorConnect {
                id: r.id.clone(),
                source,
            })?;
        return wait_started(conn);
    }
    let r = lifecycle::prepare(root, store, r)?;
    store.update(&r.id, |r| r.state.manually_stopped = false)?;
    let report = spawned(
        engine,
        store,
        &r,
        lifecycle::spawn_monitor(root, &paths, &r.id, true, &engine.berth_binary()?),
    )?;
    if !report.ok {
        return Err(OpsError::StartFailed {
            code: report.code,
            message: report.message,
        });
    }
    Ok(())
}

/// A monitor that could not even start leaves the host setup to undo here.
fn spawned(
    engine: &Engine,
    store: &ContainerStore,
    r: &Record,
    result: Result<Report, ContainerError>,
) -> Result<Report> {
    match result {
        Ok(report) => Ok(report),
        Err(e) => {
            let paths = Paths::new(engine.root(), store, r);
            let also = match lifecycle::teardown(store, r, &paths) {
                Ok(()) => Vec::new(),
                Err(cleanup) => vec![format!(
                    "Error: undoing the setup of {}: {}",
                    r.id,
                    chain(&cleanup)
                )],
            };
            Err(OpsError::from(e).with_also(also))
        }
    }
}

fn wait_started(mut conn: std::os::unix::net::UnixStream) -> Result<()> {
    Frame::Hello(Hello {
        start: true,
        ..Hello::default()
    })
    .write_to(&mut conn)
    .map_err(OpsError::MonitorTalk)?;
    loop {
        match Frame::read_from(&mut conn).map_err(OpsError::MonitorRead)? {
            Some(Frame::Started) => return Ok(()),
            Some(Frame::Failed { code, message }) => {
                return Err(OpsError::StartFailed { code, message })
            }
            Some(Frame::Exit(_)) | None => return Err(OpsError::ExitedBeforeStart),
            Some(_) => {}
        }
    }
}

/// Starts a stopped container with a client attached from its first output on (`start
/// -a`); `stdin` attaches the container's stdin when it was created with one.
pub fn start_attached(engine: &Engine, what: &str, stdin: bool) -> Result<Attached> {
    let root = engine.root();
    let (store, r) = super::find(engine, what)?;
    if matches!(
        r.state.status,
        Status::Running | Status::Restarting | Status::Paused
    ) {
        return Err(OpsError::AlreadyRunning { id: r.id });
    }
    let paths = Paths::new(root, &store, &r);
    let mut monitor_pid = 0;
    if !monitor_alive(&r) {
        let r = lifecycle::prepare(root, &store, &r)?;
        store.update(&r.id, |r| r.state.manually_stopped = false)?;
        let report = spawned(
            engine,
            &store,
            &r,
            lifecycle::spawn_monitor(root, &paths, &r.id, false, &engine.berth_binary()?),
        )?;
        if !report.ok {
            lifecycle::reap_monitor(report.monitor_pid);
            return Err(OpsError::StartFailed {
                code: report.code,
                message: report.message,
            });
        }
        monitor_pid = report.monitor_pid;
    }
    let opts = AttachOptions {
        stdin,
        ..AttachOptions::default()
    };
    crate::events::container(root, &r, "attach", &[]);
    match Attached::connect(&paths, &r, opts, true, monitor_pid) {
        Ok(a) => Ok(a),
        Err(e) => {
            lifecycle::reap_monitor(monitor_pid);
            Err(e)
        }
    }
}

/// How `run` leaves the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Started in the background.
    Detached,
    /// Started once this client is attached, so no output is missed.
    Attached { stdin: bool },
}

/// A container `run` started.
pub enum Running {
    Detached {
        id: String,
        warnings: Vec<String>,
    },
    Attached {
        attached: Attached,
        warnings: Vec<String>,
    },
}

/// Create and start in one go (`docker run`): the root filesystem mounted by the create is
/// used by the start. When the start fails, the container is removed again if it was
/// created with `AutoRemove`; when the host setup fails it is removed in any case.
pub fn run(
    engine: &Engine,
    req: &ContainerCreateRequest,
    opts: &CreateOptions,
    mode: RunMode,
) -> Result<Running> {
    let root = engine.root();
    let (store, record, warnings) = create_mounted(engine, req, opts)?;
    let paths = Paths::new(root, &store, &record);
    let record = match lifecycle::prepare(root, &store, &record) {
        Ok(r) => r,
        Err(e) => {
            let also = remove_failed(engine, &store, &record);
            return Err(OpsError::from(e).with_also(also));
        }
    };
    let detach = mode == RunMode::Detached;
    let exe = match engine.berth_binary() {
        Ok(exe) => exe,
        Err(e) => {
            let also = remove_failed(engine, &store, &record);
            return Err(e.with_also(also));
        }
    };
    let report = match lifecycle::spawn_monitor(root, &paths, &record.id, detach, &exe) {
        Ok(r) => r,
        Err(e) => {
            let also = remove_failed(engine, &store, &record);
            return Err(OpsError::from(e).with_also(also));
        }
    };
    if !report.ok {
        lifecycle::reap_monitor(report.monitor_pid);
        let also = if record.config.auto_remove {
            remove_failed(engine, &store, &record)
        } else {
            Vec::new()
        };
        return Err(OpsError::StartFailed {
            code: report.code,
            message: report.message,
        }
        .with_also(also));
    }
    let stdin = match mode {
        RunMode::Detached => {
            return Ok(Running::Detached {
                id: record.id,
                warnings,
            })
        }
        RunMode::Attached { stdin } => stdin,
    };
    let opts = AttachOptions {
        stdin,
        ..AttachOptions::default()
    };
    match Attached::connect(&paths, &record, opts, true, report.monitor_pid) {
        Ok(attached) => Ok(Running::Attached { attached, warnings }),
        Err(e) => {
            lifecycle::reap_monitor(report.monitor_pid);
            Err(e)
        }
    }
}

/// Removes a container whose start failed; what went wrong doing so is returned as lines
/// for the user.
fn remove_failed(engine: &Engine, store: &ContainerStore, record: &Record) -> Vec<String> {
    let Ok(r) = store.load(&record.id) else {
        return Vec::new();
    };
    if lifecycle::monitor_alive(&r) {
        let _ = lifecycle::wait_exit(store, &r.id, Some(Duration::from_secs(10)));
    }
    if store.load(&record.id).is_err() {
        return Vec::new();
    }
    match lifecycle::remove_files(engine.root(), store, &r, true) {
        Ok(()) => Vec::new(),
        Err(e) => {
            let mut lines = e.also();
            lines.push(format!("Error: removing container {}: {}", r.id, chain(&e)));
            lines
        }
    }
}
