//! A container's json-file log, read back or followed as it grows.

use std::time::SystemTime;

use crate::container::lifecycle::{monitor_alive, Paths};
use crate::logs::{Follow, LogReader, ReadOptions};
use crate::ops::cancel::Cancel;
use crate::ops::error::{OpsError, Result};
use crate::ops::Engine;

pub use crate::logs::{LogEntry, Stream};

/// What to read (docker's `follow`, `tail`, `since`, `until`, `stdout`, `stderr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsOptions {
    pub follow: bool,
    /// Only the last N entries of the history; all when `None`.
    pub tail: Option<usize>,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    pub stdout: bool,
    pub stderr: bool,
}

impl Default for LogsOptions {
    fn default() -> Self {
        Self {
            follow: false,
            tail: None,
            since: None,
            until: None,
            stdout: true,
            stderr: true,
        }
    }
}

type Exited = Box<dyn Fn() -> bool + Send>;

/// The entries, oldest first; following blocks for new ones until the container is gone
/// (its last lines drained) or the token is cancelled.
pub struct Logs {
    inner: Inner,
}

enum Inner {
    History(std::vec::IntoIter<LogEntry>),
    Follow(Box<Follow<Exited>>),
}

impl Iterator for Logs {
    type Item = Result<LogEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::History(h) => h.next().map(Ok),
            Inner::Follow(f) => f.next().map(|r| r.map_err(OpsError::from)),
        }
    }
}

/// `GET /containers/{id}/logs`.
pub fn logs(engine: &Engine, what: &str, opts: &LogsOptions, cancel: &Cancel) -> Result<Logs> {
    let (store, r) = super::find(engine, what)?;
    let read = ReadOptions {
        tail: opts.tail,
        since: opts.since,
        until: opts.until,
        stdout: opts.stdout,
        stderr: opts.stderr,
    };
    let paths = Paths::new(engine.root(), &store, &r);
    let reader = LogReader::new(&paths.log, read);
    if !opts.follow {
        return Ok(Logs {
            inner: Inner::History(reader.read()?.into_iter()),
        });
    }
    let id = r.id.clone();
    let cancel = cancel.clone();
    let exited: Exited = Box::new(move || {
        cancel.is_cancelled()
            || match store.load(&id) {
                Ok(r) => !monitor_alive(&r),
                Err(_) => true,
            }
    });
    Ok(Logs {
        inner: Inner::Follow(Box::new(reader.follow(exited)?)),
    })
}
