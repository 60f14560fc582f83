//! Container logs in docker's json-file format: the writer the monitor feeds with the
//! container's output, and the reader behind `berth logs`.
//!
//! One JSON object per line of output, exactly as dockerd's json-file driver writes them:
//! `{"log":"hello\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}`. The files
//! are compatible both ways: tools that read docker's logs read ours.

mod attrs;
mod json;
mod reader;
mod tail;
mod time;
mod writer;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use attrs::{details_prefix, extra_attributes};
pub use reader::{Follow, LogReader, ReadOptions};
pub use time::{format_time_fixed, parse_timestamp};
pub use writer::{LogOptions, LogWriter};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("opening log file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing log file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("rotating log file {path}")]
    Rotate {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading log file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("log file {path} holds a line that is not a json-file log entry: {line:?}")]
    Parse {
        path: PathBuf,
        /// The start of the offending line.
        line: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("log option {key}: invalid value {value:?}")]
    InvalidOption { key: String, value: String },
    #[error("unknown log option {key:?} for the json-file driver")]
    UnknownOption { key: String },
    #[error("invalid time value {value:?}: use RFC 3339, a Unix timestamp or a duration like 10m")]
    InvalidTime { value: String },
    #[error("writing log output")]
    Output(#[source] io::Error),
}

type Result<T, E = LogError> = std::result::Result<T, E>;

/// Which output of the container a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One logged chunk: a line with its `\n`, or a partial line (flushed at exit, or cut at
/// docker's 16 KiB message limit) without one.
/// `berth logs`: prints the log at `path` selected by `opts` to `stdout` / `stderr` by
/// stream; with `follow`, keeps printing new output (flushed entry by entry) until the
/// closure reports the container gone and the rest is drained.
pub fn print_logs(
    path: &Path,
    opts: ReadOptions,
    timestamps: bool,
    follow: Option<&dyn Fn() -> bool>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<()> {
    let reader = LogReader::new(path, opts);
    match follow {
        None => {
            for e in reader.read()? {
                e.print(timestamps, stdout, stderr)
                    .map_err(LogError::Output)?;
            }
        }
        Some(exited) => {
            for e in reader.follow(exited)? {
                let e = e?;
                e.print(timestamps, stdout, stderr)
                    .map_err(LogError::Output)?;
                // Whoever reads a followed log wants each line as it comes, even through
                // a pipe.
                stdout.flush().map_err(LogError::Output)?;
                stderr.flush().map_err(LogError::Output)?;
            }
        }
    }
    stdout.flush().map_err(LogError::Output)?;
    stderr.flush().map_err(LogError::Output)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: Stream,
    pub time: SystemTime,
    /// The text as logged (invalid UTF-8 was replaced by U+FFFD when written, as docker does).
    pub line: String,
    /// The entry's extra attributes (`--log-opt labels=…`; shown by `logs --details`).
    pub attrs: std::collections::BTreeMap<String, String>,
}

impl LogEntry {
    /// Prints the entry as `docker logs` does: to `stdout` or `stderr` by stream, prefixed
    /// with the fixed-width RFC 3339 time and a space with `timestamps`.
    pub fn print<'a>(
        &self,
        timestamps: bool,
        stdout: &'a mut dyn Write,
        stderr: &'a mut dyn Write,
    ) -> io::Result<()> {
        self.print_with(timestamps, false, stdout, stderr)
    }

    /// [`print`](Self::print), with `details` the entry's attributes after the time
    /// ([`details_prefix`]), as `docker logs --details`.
    pub fn print_with<'a>(
        &self,
        timestamps: bool,
        details: bool,
        stdout: &'a mut dyn Write,
        stderr: &'a mut dyn Write,
    ) -> io::Result<()> {
        let out: &mut dyn Write = match self.stream {
            Stream::Stdout => stdout,
            Stream::Stderr => stderr,
        };
        if timestamps {
            write!(out, "{} ", format_time_fixed(self.time))?;
        }
        if details {
            out.write_all(details_prefix(&self.attrs).as_bytes())?;
        }
        out.write_all(self.line.as_bytes())
    }
}
