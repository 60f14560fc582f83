//! A client's connection to a running (or starting) container's stdio, through its
//! monitor: the container's output as typed chunks until its exit status, and an input
//! handle for stdin, terminal resizes and signals. Blocking; an async server reads it on a
//! blocking thread (the socket also converts to tokio's `UnixStream`).

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::container::attach::{self, Frame, Hello};
use crate::container::lifecycle::{self, monitor_alive, Paths};
use crate::container::monitor::SOCKET;
use crate::container::runtime::Runtime;
use crate::container::Status;
use crate::ops::cancel::{check, Cancel};
use crate::ops::error::{OpsError, Result};
use crate::ops::Engine;

/// Which streams to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl Default for AttachOptions {
    fn default() -> Self {
        Self {
            stdin: false,
            stdout: true,
            stderr: true,
        }
    }
}

/// One piece of what the container does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The container exited with this status (128+N for signal N).
    Exit(i32),
}

/// An attached container's stream.
pub struct Attached {
    id: String,
    tty: bool,
    stdin: bool,
    reader: UnixStream,
    input: AttachInput,
    /// A monitor this process spawned, waited for when the stream is done.
    monitor_pid: i32,
}

/// Sends input to an attached container; cheap to clone into other threads.
#[derive(Clone)]
pub struct AttachInput {
    id: String,
    /// docker's rule: a client's input ending closes the container's stdin only when the
    /// container was made with StdinOnce and without a terminal.
    close_on_eof: bool,
    writer: Arc<Mutex<UnixStream>>,
    runtime: Runtime,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AttachInput {
    /// Bytes for the container's stdin.
    pub fn stdin(&self, data: &[u8]) -> Result<()> {
        Frame::Stdin(data.to_vec())
            .write_to(&mut *lock(&self.writer))
            .map_err(OpsError::MonitorTalk)
    }

    /// The client's input ended: closes the container's stdin when docker would (StdinOnce
    /// and no terminal); otherwise the container's stdin stays open for the next client.
    pub fn close_stdin(&self) -> Result<()> {
        if !self.close_on_eof {
            return Ok(());
        }
        Frame::StdinEof
            .write_to(&mut *lock(&self.writer))
            .map_err(OpsError::MonitorTalk)
    }

    /// The terminal's new size (`-t`).
    pub fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        Frame::Resize { rows, cols }
            .write_to(&mut *lock(&self.writer))
            .map_err(OpsError::MonitorTalk)
    }

    /// Sends a signal to the container's process (docker's `--sig-proxy`); the container's
    /// restart policy is left as it is.
    pub fn signal(&self, signal: &str) -> Result<()> {
        Ok(self.runtime.kill(&self.id, signal, false)?)
    }
}

impl Attached {
    /// Connects to the container's monitor and says hello; `start` asks a created
    /// container's monitor to start it once this client is attached.
    pub(crate) fn connect(
        paths: &Paths,
        record: &crate::container::Record,
        opts: AttachOptions,
        start: bool,
        monitor_pid: i32,
    ) -> Result<Self> {
        let conn =
            attach::connect(&paths.dir, SOCKET).map_err(|source| OpsError::MonitorConnect {
                id: record.id.clone(),
                source,
            })?;
        let writer = conn.try_clone().map_err(OpsError::MonitorTalk)?;
        let stdin = opts.stdin && record.config.open_stdin;
        Frame::Hello(Hello {
            stdin,
            stdout: opts.stdout,
            stderr: opts.stderr,
            start,
        })
        .write_to(&mut &writer)
        .map_err(OpsError::MonitorTalk)?;
        Ok(Self {
            id: record.id.clone(),
            tty: record.config.tty,
            stdin,
            reader: conn,
            input: AttachInput {
                id: record.id.clone(),
                close_on_eof: record.config.stdin_once && !record.config.tty,
                writer: Arc::new(Mutex::new(writer)),
                runtime: paths.runtime(record),
            },
            monitor_pid,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the container has a terminal (output is one raw stream).
    pub fn tty(&self) -> bool {
        self.tty
    }

    /// Whether the container reads this client's stdin.
    pub fn stdin(&self) -> bool {
        self.stdin
    }

    pub fn input(&self) -> AttachInput {
        self.input.clone()
    }

    /// The next output, or the exit status (then the stream is done). A start that failed
    /// is [`OpsError::StartFailed`] with docker's exit status; a monitor that went away
    /// without a status is [`OpsError::MonitorGone`].
    pub fn next_output(&mut self) -> Result<Output> {
        loop {
            match Frame::read_from(&mut self.reader).map_err(OpsError::MonitorRead)? {
                Some(Frame::Stdout(d)) => return Ok(Output::Stdout(d)),
                Some(Frame::Stderr(d)) => return Ok(Output::Stderr(d)),
                Some(Frame::Exit(code)) => return Ok(Output::Exit(code)),
                Some(Frame::Failed { code, message }) => {
                    return Err(OpsError::StartFailed { code, message })
                }
                Some(_) => {}
                None => return Err(OpsError::MonitorGone),
            }
        }
    }

    /// Like [`Self::next_output`], but gives up with [`OpsError::Cancelled`] once `cancel`
    /// is cancelled (checked at least every 100 ms while no output comes).
    pub fn next_output_or_cancel(&mut self, cancel: &Cancel) -> Result<Output> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        loop {
            check(cancel)?;
            let mut fds = [PollFd::new(self.reader.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => return self.next_output(),
                Err(e) => return Err(OpsError::MonitorRead(e.into())),
            }
        }
    }

    /// Reads to the end: the exit status, with the output given to `out`.
    pub fn wait(mut self, mut out: impl FnMut(Output)) -> Result<i32> {
        loop {
            match self.next_output()? {
                Output::Exit(code) => return Ok(code),
                o => out(o),
            }
        }
    }

    /// The connection, for a caller that streams it itself (e.g. as a tokio `UnixStream`
    /// speaking the monitor's frames); a monitor this process spawned is then the caller's
    /// to wait for.
    pub fn into_stream(mut self) -> Result<UnixStream> {
        self.monitor_pid = 0;
        self.reader.try_clone().map_err(OpsError::MonitorRead)
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        lifecycle::reap_monitor(self.monitor_pid);
    }
}

/// `POST /containers/{id}/attach`: attaches to a running container.
pub fn attach(engine: &Engine, what: &str, opts: AttachOptions) -> Result<Attached> {
    let (store, r) = super::find(engine, what)?;
    if !matches!(r.state.status, Status::Running | Status::Paused) || !monitor_alive(&r) {
        return Err(OpsError::NotRunning { id: r.id });
    }
    let paths = Paths::new(engine.root(), &store, &r);
    Attached::connect(&paths, &r, opts, false, 0)
}
