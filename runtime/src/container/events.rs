//! `events`: the container's statistics and OOM notifications as runc prints them, one JSON
//! object per line: `{"type":"stats","id":..,"data":{..}}` and `{"type":"oom","id":..}`.
//!
//! The container's lock is held only to read its state: a long `events` stream must not
//! block `kill` or `delete`. The stream ends when the container stops.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{io_err, Error};
use crate::cgroups::OomWatch;
use crate::state::{ContainerDir, State, Status};

/// How often the stream looks for OOM kills and for the container's end.
const TICK: Duration = Duration::from_millis(50);

fn load(root: &Path, id: &str) -> Result<(State, Status), Error> {
    let dir = ContainerDir::open(root, id)?;
    let state = dir.load()?;
    let status = state.status(&dir.path);
    Ok((state, status))
}

/// `events --stats`: one stats event.
pub fn stats(root: &Path, id: &str, out: &mut dyn Write) -> Result<(), Error> {
    let (state, status) = load(root, id)?;
    if status == Status::Stopped {
        return Err(Error::NotRunning { id: id.into() });
    }
    emit(out, "stats", id, Some(&state.cgroup.stats()))
}

/// `events [--interval]`: a stats event now and every `interval`, an oom event whenever the
/// kernel OOM-kills in the container, until the container stops.
pub fn stream(root: &Path, id: &str, interval: Duration, out: &mut dyn Write) -> Result<(), Error> {
    let (state, status) = load(root, id)?;
    if status == Status::Stopped {
        return Err(Error::NotRunning { id: id.into() });
    }
    let mut oom = OomWatch::new(&state.cgroup);
    let state_dir = root.join(id);
    let mut next_stats = Instant::now();
    loop {
        for _ in 0..oom.poll() {
            emit(out, "oom", id, None)?;
        }
        if state.status(&state_dir) == Status::Stopped || !state_dir.exists() {
            // The OOM kill may be what stopped it: report it before leaving.
            for _ in 0..oom.poll() {
                emit(out, "oom", id, None)?;
            }
            return Ok(());
        }
        if Instant::now() >= next_stats {
            emit(out, "stats", id, Some(&state.cgroup.stats()))?;
            next_stats = Instant::now() + interval;
        }
        std::thread::sleep(TICK);
    }
}

/// One event line, keys in runc's order (`type`, `id`, `data`).
fn emit(
    out: &mut dyn Write,
    kind: &str,
    id: &str,
    data: Option<&serde_json::Value>,
) -> Result<(), Error> {
    let mut line = format!("{{\"type\":{},\"id\":{}", json!(kind), json!(id));
    if let Some(data) = data {
        line.push_str(&format!(",\"data\":{data}"));
    }
    line.push('}');
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(io_err("writing events to", "stdout"))
}
