//! Stopping, killing, waiting for, removing, pausing and renaming containers.

use std::time::{Duration, Instant};

use crate::container::lifecycle::{self, monitor_alive, wait_exit_until};
use crate::container::store::valid_name;
use crate::container::{ContainerError, ContainerStore, Record, Status};
use crate::ops::cancel::{check, Cancel};
use crate::ops::error::{OpsError, Result};
use crate::ops::models::{ContainerWaitResponse, WaitCondition};
use crate::ops::Engine;

/// How to stop; `None` takes the container's own setting (`--stop-signal`,
/// `--stop-timeout`), else SIGTERM and 10 seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopOptions {
    pub signal: Option<String>,
    /// Seconds before SIGKILL; negative waits forever.
    pub timeout: Option<i64>,
}

fn timeout(opts: &StopOptions, default: u64) -> Duration {
    match opts.timeout {
        Some(t) => crate::ops::parse::stop_timeout(t),
        None => Duration::from_secs(default),
    }
}

/// `POST /containers/{id}/stop`: the stop signal, then SIGKILL after the timeout; the
/// restart policy stays off. Returns the container's id.
pub fn stop(engine: &Engine, what: &str, opts: &StopOptions) -> Result<String> {
    let (store, r) = super::find(engine, what)?;
    let signal = opts
        .signal
        .clone()
        .unwrap_or_else(|| r.config.stop_signal.clone());
    if matches!(r.state.status, Status::Running | Status::Paused) {
        let sig = signal.trim_start_matches("SIG");
        let sig = if sig.is_empty() { "TERM" } else { sig };
        crate::events::container(engine.root(), &r, "kill", &[("signal", signal_number(sig))]);
    }
    lifecycle::stop(
        engine.root(),
        &store,
        &r,
        &signal,
        timeout(opts, r.config.stop_timeout),
    )?;
    crate::events::container(engine.root(), &r, "stop", &[]);
    Ok(r.id)
}

/// `POST /containers/{id}/restart`: stop, then start in the background.
pub fn restart(engine: &Engine, what: &str, opts: &StopOptions) -> Result<()> {
    let id = stop(engine, what, opts)?;
    let store = engine.containers()?;
    let r = store.load(&id)?;
    super::start::start_record(engine, &store, &r)?;
    crate::events::container(engine.root(), &r, "restart", &[]);
    Ok(())
}

/// `POST /containers/{id}/kill`: a signal (name or number, with or without `SIG`) to the
/// container's process. KILL, TERM and INT keep the restart policy from restarting it.
pub fn kill(engine: &Engine, what: &str, signal: &str) -> Result<()> {
    let (store, r) = super::find(engine, what)?;
    if !matches!(r.state.status, Status::Running | Status::Paused) {
        return Err(OpsError::KillNotRunning {
            what: what.to_string(),
            id: r.id,
        });
    }
    let signal = signal.trim_start_matches("SIG").to_string();
    if matches!(signal.as_str(), "KILL" | "9" | "TERM" | "15" | "INT" | "2") {
        store.update(&r.id, |r| r.state.manually_stopped = true)?;
    }
    super::runtime(engine, &store, &r).kill(&r.id, &signal, false)?;
    crate::events::container(
        engine.root(),
        &r,
        "kill",
        &[("signal", signal_number(&signal))],
    );
    if matches!(signal.as_str(), "KILL" | "9") {
        // As dockerd: a SIGKILL returns once the container is down, so what follows (an
        // inspect, a remove) sees it exited. Bounded: a process stuck in the kernel
        // (uninterruptible sleep) may outlive the signal.
        if r.state.status == Status::Paused {
            let _ = super::runtime(engine, &store, &r).resume(&r.id);
        }
        wait_exit_until(&store, &r.id, Some(Instant::now() + KILL_WAIT), &|| false)?;
    }
    Ok(())
}

