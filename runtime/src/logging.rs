//! runc-compatible logging: `--log FILE` and `--log-format text|json`.
//!
//! containerd and dockerd read the log file after a failed call and show the `msg` of the last
//! JSON line to the user, so errors must end up there, one JSON object per line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    sink: Option<Mutex<File>>,
    format: Format,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets up logging once, at start-up. Without `--log`, log lines go to stderr.
pub fn init(path: Option<&Path>, format: Format, debug: bool) -> std::io::Result<()> {
    let sink = match path {
        Some(p) => Some(Mutex::new(
            OpenOptions::new().create(true).append(true).open(p)?,
        )),
        None => None,
    };
    let _ = LOGGER.set(Logger {
        sink,
        format,
        debug,
    });
    Ok(())
}

fn write(level: &str, msg: &str) {
    let Some(l) = LOGGER.get() else { return };
    if level == "debug" && !l.debug {
        return;
    }
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let line = match l.format {
        Format::Json => format!(
            "{}\n",
            serde_json::json!({"level": level, "msg": msg, "time": time})
        ),
        Format::Text => format!("time={time:?} level={level} msg={msg:?}\n"),
    };
    match &l.sink {
        Some(f) => {
            if let Ok(mut f) = f.lock() {
                let _ = f.write_all(line.as_bytes());
            }
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

/// Whether the log goes to a file (then the CLI also prints errors plainly to stderr).
pub fn has_file() -> bool {
    LOGGER.get().is_some_and(|l| l.sink.is_some())
}

pub fn error(msg: &str) {
    write("error", msg);
}

pub fn warn(msg: &str) {
    write("warning", msg);
}

pub fn debug(msg: &str) {
    write("debug", msg);
}

/// Whether debug lines are written at all (to skip formatting them).
pub fn debug_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.debug)
}

/// A debug line marking a step of container setup. `stage` is the name runc's own debug log
/// gives the equivalent step ("nsexec container setup", "child process in init()", ...), so
/// whoever reads or greps `--debug` output of runc finds the same landmarks here; `detail`
/// says what berth-runtime does at that step.
pub fn stage(stage: &str, detail: &str) {
    if debug_enabled() {
        write("debug", &format!("{stage}: {detail}"));
    }
}
