//! What the service keeps besides the store: activity (for the idle timeout and draining),
//! the shutdown token every long stream watches, exec instances (created by one request,
//! started by another, inspected after) and attaches waiting for their container's start.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::ops::containers::Attached;
use crate::ops::models::ExecConfig;
use crate::ops::{Cancel, Engine};

pub struct AppState {
    pub engine: Engine,
    /// Log every request on stderr (errors are always logged).
    pub debug: bool,
    pub activity: Arc<Activity>,
    /// Cancelled when the service stops: follows and hijacked sessions end.
    pub shutdown: Cancel,
    pub execs: Mutex<HashMap<String, ExecInstance>>,
    /// Attaches to a container that is not running yet, by container id: the next start
    /// through this service starts it with the first of them attached, so no output is
    /// missed (docker's CLI attaches before it starts).
    pub pending: Mutex<HashMap<String, Vec<Waiting>>>,
}

/// An attach waiting for its container's start.
pub struct Waiting {
    pub tx: tokio::sync::oneshot::Sender<Attached>,
    pub stdin: bool,
    pub opts: crate::ops::containers::AttachOptions,
}

impl AppState {
    pub fn new(engine: Engine, shutdown: Cancel, debug: bool) -> Self {
        Self {
            engine,
            debug,
            activity: Arc::new(Activity::new()),
            shutdown,
            execs: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
        }
    }
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An exec instance (`POST /containers/{id}/exec`), as `GET /exec/{id}/json` reports it.
#[derive(Debug, Clone)]
pub struct ExecInstance {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub detach_keys: String,
    pub running: bool,
    /// Set once the process ran; `None` before and while it runs.
    pub exit_code: Option<i64>,
    pub pid: i64,
    /// The pty master of a running `Tty` exec, for resizes.
    pub pty: Option<Arc<std::os::fd::OwnedFd>>,
    /// The runtime's `exec` process, signalled to pass a resize on.
    pub runtime_pid: i32,
    pub created: Instant,
}

/// Requests and sessions in progress, and when the last one ended.
pub struct Activity {
    active: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    pub fn new() -> Self {
        Self {
            active: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
        }
    }

    /// Marks one request or session as in progress until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::SeqCst);
        ActiveGuard(self.clone())
    }

    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// When the service last became idle (or last had a request end).
    pub fn last(&self) -> Instant {
        *lock(&self.last)
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

pub struct ActiveGuard(Arc<Activity>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        *lock(&self.0.last) = Instant::now();
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}
