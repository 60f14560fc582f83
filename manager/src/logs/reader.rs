//! Reading json-file logs back: history across rotated files (`--tail`, `--since`,
//! `--until`, stream selection) and following a log as the container writes it.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::json::{decode, DecodeError};
use super::tail::last_lines;
use super::writer::rotated;
use super::{LogEntry, LogError, Result, Stream};

/// How often a follower looks for new output. A poll rather than inotify: the log may be
/// rotated (renamed) under us, and a 50 ms tick is invisible next to a terminal.
const POLL: Duration = Duration::from_millis(50);

/// What `berth logs` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Only the last N entries of the history (`--tail N`); `None`: all. As dockerd, the
    /// count is taken over both streams before stream selection and `--since`.
    pub tail: Option<usize>,
    /// Entries at or after this time.
    pub since: Option<SystemTime>,
    /// Entries at or before this time; a follower stops at the first later entry.
    pub until: Option<SystemTime>,
    pub stdout: bool,
    pub stderr: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            tail: None,
            since: None,
            until: None,
            stdout: true,
            stderr: true,
        }
    }
}

impl ReadOptions {
    fn wants(&self, e: &LogEntry) -> bool {
        let stream_ok = match e.stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        };
        stream_ok && self.since.is_none_or(|s| e.time >= s)
    }

    fn past_until(&self, e: &LogEntry) -> bool {
        self.until.is_some_and(|u| e.time > u)
    }
}

/// A container's log: `<path>` and its rotated predecessors `<path>.1`, `<path>.2`, ...
#[derive(Debug, Clone)]
pub struct LogReader {
    path: PathBuf,
    opts: ReadOptions,
}

impl LogReader {
    pub fn new(path: &Path, opts: ReadOptions) -> Self {
        Self {
            path: path.to_path_buf(),
            opts,
        }
    }

    /// The history as it is now, oldest first. A missing log (the container never wrote)
    /// is empty.
    pub fn read(&self) -> Result<Vec<LogEntry>> {
        let (history, _) = self.history()?;
        Ok(history.into())
    }

    /// The history, then every entry written after it, blocking until more output comes.
    /// Once `exited()` returns true (the container is gone, so nothing more will be written)
    /// the follower drains what is left and ends. Rotation is followed: the old file is
    /// read to its end before the new one is opened.
    pub fn follow<F: Fn() -> bool>(&self, exited: F) -> Result<Follow<F>> {
        let (backlog, live) = self.history()?;
        Ok(Follow {
            path: self.path.clone(),
            opts: self.opts.clone(),
            exited,
            backlog,
            live,
            draining: false,
            done: false,
        })
    }

    /// Reads the rotated files and the live file (kept open for a follower, at its end).
    fn history(&self) -> Result<(VecDeque<LogEntry>, Option<LiveFile>)> {
        // The live file is opened first: output written while we read the rotated files
        // lands in it (or, if it rotates meanwhile, in the file our handle still reads).
        let mut live = LiveFile::open(&self.path)?;
        let mut old = Vec::new();
        let mut n = 1;
        loop {
            let p = rotated(&self.path, n);
            if !p.exists() {
                break;
            }
            old.push(p);
            n += 1;
        }
        let entries: Vec<LogEntry> = match self.opts.tail {
            None => {
                let mut entries = Vec::new();
                for p in old.iter().rev() {
                    let Some(mut f) = LiveFile::open(p)? else {
                        continue; // rotated away meanwhile
                    };
                    while let Some(e) = f.next_entry()? {
                        entries.push(e);
                    }
                }
                if let Some(f) = live.as_mut() {
                    while let Some(e) = f.next_entry()? {
                        entries.push(e);
                    }
                }
                entries
            }
            // Newest file first, each read backwards, until enough lines are found.
            Some(n) => {
                let mut per_file: Vec<(PathBuf, Vec<Vec<u8>>)> = Vec::new();
                let mut need = n;
                if let Some(f) = live.as_mut() {
                    let lines = f.skip_to_tail(need)?;
                    need -= lines.len();
                    per_file.push((self.path.clone(), lines));
                }
                for p in &old {
                    if need == 0 {
                        break;
                    }
                    let Some(mut f) = LiveFile::open(p)? else {
                        continue;
                    };
                    let lines = f.skip_to_tail(need)?;
                    need -= lines.len();
                    per_file.push((p.clone(), lines));
                }
                let mut entries = Vec::new();
                for (path, lines) in per_file.into_iter().rev() {
                    for line in lines {
                        entries.push(decode_line(&path, &line)?);
                    }
                }
                entries
            }
        };
        let mut out = VecDeque::new();
        for e in entries {
            if self.opts.past_until(&e) {
                break;
            }
            if self.opts.wants(&e) {
                out.push_back(e);
            }
        }
        Ok((out, live))
    }
}

fn decode_line(path: &Path, line: &[u8]) -> Result<LogEntry> {
    let bad = |source| LogError::Parse {
        path: path.to_path_buf(),
        line: String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned(),
        source,
    };
    match decode(line) {
        Ok(e) => Ok(e),
        Err(DecodeError::Json(source)) => Err(bad(source)),
        Err(DecodeError::Field(field)) => {
            Err(bad(serde::de::Error::custom(format!("bad {field}"))))
        }
    }
}

/// One log file read line by line; a line still being written (no newline yet) is held
/// back until it is complete.
#[derive(Debug)]
struct LiveFile {
    path: PathBuf,
    reader: BufReader<File>,
    id: (u64, u64),
    pos: u64,
    partial: Vec<u8>,
}

