//! The client end of a monitor connection: the container's output to our stdout/stderr,
//! our stdin to the container, the terminal in raw mode with resizes for `-t`, and signals
//! forwarded to the container (docker's `--sig-proxy`).

use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{Context, Result};
use berth::container::attach::{Frame, Hello};
use berth::container::runtime::Runtime;
use nix::sys::termios;
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
use signal_hook::iterator::Signals;

/// How to attach.
pub struct Attach {
    pub stdin: bool,
    pub tty: bool,
    /// Forward our signals to the container through the runtime.
    pub sig_proxy: Option<(Runtime, String)>,
}

/// The terminal's mode, restored on drop.
struct RawMode(termios::Termios);

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin(), termios::SetArg::TCSANOW, &self.0);
    }
}

fn make_raw() -> Option<RawMode> {
    let orig = termios::tcgetattr(io::stdin()).ok()?;
    let mut raw = orig.clone();
    termios::cfmakeraw(&mut raw);
    termios::tcsetattr(io::stdin(), termios::SetArg::TCSANOW, &raw).ok()?;
    Some(RawMode(orig))
}

fn window_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize through a valid pointer; fd 0 is borrowed.
    let rc = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Sends `hello` and streams until the container exits; returns its exit status. A Failed
/// frame (the start failed) becomes an error carrying docker's exit status.
pub fn stream(conn: UnixStream, hello: Hello, opts: Attach) -> Result<i32> {
    let writer = Arc::new(Mutex::new(conn.try_clone().context("cloning the socket")?));
    Frame::Hello(hello)
        .write_to(&mut *lock(&writer))
        .context("talking to the container's monitor")?;
    let terminal = opts.tty && io::stdin().is_terminal();
    let _raw = if terminal { make_raw() } else { None };
    if opts.tty {
        if let Some((rows, cols)) = window_size() {
            let _ = Frame::Resize { rows, cols }.write_to(&mut *lock(&writer));
        }
    }
    let mut signals = Signals::new([SIGWINCH, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2])
        .context("installing signal handlers")?;
    let handle = signals.handle();
    {
        let writer = writer.clone();
        let proxy = opts.sig_proxy;
        let tty = opts.tty;
        thread::spawn(move || {
            for sig in signals.forever() {
                if sig == SIGWINCH {
                    if let (true, Some((rows, cols))) = (tty, window_size()) {
                        let _ = Frame::Resize { rows, cols }.write_to(&mut *lock(&writer));
                    }
                    continue;
                }
                if let Some((runtime, id)) = &proxy {
                    let _ = runtime.kill(id, &sig.to_string(), false);
                }
            }
        });
    }
    if opts.stdin {
        let writer = writer.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            let mut stdin = io::stdin();
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = Frame::StdinEof.write_to(&mut *lock(&writer));
                        break;
                    }
                    Ok(n) => {
                        if Frame::Stdin(buf[..n].to_vec())
                            .write_to(&mut *lock(&writer))
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
    }
    let result = pump(conn);
    handle.close();
    result
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn pump(mut conn: UnixStream) -> Result<i32> {
    let mut out = io::stdout().lock();
    loop {
        match Frame::read_from(&mut conn).context("reading from the container's monitor")? {
            Some(Frame::Stdout(d)) => {
                out.write_all(&d)?;
                out.flush()?;
            }
            Some(Frame::Stderr(d)) => {
                let mut e = io::stderr().lock();
                e.write_all(&d)?;
                e.flush()?;
            }
            Some(Frame::Exit(code)) => return Ok(code),
            Some(Frame::Failed { code, message }) => {
                return Err(super::Exit::with_message(code, message).into())
            }
            Some(_) => {}
            None => {
                return Err(super::Exit::with_message(
                    125,
                    "the container's monitor went away".into(),
                )
                .into())
            }
        }
    }
}
