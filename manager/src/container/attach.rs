//! The wire protocol between `berth` commands and a container's monitor, over the monitor's
//! Unix socket (`<container dir>/attach.sock`).
//!
//! Every message is a frame: one kind byte, a big-endian u32 payload length, the payload. A
//! client first sends [`Frame::Hello`] saying which streams it wants and whether the monitor
//! should start the container; the monitor then streams output frames and, when the container
//! exits, one [`Frame::Exit`] with its exit status.
//!
//! The socket is reached through `/proc/self/fd/<dirfd>/attach.sock`: a storage root may be
//! deep enough that the plain path exceeds the 108-byte `sun_path` limit (unix(7)).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Payloads above this are refused (output is forwarded in pipe-sized chunks).
const MAX_FRAME: u32 = 1 << 20;

/// What a client asks for when it connects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Start the created container once this client is attached (so no output is missed).
    pub start: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Hello(Hello),
    Stdin(Vec<u8>),
    /// The client's stdin reached end of file: close the container's stdin.
    StdinEof,
    Resize {
        rows: u16,
        cols: u16,
    },
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The container started (answer to a Hello with `start`).
    Started,
    /// Something failed; the text is for the user, the code is the exit status to use
    /// (docker's 125/126/127 conventions).
    Failed {
        code: i32,
        message: String,
    },
    /// The container exited with this status (128+signal for a signal).
    Exit(i32),
}

impl Frame {
    fn kind(&self) -> u8 {
        match self {
            Frame::Hello(_) => 1,
            Frame::Stdin(_) => 2,
            Frame::StdinEof => 3,
            Frame::Resize { .. } => 4,
            Frame::Stdout(_) => 10,
            Frame::Stderr(_) => 11,
            Frame::Started => 12,
            Frame::Failed { .. } => 13,
            Frame::Exit(_) => 14,
        }
    }

    fn payload(&self) -> Vec<u8> {
        match self {
            Frame::Hello(h) => serde_json::to_vec(h).unwrap_or_default(),
            Frame::Stdin(d) | Frame::Stdout(d) | Frame::Stderr(d) => d.clone(),
            Frame::StdinEof | Frame::Started => Vec::new(),
            Frame::Resize { rows, cols } => [rows.to_be_bytes(), cols.to_be_bytes()].concat(),
            Frame::Failed { code, message } => {
                let mut v = code.to_be_bytes().to_vec();
                v.extend_from_slice(message.as_bytes());
                v
            }
            Frame::Exit(code) => code.to_be_bytes().to_vec(),
        }
    }

    /// Writes the frame as one `write_all` so frames from several threads never interleave
    /// when each thread holds the stream's lock.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let payload = self.payload();
        let mut buf = Vec::with_capacity(5 + payload.len());
        buf.push(self.kind());
        buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        buf.extend_from_slice(&payload);
        w.write_all(&buf)
    }

    /// Reads one frame; `Ok(None)` at a clean end of stream.
    pub fn read_from(r: &mut impl Read) -> io::Result<Option<Frame>> {
        let mut head = [0u8; 5];
        match r.read_exact(&mut head[..1]) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        r.read_exact(&mut head[1..])?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        if len > MAX_FRAME {
            return Err(bad(format!("frame of {len} bytes is too large")));
        }
        let mut p = vec![0u8; len as usize];
        r.read_exact(&mut p)?;
        let int = |p: &[u8]| -> io::Result<i32> {
            p.get(..4)
                .and_then(|b| b.try_into().ok())
                .map(i32::from_be_bytes)
                .ok_or_else(|| bad("short frame".into()))
        };
        Ok(Some(match head[0] {
            1 => Frame::Hello(serde_json::from_slice(&p).map_err(|e| bad(e.to_string()))?),
            2 => Frame::Stdin(p),
            3 => Frame::StdinEof,
            4 if p.len() == 4 => Frame::Resize {
                rows: u16::from_be_bytes([p[0], p[1]]),
                cols: u16::from_be_bytes([p[2], p[3]]),
            },
            10 => Frame::Stdout(p),
            11 => Frame::Stderr(p),
            12 => Frame::Started,
            13 => Frame::Failed {
                code: int(&p)?,
                message: String::from_utf8_lossy(&p[4..]).into_owned(),
            },
            14 => Frame::Exit(int(&p)?),
            k => return Err(bad(format!("unknown frame kind {k}"))),
        }))
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// The socket's path as reachable through an open handle on its directory (see module docs).
fn via_fd(dir: &File, name: &str) -> String {
    format!("/proc/self/fd/{}/{name}", dir.as_raw_fd())
}

/// Binds the monitor's socket in `dir`, replacing a stale one.
pub fn listen(dir: &Path, name: &str) -> io::Result<UnixListener> {
    let d = File::open(dir)?;
    let path = via_fd(&d, name);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    UnixListener::bind(&path)
}

/// Connects to the monitor's socket in `dir`.
pub fn connect(dir: &Path, name: &str) -> io::Result<UnixStream> {
    let d = File::open(dir)?;
    UnixStream::connect(via_fd(&d, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_round_trips() {
        let frames = [
            Frame::Hello(Hello {
                stdin: true,
                stdout: true,
                stderr: false,
                start: true,
            }),
            Frame::Stdin(b"hi\n".to_vec()),
            Frame::StdinEof,
            Frame::Resize {
                rows: 40,
                cols: 120,
            },
            Frame::Stdout(vec![0, 255, 10]),
            Frame::Stderr(Vec::new()),
            Frame::Started,
            Frame::Failed {
                code: 127,
                message: "exec: \"x\": not found".into(),
            },
            Frame::Exit(-1),
            Frame::Exit(137),
        ];
        let mut buf = Vec::new();
        for f in &frames {
            f.write_to(&mut buf).unwrap();
        }
        let mut r = &buf[..];
        for f in &frames {
            assert_eq!(Frame::read_from(&mut r).unwrap().as_ref(), Some(f));
        }
        assert_eq!(Frame::read_from(&mut r).unwrap(), None);
    }

    #[test]
    fn truncated_oversized_and_unknown_frames_are_errors() {
        let mut buf = Vec::new();
        Frame::Stdout(b"abcdef".to_vec())
            .write_to(&mut buf)
            .unwrap();
        buf.truncate(8);
        assert!(Frame::read_from(&mut &buf[..]).is_err());
        let huge = [10u8, 0xff, 0xff, 0xff, 0xff];
        assert!(Frame::read_from(&mut &huge[..]).is_err());
        let unknown = [99u8, 0, 0, 0, 0];
        assert!(Frame::read_from(&mut &unknown[..]).is_err());
        let short_exit = [14u8, 0, 0, 0, 1, 7];
        assert!(Frame::read_from(&mut &short_exit[..]).is_err());
    }

    #[test]
    fn sockets_work_under_paths_longer_than_sun_path() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("d".repeat(100)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let l = listen(&deep, "attach.sock").unwrap();
        let mut c = connect(&deep, "attach.sock").unwrap();
        Frame::Exit(3).write_to(&mut c).unwrap();
        let (mut s, _) = l.accept().unwrap();
        assert_eq!(Frame::read_from(&mut s).unwrap(), Some(Frame::Exit(3)));
        // A second listen replaces the stale socket file.
        drop(l);
        listen(&deep, "attach.sock").unwrap();
    }
}