impl LiveFile {
    fn open(path: &Path) -> Result<Option<Self>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LogError::Open {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let md = file.metadata().map_err(|source| LogError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Some(Self {
            path: path.to_path_buf(),
            reader: BufReader::new(file),
            id: (md.dev(), md.ino()),
            pos: 0,
            partial: Vec::new(),
        }))
    }

    /// The next complete entry, or `None` at the current end of the file.
    fn next_entry(&mut self) -> Result<Option<LogEntry>> {
        loop {
            let n = self
                .reader
                .read_until(b'\n', &mut self.partial)
                .map_err(|source| LogError::Read {
                    path: self.path.clone(),
                    source,
                })?;
            self.pos += n as u64;
            if self.partial.last() != Some(&b'\n') {
                return Ok(None);
            }
            let line = std::mem::take(&mut self.partial);
            let trimmed = &line[..line.len() - 1];
            if trimmed.is_empty() {
                continue;
            }
            return decode_line(&self.path, trimmed).map(Some);
        }
    }

    /// The last `n` complete lines before the current end of the file; the reader moves
    /// past them (a line still being written is left for [`next_entry`](Self::next_entry)).
    fn skip_to_tail(&mut self, n: usize) -> Result<Vec<Vec<u8>>> {
        let read = |source| LogError::Read {
            path: self.path.clone(),
            source,
        };
        let file = self.reader.get_ref();
        let end = file.metadata().map_err(read)?.len();
        let (lines, complete) = last_lines(file, end, n).map_err(read)?;
        self.reader.seek(SeekFrom::Start(complete)).map_err(read)?;
        self.pos = complete;
        self.partial.clear();
        Ok(lines)
    }

    /// Whether the live log `live` now names another file than ours (rotated; ours may
    /// itself have been opened as a rotated file), or ours shrank (truncated by a max-file=1
    /// rotation, in which case we start over at its beginning).
    fn check_rotation(&mut self, live: &Path) -> Result<bool> {
        match fs::metadata(live) {
            Ok(md) if (md.dev(), md.ino()) != self.id => Ok(true),
            Ok(md) if md.len() < self.pos => {
                self.reader
                    .seek(SeekFrom::Start(0))
                    .map_err(|source| LogError::Read {
                        path: self.path.clone(),
                        source,
                    })?;
                self.pos = 0;
                self.partial.clear();
                Ok(false)
            }
            Ok(_) => Ok(false),
            // Renamed away and the new file not created yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(LogError::Read {
                path: live.to_path_buf(),
                source,
            }),
        }
    }
}

/// The file written after the one identified by `id`. Several rotations may have happened
/// since we last looked (ours may now be `<path>.3`), so the whole set is opened, oldest
/// first, and ours located by inode; if ours was deleted (rotated past max-file), every
/// remaining file is newer and the oldest comes next. The set is opened again if a rotation
/// moved files while we opened them. `None`: nothing newer yet.
fn next_file(path: &Path, id: (u64, u64)) -> Result<Option<LiveFile>> {
    loop {
        let mut paths = Vec::new();
        let mut n = 1;
        while rotated(path, n).exists() {
            paths.push(rotated(path, n));
            n += 1;
        }
        paths.reverse();
        paths.push(path.to_path_buf());
        let mut files = Vec::new();
        for p in &paths {
            if let Some(f) = LiveFile::open(p)? {
                files.push(f);
            }
        }
        let stable = files
            .iter()
            .all(|f| fs::metadata(&f.path).is_ok_and(|md| (md.dev(), md.ino()) == f.id));
        if !stable {
            continue;
        }
        let next = match files.iter().position(|f| f.id == id) {
            Some(i) => i + 1,
            None => 0,
        };
        return Ok(files.into_iter().nth(next));
    }
}

/// A blocking iterator over a followed log (see [`LogReader::follow`]).
pub struct Follow<F> {
    path: PathBuf,
    opts: ReadOptions,
    exited: F,
    backlog: VecDeque<LogEntry>,
    live: Option<LiveFile>,
    draining: bool,
    done: bool,
}

impl<F: Fn() -> bool> Follow<F> {
    fn step(&mut self) -> Result<Option<LogEntry>> {
        loop {
            if let Some(e) = self.backlog.pop_front() {
                return Ok(Some(e));
            }
            if self.done {
                return Ok(None);
            }
            if let Some(f) = self.live.as_mut() {
                if let Some(e) = f.next_entry()? {
                    if self.opts.past_until(&e) {
                        self.done = true;
                    } else if self.opts.wants(&e) {
                        self.backlog.push_back(e);
                    }
                    continue;
                }
                // At the end of our file: if the log was rotated, our file is complete
                // (the writer moved on), so go on with the file written after it.
                if f.check_rotation(&self.path)? {
                    if let Some(next) = next_file(&self.path, f.id)? {
                        self.live = Some(next);
                        continue;
                    }
                }
            } else if let Some(f) = LiveFile::open(&self.path)? {
                self.live = Some(f);
                continue;
            }
            if self.draining {
                self.done = true;
                continue;
            }
            // Past --until nothing more can qualify: stop once what is there is read.
            if self.opts.until.is_some_and(|u| SystemTime::now() > u) {
                self.draining = true;
                continue;
            }
            // Read once more after the container is seen gone: its last lines may have
            // landed between our end of file and this check.
            if (self.exited)() {
                self.draining = true;
                continue;
            }
            std::thread::sleep(POLL);
        }
    }
}

impl<F: Fn() -> bool> Iterator for Follow<F> {
    type Item = Result<LogEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                self.backlog.clear();
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests;
