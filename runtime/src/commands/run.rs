//! `run`: create + start, then (unless detached) stay as the container's parent: forward
//! signals, proxy the terminal if we own it, and exit with the container's exit status.

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth_runtime::container;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use signal_hook::consts::signal::*;
use signal_hook::iterator::Signals;

use crate::Global;

#[derive(Debug, clap::Args)]
#[group(id = "run-args")]
pub struct Args {
    #[command(flatten)]
    pub create: super::create::Args,
    /// Return after starting; the container keeps running
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long = "keep")]
    pub keep: bool,
}

/// Signals a foreground `run` passes on to the container (SIGCHLD and SIGWINCH are ours).
const FORWARDED: &[i32] = &[
    SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT, SIGTSTP, SIGTTIN,
    SIGTTOU, SIGPIPE, SIGVTALRM, SIGPROF, SIGURG, SIGIO,
];

pub fn run(g: &Global, args: Args) -> Result<u8> {
    let id = args.create.id.clone();
    let bundle_terminal = terminal_requested(&args.create.bundle);
    let own_tty = bundle_terminal && args.create.console_socket.is_none();
    if own_tty && args.detach {
        bail!("cannot allocate a tty when detaching without --console-socket");
    }
    let mut opts = args.create.options(g);
    let mut console_ours = None;
    if own_tty {
        let (ours, theirs) = UnixStream::pair().context("creating console socket pair")?;
        opts.console_fd = Some(theirs.into());
        console_ours = Some(ours);
    }
    let created = container::create(opts)?;
    let pid = Pid::from_raw(created.state.pid);
    drop(created); // release the state lock so `start` can take it
    let master = match &console_ours {
        Some(sock) => Some(receive_master(sock.as_raw_fd()).context("receiving the pty master")?),
        None => None,
    };

    let mut signals = Signals::new(FORWARDED.iter().copied().chain([SIGWINCH]))
        .context("installing signal handlers")?;
    let master_fd = master.as_ref().map(|m| m.as_raw_fd());
    let handle = signals.handle();
    let forwarder = std::thread::spawn(move || {
        for sig in signals.forever() {
            if sig == SIGWINCH {
                if let Some(fd) = master_fd {
                    copy_winsize(0, fd);
                }
            } else {
                // SAFETY: kill(2) with a pid and signal number.
                unsafe { libc::kill(pid.as_raw(), sig) };
            }
        }
    });

    if let Err(e) = container::start(&g.root, &id) {
        let _ = container::delete(&g.root, &id, true);
        let _ = waitpid(pid, None);
        return Err(e.into());
    }
    if args.detach {
        handle.close();
        let _ = forwarder.join();
        return Ok(0);
    }
    let restore = master.as_ref().and_then(|m| {
        copy_winsize(0, m.as_raw_fd());
        make_raw(0)
    });
    if let Some(m) = master {
        proxy(m);
    }
    let code = wait_exit(pid);
    if let Some(t) = restore {
        let _ = termios::tcsetattr(std::io::stdin(), termios::SetArg::TCSANOW, &t);
    }
    handle.close();
    let _ = forwarder.join();
    if !args.keep {
        container::delete(&g.root, &id, true)
            .with_context(|| format!("deleting container {id} after it exited"))?;
    }
    Ok(code)
}

fn terminal_requested(bundle: &std::path::Path) -> bool {
    let read = || -> Option<bool> {
        let text = std::fs::read(PathBuf::from(bundle).join("config.json")).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
        v["process"]["terminal"].as_bool()
    };
    read().unwrap_or(false)
}

/// Waits for the init (our child) and maps its end to a shell-style exit code.
fn wait_exit(pid: Pid) -> u8 {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return code as u8,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128u8.wrapping_add(sig as u8),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

fn receive_master(sock: RawFd) -> Result<OwnedFd> {
    let mut name = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    bail!("the container sent no pty master")
}

fn copy_winsize(from: RawFd, to: RawFd) {
    let mut ws: libc::winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read and write a winsize through a valid pointer.
    unsafe {
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Puts our terminal in raw mode so keystrokes reach the container unprocessed.
fn make_raw(fd: RawFd) -> Option<termios::Termios> {
    // SAFETY: borrowing stdin's descriptor for the duration of the calls.
    let stdin = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let orig = termios::tcgetattr(stdin).ok()?;
    let mut raw = orig.clone();
    termios::cfmakeraw(&mut raw);
    termios::tcsetattr(stdin, termios::SetArg::TCSANOW, &raw).ok()?;
    Some(orig)
}

/// Copies stdin to the pty and the pty to stdout until the container side closes.
fn proxy(master: OwnedFd) {
    let mut input = match master.try_clone() {
        Ok(fd) => std::fs::File::from(fd),
        Err(_) => return,
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || input.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let mut output = std::fs::File::from(master);
    let mut stdout = std::io::stdout();
    let mut buf = [0u8; 8192];
    // Reading a pty master whose slave side is closed fails with EIO: that is the end.
    while let Ok(n) = output.read(&mut buf) {
        if n == 0 || stdout.write_all(&buf[..n]).is_err() {
            break;
        }
        let _ = stdout.flush();
    }
}
