//! The json-file writer: splits a container's output into lines, stamps them and appends
//! them, rotating at `max-size` like dockerd.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::json::encode;
use super::{LogError, Result, Stream};

/// dockerd cuts lines longer than this into several entries (the buffer its log copier
/// reads with); the pieces carry no newline, like a partial line.
const MAX_MESSAGE: usize = 16 * 1024;

/// `--log-opt` values of the json-file driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Rotate once the file reaches this many bytes; `None`: never.
    pub max_size: Option<u64>,
    /// Files kept in all, the live one included (`<path>`, `<path>.1`, ...); at least 1.
    pub max_file: u32,
    /// Written into every entry (`attrs`, see [`super::attrs`]).
    pub attrs: BTreeMap<String, String>,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            max_size: None,
            max_file: 1,
            attrs: BTreeMap::new(),
        }
    }
}

impl LogOptions {
    /// Parses docker's `--log-opt` map: `max-size` (`10m`, `512k`, `1g`, bytes; binary
    /// units as docker), `max-file` (needs `max-size`). Other json-file options docker knows
    /// (`labels`, `env` and their `-regex` forms, which select the entries' `attrs` at
    /// create, `tag`, `compress`) are accepted; anything else is an error.
    pub fn from_opts(opts: &BTreeMap<String, String>) -> Result<Self> {
        let mut o = Self::default();
        for (key, value) in opts {
            let invalid = || LogError::InvalidOption {
                key: key.clone(),
                value: value.clone(),
            };
            match key.as_str() {
                "max-size" => {
                    let size = parse_size(value).ok_or_else(invalid)?;
                    // docker: max-size=-1 (or 0 here) means unlimited.
                    o.max_size = (size > 0).then_some(size);
                }
                "max-file" => {
                    let n: u32 = value.parse().map_err(|_| invalid())?;
                    if n == 0 {
                        return Err(invalid());
                    }
                    o.max_file = n;
                }
                "labels-regex" | "env-regex" => {
                    super::attrs::regex_opt(opts, key)?;
                }
                "labels" | "env" | "tag" | "compress" => {}
                _ => return Err(LogError::UnknownOption { key: key.clone() }),
            }
        }
        if o.max_file > 1 && o.max_size.is_none() {
            return Err(LogError::InvalidOption {
                key: "max-file".into(),
                value: format!("{} (needs max-size)", o.max_file),
            });
        }
        Ok(o)
    }
}

/// docker's `units.RAMInBytes`: a number with an optional b/k/m/g/t/p suffix (optionally
/// followed by `b`/`ib`), powers of 1024.
fn parse_size(s: &str) -> Option<u64> {
    let lower = s.trim().to_ascii_lowercase();
    if lower == "-1" {
        return Some(0);
    }
    let num_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let n: f64 = lower[..num_end].parse().ok()?;
    let unit = lower[num_end..].trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    };
    Some((n * mult as f64) as u64)
}

/// Appends a container's output to a json-file log. Not thread-safe by design: the monitor
/// owns it and feeds both streams through it, so entries never interleave mid-line.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    opts: LogOptions,
    /// Output after the last newline, per stream (stdout, stderr), and when its first byte
    /// was read: like dockerd, a line is stamped with the time it started.
    pending: [Vec<u8>; 2],
    pending_since: [SystemTime; 2],
    /// `opts.attrs` as JSON, encoded once.
    raw_attrs: Vec<u8>,
}

impl LogWriter {
    /// Opens (appending to, or creating) `path`.
    pub fn create(path: &Path, opts: LogOptions) -> Result<Self> {
        let file = open_append(path)?;
        let size = file
            .metadata()
            .map_err(|source| LogError::Open {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let raw_attrs = super::json::encode_attrs(&opts.attrs);
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            raw_attrs,
            opts,
            pending: [Vec::new(), Vec::new()],
            pending_since: [SystemTime::UNIX_EPOCH; 2],
        })
    }

    /// Logs a chunk of output: every complete line becomes an entry now, stamped with the
    /// time its first byte was read; a trailing partial line waits for its end (or
    /// [`flush`](Self::flush)).
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> Result<()> {
        self.write_at(stream, data, SystemTime::now())
    }

