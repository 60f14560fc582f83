//! `berth attach CONTAINER`: this terminal to a running container's stdio, until it exits
//! or the detach keys are typed (docker's `--detach-keys`, default ctrl-p,ctrl-q); the
//! signals berth gets go to the container with `--sig-proxy` (the default).

use std::io::{self, IsTerminal, Read, Write};
use std::thread;

use anyhow::{Context, Result};
use berth::api::frames::{DetachKeys, DetachWatch, Input};
use berth::ops::containers::{self, AttachOptions, Output};
use berth::ops::OpsError;
use nix::sys::termios;
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
use signal_hook::iterator::Signals;

use super::{Ctx, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Override the key sequence for detaching a container
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    detach_keys: String,
    /// Do not attach STDIN
    #[arg(long)]
    no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    sig_proxy: bool,
    container: String,
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

pub fn run(ctx: &Ctx, a: Args) -> Result<()> {
    let keys = DetachKeys::parse(&a.detach_keys).context("flag --detach-keys")?;
    let mut attached = containers::attach(
        &ctx.engine,
        &a.container,
        AttachOptions {
            stdin: !a.no_stdin,
            ..AttachOptions::default()
        },
    )?;
    let input = attached.input();
    let tty = attached.tty();
    let saved = (tty && io::stdin().is_terminal())
        .then(|| termios::tcgetattr(io::stdin()).ok())
        .flatten();
    if let Some(orig) = &saved {
        let mut raw = orig.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(io::stdin(), termios::SetArg::TCSANOW, &raw);
    }
    let restore = move || {
        if let Some(orig) = &saved {
            let _ = termios::tcsetattr(io::stdin(), termios::SetArg::TCSANOW, orig);
        }
    };
    if tty {
        if let Some((rows, cols)) = window_size() {
            let _ = input.resize(rows, cols);
        }
    }
    let mut signals = Signals::new([SIGWINCH, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2])
        .context("installing signal handlers")?;
    {
        let input = input.clone();
        let sig_proxy = a.sig_proxy;
        thread::spawn(move || {
            for sig in signals.forever() {
                if sig == SIGWINCH {
                    if let (true, Some((rows, cols))) = (tty, window_size()) {
                        let _ = input.resize(rows, cols);
                    }
                } else if sig_proxy {
                    let _ = input.signal(&sig.to_string());
                }
            }
        });
    }
    let (detach_tx, detach_rx) = std::sync::mpsc::channel::<()>();
    if attached.stdin() {
        let input = input.clone();
        thread::spawn(move || {
            let mut watch = DetachWatch::new(keys);
            let mut buf = [0u8; 16 * 1024];
            let mut stdin = io::stdin();
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = input.close_stdin();
                        break;
                    }
                    Ok(n) => match watch.feed(&buf[..n]) {
                        Input::Data(d) => {
                            if !d.is_empty() && input.stdin(&d).is_err() {
                                break;
                            }
                        }
                        Input::Detach(d) => {
                            if !d.is_empty() {
                                let _ = input.stdin(&d);
                            }
                            let _ = detach_tx.send(());
                            break;
                        }
                    },
                }
            }
        });
    }
    // The output on this thread; a detach ends the command at once (the container runs on).
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Result<i32>>();
    thread::spawn(move || {
        let mut out = io::stdout().lock();
        let r = loop {
            match attached.next_output() {
                Ok(Output::Stdout(d)) => {
                    let _ = out.write_all(&d).and_then(|()| out.flush());
                }
                Ok(Output::Stderr(d)) => {
                    let mut e = io::stderr().lock();
                    let _ = e.write_all(&d).and_then(|()| e.flush());
                }
                Ok(Output::Exit(code)) => break Ok(code),
                Err(OpsError::MonitorGone) => {
                    break Err(
                        Exit::with_message(125, "the container's monitor went away".into()).into(),
                    )
                }
                Err(e) => break Err(e.into()),
            }
        };
        let _ = done_tx.send(r);
    });
    loop {
        if detach_rx.try_recv().is_ok() {
            restore();
            eprintln!("read escape sequence");
            return Ok(());
        }
        match done_rx.recv_timeout(std::time::Duration::from_millis(50)) {
            Ok(r) => {
                restore();
                let code = r?;
                if code != 0 {
                    return Err(Exit::silent(code).into());
                }
                return Ok(());
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                restore();
                return Ok(());
            }
        }
    }
}