/// How long a SIGKILL waits for the container to go down.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// A signal as docker's kill event names it: its number.
fn signal_number(signal: &str) -> String {
    if signal.parse::<i32>().is_ok() {
        return signal.to_string();
    }
    format!("SIG{signal}")
        .parse::<nix::sys::signal::Signal>()
        .map_or_else(|_| signal.to_string(), |s| (s as i32).to_string())
}

/// How to remove.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoveOptions {
    /// Kill a running container first.
    pub force: bool,
    /// Remove its anonymous volumes too.
    pub volumes: bool,
}

/// `DELETE /containers/{id}`.
pub fn remove(engine: &Engine, what: &str, opts: RemoveOptions) -> Result<()> {
    let (store, r) = super::find(engine, what)?;
    remove_record(engine, &store, &r, opts)
}

pub(crate) fn remove_record(
    engine: &Engine,
    store: &ContainerStore,
    r: &Record,
    opts: RemoveOptions,
) -> Result<()> {
    let running = matches!(
        r.state.status,
        Status::Running | Status::Paused | Status::Restarting
    );
    if running && !opts.force {
        return Err(OpsError::RemoveActive {
            id: r.id.clone(),
            status: r.state.status.as_str().to_string(),
        });
    }
    if monitor_alive(r) {
        let r = store.update(&r.id, |r| r.state.manually_stopped = true)?;
        let runtime = super::runtime(engine, store, &r);
        let _ = runtime.kill(&r.id, "KILL", true);
        if r.state.status == Status::Paused {
            let _ = runtime.resume(&r.id);
        }
        lifecycle::wait_exit(store, &r.id, Some(Duration::from_secs(30)))?;
    }
    let r = match store.load(&r.id) {
        Ok(r) => r,
        // Its monitor removed it (`--rm`).
        Err(ContainerError::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    lifecycle::remove_files(engine.root(), store, &r, opts.volumes)?;
    crate::events::container(engine.root(), &r, "destroy", &[]);
    Ok(())
}

/// The exit status in the last `die` event of container `id` since `since` (nanoseconds).
fn die_code(engine: &Engine, id: &str, since: i64) -> Option<i32> {
    let (events, _) = crate::events::replay(engine.root(), Some(since), None).ok()?;
    events
        .iter()
        .rev()
        .find(|m| m.kind == "container" && m.action == "die" && m.actor.id == id)
        .and_then(|m| m.actor.attributes.get("exitCode")?.parse().ok())
}

/// `POST /containers/{id}/wait`: blocks until the condition holds and returns the exit
/// status (-1 when the container vanished without one). Cancellable.
pub fn wait(
    engine: &Engine,
    what: &str,
    condition: WaitCondition,
    cancel: &Cancel,
) -> Result<ContainerWaitResponse> {
    let (store, r) = super::find(engine, what)?;
    let stop = || cancel.is_cancelled();
    let code = match condition {
        WaitCondition::NotRunning => wait_exit_until(&store, &r.id, None, &stop)?,
        WaitCondition::NextExit => {
            // A stopped container: wait for it to run again first. A run too short to be
            // seen running still changes its finish time (docker's CLI asks for this wait
            // before it starts the container).
            let finished = r.state.finished_at.clone();
            loop {
                check(cancel)?;
                let now = super::load_fresh(&store, &r.id)?;
                if monitor_alive(&now) {
                    break wait_exit_until(&store, &r.id, None, &stop)?;
                }
                if now.state.finished_at != finished {
                    break Some(now.state.exit_code);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        WaitCondition::Removed => {
            // The exit status is the last one seen before the record went (an auto-remove
            // container's monitor removes it right after the exit).
            let mut code = None;
            let since = crate::events::now_nano();
            loop {
                check(cancel)?;
                match store.load(&r.id) {
                    // A record gone between two looks leaves its status in the journal's `die`
                    // event (written before the monitor removes it); what was seen waiting may
                    // be a guess made after the record went.
                    Err(ContainerError::NotFound { .. }) => {
                        break die_code(engine, &r.id, since).or(code)
                    }
                    Err(e) => return Err(e.into()),
                    Ok(now) if monitor_alive(&now) => {
                        code = wait_exit_until(&store, &r.id, None, &stop)?.or(code);
                    }
                    Ok(now) => {
                        if !now.state.finished_at.is_empty() {
                            code = Some(now.state.exit_code);
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        }
    };
    check(cancel)?;
    Ok(ContainerWaitResponse {
        status_code: i64::from(code.unwrap_or(-1)),
        error: None,
    })
}

/// Waits at most `timeout` for the container to stop; `None` when it still runs.
pub fn wait_timeout(engine: &Engine, what: &str, timeout: Duration) -> Result<Option<i32>> {
    let (store, r) = super::find(engine, what)?;
    let deadline = Instant::now() + timeout;
    Ok(wait_exit_until(&store, &r.id, Some(deadline), &|| false)?)
}

/// `POST /containers/{id}/pause`: freezes every process (cgroup freezer, by the runtime).
pub fn pause(engine: &Engine, what: &str) -> Result<()> {
    let (store, r) = super::find(engine, what)?;
    match r.state.status {
        Status::Running => {}
        Status::Paused => return Err(OpsError::AlreadyPaused { id: r.id }),
        _ => return Err(OpsError::NotRunning { id: r.id }),
    }
    super::runtime(engine, &store, &r).pause(&r.id)?;
    store.update(&r.id, |r| r.state.status = Status::Paused)?;
    crate::events::container(engine.root(), &r, "pause", &[]);
    Ok(())
}

/// `POST /containers/{id}/unpause`.
pub fn unpause(engine: &Engine, what: &str) -> Result<()> {
    let (store, r) = super::find(engine, what)?;
    if r.state.status != Status::Paused {
        return Err(OpsError::NotPaused { id: r.id });
    }
    super::runtime(engine, &store, &r).resume(&r.id)?;
    store.update(&r.id, |r| {
        if r.state.status == Status::Paused {
            r.state.status = Status::Running;
        }
    })?;
    crate::events::container(engine.root(), &r, "unpause", &[]);
    Ok(())
}

/// `POST /containers/{id}/rename`.
pub fn rename(engine: &Engine, what: &str, new_name: &str) -> Result<()> {
    let (store, r) = super::find(engine, what)?;
    let name = new_name.strip_prefix('/').unwrap_or(new_name);
    if !valid_name(name) {
        return Err(ContainerError::BadName {
            name: name.to_string(),
        }
        .into());
    }
    let _names = store.names_lock()?;
    if let Some(other) = store.list()?.into_iter().find(|o| o.name == name) {
        if other.id != r.id {
            return Err(ContainerError::NameInUse {
                name: name.to_string(),
                id: other.id,
            }
            .into());
        }
    }
    let renamed = store.update(&r.id, |r| r.name = name.to_string())?;
    crate::events::container(
        engine.root(),
        &renamed,
        "rename",
        &[("oldName", format!("/{}", r.name))],
    );
    Ok(())
}

/// Waits until the container's health check says `healthy` (`Ok(true)`); `Ok(false)` when
/// it reports `unhealthy`, stops running or `timeout` passes. Polls every 100 ms and stops
/// with [`OpsError::Cancelled`] when `cancel` is cancelled. A container without a
/// health check is healthy once it runs (compose's `service_healthy` needs a check; this
/// is for callers that wait on every dependency alike).
pub fn wait_healthy(
    engine: &Engine,
    what: &str,
    timeout: Option<Duration>,
    cancel: &Cancel,
) -> Result<bool> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let (store, r) = super::find(engine, what)?;
    loop {
        check(cancel)?;
        let r = super::load_fresh(&store, &r.id)?;
        let running = r.state.status == Status::Running;
        match (&r.state.health, running) {
            (_, false)
                if r.state.status != Status::Created && r.state.status != Status::Restarting =>
            {
                return Ok(false)
            }
            (Some(h), true) if h.status == "healthy" => return Ok(true),
            (Some(h), _) if h.status == "unhealthy" => return Ok(false),
            (None, true) => return Ok(true),
            _ => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