    /// [`write`](Self::write) with an explicit time (the moment the output was read).
    pub fn write_at(&mut self, stream: Stream, data: &[u8], time: SystemTime) -> Result<()> {
        let idx = stream as usize;
        let mut buf = std::mem::take(&mut self.pending[idx]);
        // The first line out of this chunk may have started in an earlier one.
        let mut line_time = if buf.is_empty() {
            time
        } else {
            self.pending_since[idx]
        };
        buf.extend_from_slice(data);
        let mut start = 0;
        let mut out = Vec::new();
        while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + nl + 1;
            self.entries(&mut out, stream, &buf[start..end], line_time);
            line_time = time;
            start = end;
        }
        // A long line without a newline goes out in 16 KiB pieces, so memory stays bounded.
        while buf.len() - start >= MAX_MESSAGE {
            let end = start + MAX_MESSAGE;
            self.entries(&mut out, stream, &buf[start..end], line_time);
            line_time = time;
            start = end;
        }
        buf.drain(..start);
        self.pending[idx] = buf;
        self.pending_since[idx] = line_time;
        self.append(&out)
    }

    /// Writes pending partial lines as they are (no newline added): call when the container
    /// exits.
    pub fn flush(&mut self) -> Result<()> {
        let mut out = Vec::new();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let buf = std::mem::take(&mut self.pending[stream as usize]);
            if !buf.is_empty() {
                self.entries(&mut out, stream, &buf, self.pending_since[stream as usize]);
            }
        }
        self.append(&out)
    }

    /// Encodes `chunk`, cut at the message limit.
    fn entries(&self, out: &mut Vec<u8>, stream: Stream, chunk: &[u8], time: SystemTime) {
        for piece in chunk.chunks(MAX_MESSAGE) {
            encode(out, stream, piece, &self.raw_attrs, time);
        }
    }

    /// Appends encoded entries one by one, rotating before an entry when the file has
    /// reached max-size (dockerd's order: the file may exceed max-size by one entry).
    fn append(&mut self, encoded: &[u8]) -> Result<()> {
        for line in encoded.split_inclusive(|b| *b == b'\n') {
            if self.opts.max_size.is_some_and(|max| self.size >= max) {
                self.rotate()?;
            }
            self.file
                .write_all(line)
                .map_err(|source| LogError::Write {
                    path: self.path.clone(),
                    source,
                })?;
            self.size += line.len() as u64;
        }
        Ok(())
    }

    /// `<path>.N-1` → `<path>.N`, ..., `<path>` → `<path>.1`, new `<path>`; with max-file 1
    /// the file is unlinked and made anew. A reader following the log keeps its open file
    /// (now `<path>.1`, or unlinked), drains it, then goes on with the next file. (Unlink
    /// rather than truncate: a follower cannot tell a truncated file that has grown again
    /// past its read position from one that was never truncated.)
    fn rotate(&mut self) -> Result<()> {
        let err = |source| LogError::Rotate {
            path: self.path.clone(),
            source,
        };
        if self.opts.max_file <= 1 {
            fs::remove_file(&self.path).map_err(err)?;
            self.file = open_append(&self.path)?;
            self.size = 0;
            return Ok(());
        }
        for n in (1..self.opts.max_file).rev() {
            let from = if n == 1 {
                self.path.clone()
            } else {
                rotated(&self.path, n - 1)
            };
            match fs::rename(&from, rotated(&self.path, n)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(err(e)),
            }
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        // Best effort: a writer dropped without flush (e.g. the monitor unwinding after an
        // error) still leaves its partial lines in the log; there is nobody to report to.
        let _ = self.flush();
    }
}

/// `<path>.n`.
pub(super) fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open_append(path: &Path) -> Result<File> {
    // 0640 as dockerd creates its logs: container output is not for every local user.
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .map_err(|source| LogError::Open {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_docker_binary_units() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("1.5KiB"), Some(1536));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("ten"), None);
    }

    #[test]
    fn options_follow_docker_rules() {
        let opts = |pairs: &[(&str, &str)]| {
            LogOptions::from_opts(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        assert_eq!(
            opts(&[("max-size", "10m"), ("max-file", "3")]).unwrap(),
            LogOptions {
                max_size: Some(10 << 20),
                max_file: 3,
                ..LogOptions::default()
            }
        );
        assert!(opts(&[("max-file", "3")]).is_err());
        assert!(opts(&[("max-file", "0"), ("max-size", "1k")]).is_err());
        assert!(opts(&[("max-size", "lots")]).is_err());
        assert!(opts(&[("mode", "non-blocking-ish")]).is_err());
        assert_eq!(opts(&[]).unwrap(), LogOptions::default());
    }
}
