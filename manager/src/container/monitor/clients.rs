//! The monitor's clients: the container's output copied to the log and to attached
//! clients, and each client's connection served (stdin, resizes, the exit status).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread;

use super::super::attach::Frame;
use super::{Client, Shared};
use crate::logs::Stream;

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Copies one output stream of the container to the log and to attached clients.
pub(super) fn pump(stream: Stream, mut file: File, shared: &Shared) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // EIO: the pty's last slave end closed.
            Err(_) => break,
        };
        let data = &buf[..n];
        let _ = lock(&shared.log).write(stream, data);
        let frame = match stream {
            Stream::Stdout => Frame::Stdout(data.to_vec()),
            Stream::Stderr => Frame::Stderr(data.to_vec()),
        };
        let mut clients = lock(&shared.clients);
        clients.retain_mut(|c| {
            let wanted = match stream {
                Stream::Stdout => c.hello.stdout,
                Stream::Stderr => c.hello.stderr,
            };
            !wanted || frame.write_to(&mut c.stream).is_ok()
        });
    }
    let _ = lock(&shared.log).flush();
}

/// Sends the exit status to every client and forgets them.
pub(super) fn broadcast_exit(shared: &Shared, code: i32) {
    *lock(&shared.exit) = Some(code);
    let mut clients = lock(&shared.clients);
    for c in clients.iter_mut() {
        let _ = Frame::Exit(code).write_to(&mut c.stream);
    }
    clients.clear();
}

/// Answers clients still waiting for a start that will not happen.
pub(super) fn fail_waiting(
    shared: &Shared,
    code: i32,
    message: &str,
    start_rx: &Receiver<UnixStream>,
) {
    *lock(&shared.exit) = Some(code);
    while let Ok(mut c) = start_rx.try_recv() {
        let _ = Frame::Failed {
            code,
            message: message.to_string(),
        }
        .write_to(&mut c);
    }
}

pub(super) fn accept_loop(listener: UnixListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let shared = shared.clone();
        thread::spawn(move || serve(conn, &shared));
    }
}

/// One client: registers it for output, feeds its stdin and resizes to the container.
pub(super) fn serve(mut conn: UnixStream, shared: &Shared) {
    let hello = match Frame::read_from(&mut conn) {
        Ok(Some(Frame::Hello(h))) => h,
        _ => return,
    };
    let Ok(writer) = conn.try_clone() else { return };
    if let Some(code) = *lock(&shared.exit) {
        if !hello.start {
            let mut w = writer;
            let _ = Frame::Exit(code).write_to(&mut w);
            return;
        }
    }
    lock(&shared.clients).push(Client {
        stream: writer,
        hello,
    });
    if hello.start {
        if let Ok(c) = conn.try_clone() {
            let _ = lock(&shared.start_tx).send(c);
        }
    }
    loop {
        match Frame::read_from(&mut conn) {
            Ok(Some(Frame::Stdin(data))) if hello.stdin => {
                if let Some(w) = lock(&shared.stdin).as_mut() {
                    let _ = w.write_all(&data);
                }
            }
            Ok(Some(Frame::StdinEof)) if hello.stdin => {
                // Closing the pipe gives the container EOF; on a pty, send ^D instead.
                let mut stdin = lock(&shared.stdin);
                if lock(&shared.pty).is_some() {
                    if let Some(w) = stdin.as_mut() {
                        let _ = w.write_all(&[4]);
                    }
                } else {
                    *stdin = None;
                }
            }
            Ok(Some(Frame::Resize { rows, cols })) => {
                if let Some(pty) = lock(&shared.pty).as_ref() {
                    resize(pty.as_fd(), rows, cols);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
}

/// Sets the pty's window size (tty_ioctl(4), TIOCSWINSZ).
pub fn resize(pty: std::os::fd::BorrowedFd<'_>, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize through a valid pointer from a live descriptor.
    unsafe {
        libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &ws);
    }
}
