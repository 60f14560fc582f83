//! Reading a blob while it is still being written, so that `pull` can unpack a layer as it
//! downloads (as containerd does) without holding it in memory: the download writes into its
//! content-store ingest file as usual and publishes how many bytes are durable there; a
//! [`Tail`] reads the same file behind it and waits for more instead of reporting end of file.
//!
//! Intended use by the pull (one blocking thread per layer, in layer order, because a layer
//! applies on top of its parent's committed snapshot):
//! 1. `let progress = Progress::new();` next to the ingest;
//! 2. after each `Ingest::flush`, `progress.advance(ingest.offset())`; `finish()` once the blob
//!    is committed, `fail()` when the download is abandoned, `restart()` when the ingest is
//!    reset (the server ignored a Range request);
//! 3. on a blocking thread, `unpack::image::unpack_layer_from(sn, Tail::open(path, progress)?,
//!    ...)`. The diffID check at the end makes the snapshot trustworthy on its own: its bytes
//!    are exactly those the (digest-verified) config names.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// How far a blob being written has got.
#[derive(Debug, Default)]
pub struct Progress {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default, Clone, Copy)]
struct State {
    /// Bytes readable from the start of the file.
    available: u64,
    end: End,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum End {
    #[default]
    Open,
    Finished,
    Failed,
    Restarted,
}

impl Progress {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The first `len` bytes of the file are written and flushed.
    pub fn advance(&self, len: u64) {
        self.update(|s| s.available = s.available.max(len));
    }

    /// The blob is complete: readers see end of file after `available` bytes.
    pub fn finish(&self) {
        self.update(|s| s.end = End::Finished);
    }

    /// The download was abandoned: readers fail.
    pub fn fail(&self) {
        self.update(|s| s.end = End::Failed);
    }

    /// The file was truncated to start over: what readers consumed is void, they fail.
    pub fn restart(&self) {
        self.update(|s| s.end = End::Restarted);
    }

    /// Whether the writer is done (finished, failed or restarted).
    pub fn has_ended(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .end
            != End::Open
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut s);
        self.changed.notify_all();
    }

    /// Blocks until more than `pos` bytes are available or the writer is done.
    fn wait_beyond(&self, pos: u64) -> State {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while s.available <= pos && s.end == End::Open {
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        *s
    }
}

/// Reads a file that another thread is writing, up to what [`Progress`] says is there.
#[derive(Debug)]
pub struct Tail {
    file: File,
    pos: u64,
    progress: Arc<Progress>,
}

impl Tail {
    pub fn open(path: &Path, progress: Arc<Progress>) -> io::Result<Self> {
        Ok(Self {
            file: File::open(path)?,
            pos: 0,
            progress,
        })
    }
}

impl Read for Tail {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let s = self.progress.wait_beyond(self.pos);
        match s.end {
            End::Failed => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the blob's download was abandoned",
                ))
            }
            End::Restarted => {
                // Not `Interrupted`: std's read loops retry that forever.
                return Err(io::Error::other(
                    "the blob's download restarted from the beginning",
                ));
            }
            End::Open | End::Finished => {}
        }
        let left = s.available.saturating_sub(self.pos);
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        // pread(2): the writer's file offset is its own; ours is `pos`.
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn tail_reads_what_the_writer_publishes_and_ends_when_it_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest");
        let mut file = File::create(&path).unwrap();
        let progress = Progress::new();
        let mut tail = Tail::open(&path, progress.clone()).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let data = data.clone();
            let progress = progress.clone();
            std::thread::spawn(move || {
                for (i, chunk) in data.chunks(7000).enumerate() {
                    file.write_all(chunk).unwrap();
                    progress.advance(((i * 7000) + chunk.len()) as u64);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                progress.finish();
            })
        };
        let mut got = Vec::new();
        tail.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(got, data);
    }

    #[test]
    fn tail_fails_when_the_download_is_abandoned_or_restarted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest");
        std::fs::write(&path, b"abc").unwrap();
        for (end, kind) in [
            (
                Progress::fail as fn(&Progress),
                io::ErrorKind::UnexpectedEof,
            ),
            (Progress::restart, io::ErrorKind::Other),
        ] {
            let progress = Progress::new();
            let mut tail = Tail::open(&path, progress.clone()).unwrap();
            progress.advance(3);
            let mut buf = [0u8; 3];
            assert_eq!(tail.read(&mut buf).unwrap(), 3);
            end(&progress);
            assert_eq!(tail.read(&mut buf).unwrap_err().kind(), kind);
        }
    }
}
