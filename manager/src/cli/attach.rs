//! The client end of a monitor connection: the container's output to our stdout/stderr,
//! our stdin to the container, the terminal in raw mode with resizes for `-t`, and signals
//! forwarded to the container (docker's `--sig-proxy`).

use std::io::{self, IsTerminal, Read, Write};
use std::thread;

use anyhow::{Context, Result};
use berth::ops::containers::{Attached, Output};
use berth::ops::OpsError;
use nix::sys::termios;
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
use signal_hook::iterator::Signals;

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

/// Streams an attached container to this terminal until it exits; returns its exit status.
/// A failed start becomes an error carrying docker's exit status. With `sig_proxy`, the
/// signals this process gets are sent to the container.
/// Which output streams a client shows (`run -a`); the others still go to the log.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    pub stdout: bool,
    pub stderr: bool,
}

impl Shown {
    pub const ALL: Shown = Shown {
        stdout: true,
        stderr: true,
    };
}

pub fn stream(mut attached: Attached, sig_proxy: bool, shown: Shown) -> Result<i32> {
    let input = attached.input();
    let tty = attached.tty();
    let terminal = tty && io::stdin().is_terminal();
    let _raw = if terminal { make_raw() } else { None };
    if tty {
        if let Some((rows, cols)) = window_size() {
            let _ = input.resize(rows, cols);
        }
    }
    let mut signals = Signals::new([SIGWINCH, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2])
        .context("installing signal handlers")?;
    let handle = signals.handle();
    {
        let input = input.clone();
        thread::spawn(move || {
            for sig in signals.forever() {
                if sig == SIGWINCH {
                    if let (true, Some((rows, cols))) = (tty, window_size()) {
                        let _ = input.resize(rows, cols);
                    }
                    continue;
                }
                if sig_proxy {
                    let _ = input.signal(&sig.to_string());
                }
            }
        });
    }
    if attached.stdin() {
        let input = input.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            let mut stdin = io::stdin();
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = input.close_stdin();
                        break;
                    }
                    Ok(n) => {
                        if input.stdin(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
    let result = pump(&mut attached, shown);
    handle.close();
    drop(attached);
    result
}

fn pump(attached: &mut Attached, shown: Shown) -> Result<i32> {
    let mut out = io::stdout().lock();
    loop {
        let next = match attached.next_output() {
            Ok(o) => o,
            Err(OpsError::StartFailed { code, message }) => {
                return Err(super::Exit::with_message(code, message).into())
            }
            Err(OpsError::MonitorGone) => {
                return Err(super::Exit::with_message(
                    125,
                    "the container's monitor went away".into(),
                )
                .into())
            }
            Err(e) => return Err(e.into()),
        };
        match next {
            Output::Stdout(_) if !shown.stdout => {}
            Output::Stderr(_) if !shown.stderr => {}
            Output::Stdout(d) => {
                out.write_all(&d)?;
                out.flush()?;
            }
            Output::Stderr(d) => {
                let mut e = io::stderr().lock();
                e.write_all(&d)?;
                e.flush()?;
            }
            Output::Exit(code) => return Ok(code),
        }
    }
}
