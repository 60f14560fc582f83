//! What a foreground `run` or `exec` does while the container process lives: forward
//! signals to it, relay its terminal if we own the pty, and report its exit status.
//!
//! One thread and a signalfd(2): the signals to forward, SIGCHLD and SIGWINCH are blocked from
//! the start of the command ([`hold_signals`]), so one that arrives while the container is
//! still being created waits instead of killing the runtime halfway (which would leave the
//! container behind); [`supervise`] then reads them, pending ones first, in one poll(2) loop
//! with the pty. No handler ever runs, so nothing is async-signal constrained.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Signals passed on to the container process (SIGCHLD and SIGWINCH are ours; SIGPIPE stays
/// ignored, as Rust sets it).
const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
    Signal::SIGURG,
    Signal::SIGIO,
];

/// Everything [`supervise`] reads from its signalfd.
fn held_set() -> SigSet {
    let mut set = SigSet::empty();
    for &sig in FORWARDED.iter().chain(&[Signal::SIGCHLD, Signal::SIGWINCH]) {
        set.add(sig);
    }
    set
}

/// Blocks the signals [`supervise`] handles, at the start of a foreground `run` or `exec`,
/// while the process is single-threaded (so the mask covers everything it becomes). They stay
/// pending until `supervise` reads them. The container's processes start with an empty mask
/// (process::reset_inherited), and so do hooks (std's Command resets it).
pub fn hold_signals() -> Result<()> {
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&held_set()), None)
        .context("blocking signals until they can be forwarded")
}

/// Forwards signals to `pid` (our child), relays the terminal if we own the pty, and waits
/// for `pid` to end; returns its exit status in shell form (128+N for signal N).
pub fn supervise(pid: Pid, master: Option<OwnedFd>) -> Result<u8> {
    let signals = SignalFd::with_flags(&held_set(), SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("creating a signalfd")?;
    let restore = master.as_ref().and_then(|m| {
        copy_winsize(0, m.as_raw_fd());
        make_raw(0)
    });
    let code = relay(pid, &signals, master.as_ref());
    if let Some(t) = restore {
        let _ = termios::tcsetattr(std::io::stdin(), termios::SetArg::TCSANOW, &t);
    }
    code
}

fn relay(pid: Pid, signals: &SignalFd, master: Option<&OwnedFd>) -> Result<u8> {
    // SAFETY: stdin stays open for the life of the process; borrowed for the loop.
    let stdin = unsafe { BorrowedFd::borrow_raw(0) };
    let mut master_open = master.is_some();
    let mut stdin_open = master.is_some();
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let (Some(m), true) = (master, master_open) {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            other => other.context("waiting for signals and terminal input")?,
        };
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (sig_ready, master_ready) = (ready(0), master_open && ready(1));
        let stdin_ready = stdin_open && ready(if master_open { 2 } else { 1 });
        drop(fds);
        if master_ready {
            if let Some(m) = master {
                // Reading a pty master whose slave side is closed fails with EIO: the end.
                master_open = copy_once(m.as_raw_fd(), 1, &mut buf);
            }
        }
        if stdin_ready {
            if let Some(m) = master {
                stdin_open = copy_once(0, m.as_raw_fd(), &mut buf);
            }
        }
        if !sig_ready {
            continue;
        }
        while let Some(info) = signals.read_signal().context("reading the signalfd")? {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => {
                    if let Some(code) = reaped(pid)? {
                        if let Some(m) = master.filter(|_| master_open) {
                            drain(m.as_raw_fd(), &mut buf);
                        }
                        return Ok(code);
                    }
                }
                Ok(Signal::SIGWINCH) => {
                    if let Some(m) = master {
                        copy_winsize(0, m.as_raw_fd());
                    }
                }
                Ok(sig) => {
                    // The process may be gone already; its SIGCHLD is then on its way.
                    let _ = kill(pid, sig);
                }
                Err(_) => {}
            }
        }
    }
}

/// The exit status of `pid` if it has ended (without blocking).
fn reaped(pid: Pid) -> Result<Option<u8>> {
    loop {
        return match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Ok(Some(code as u8)),
            Ok(WaitStatus::Signaled(_, sig, _)) => Ok(Some(128u8.wrapping_add(sig as u8))),
            Ok(_) => Ok(None),
            Err(Errno::EINTR) => continue,
            Err(e) => Err(e).context("waiting for the container process"),
        };
    }
}

/// One read from `from` written to `to`; false once `from` is done (EOF, EIO) or `to` fails.
fn copy_once(from: RawFd, to: RawFd, buf: &mut [u8]) -> bool {
    // SAFETY: both descriptors stay open for the whole relay; borrowed for this call only.
    let (src, dst) = unsafe { (BorrowedFd::borrow_raw(from), BorrowedFd::borrow_raw(to)) };
    let n = match nix::unistd::read(src, buf) {
        Ok(0) | Err(_) => return false,
        Ok(n) => n,
    };
    let mut rest = &buf[..n];
    while !rest.is_empty() {
        match nix::unistd::write(dst, rest) {
            Ok(0) => return false,
            Ok(k) => rest = &rest[k..],
            Err(Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
    true
}

/// After the container process ended: what its terminal still holds goes to stdout.
fn drain(master: RawFd, buf: &mut [u8]) {
    loop {
        // SAFETY: borrowing the master for a zero-timeout poll.
        let fd = unsafe { BorrowedFd::borrow_raw(master) };
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) if n > 0 && copy_once(master, 1, buf) => continue,
            _ => return,
        }
    }
}

pub fn receive_master(sock: RawFd) -> Result<OwnedFd> {
    let mut name = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us.
                let master = unsafe { OwnedFd::from_raw_fd(*fd) };
                clear_onlcr(&master);
                return Ok(master);
            }
        }
    }
    bail!("the container sent no pty master")
}

/// The container's output is relayed as it is written: without ONLCR the pty does not turn
/// "\n" into "\r\n" on the way (runc clears it too), so `run` prints what a pipe would.
fn clear_onlcr(master: &OwnedFd) {
    if let Ok(mut t) = termios::tcgetattr(master) {
        t.output_flags.remove(termios::OutputFlags::ONLCR);
        let _ = termios::tcsetattr(master, termios::SetArg::TCSANOW, &t);
    }
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
