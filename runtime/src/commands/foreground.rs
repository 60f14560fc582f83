//! What a foreground `run` or `exec` does while the container process lives: forward
//! signals to it, relay its terminal if we own the pty, and report its exit status.

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use signal_hook::consts::signal::*;
use signal_hook::iterator::{Handle, Signals};

/// Signals passed on to the container process (SIGCHLD and SIGWINCH are ours).
///
/// Not SIGPIPE: signal-hook's handler writes to its self-pipe with send(2) without
/// MSG_NOSIGNAL; once `finish` has closed the reading end, every write fails with EPIPE and
/// raises SIGPIPE, which (if it had our handler) writes again: the process spun forever at
/// 100 % CPU (seen under `perf stat -r`). Left alone, SIGPIPE stays ignored as Rust sets it,
/// so a late signal after `finish` costs one failed write.
const FORWARDED: &[i32] = &[
    SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT, SIGTSTP, SIGTTIN,
    SIGTTOU, SIGVTALRM, SIGPROF, SIGURG, SIGIO,
];

/// The forwarded signals as a set, for sigprocmask(2).
fn forwarded_set() -> SigSet {
    let mut set = SigSet::empty();
    for &sig in FORWARDED {
        if let Ok(s) = Signal::try_from(sig) {
            set.add(s);
        }
    }
    set
}

/// Holds the forwarded signals pending from the start of a foreground `run` or `exec` until
/// [`Forwarder::install`]: otherwise a SIGTERM or SIGINT arriving while the container is being
/// created kills the runtime halfway and leaves the container behind, with nobody to forward
/// to or reap it. Called while the process is single-threaded, so the mask covers everything
/// it becomes; the container's processes start with an empty mask (reset_inherited).
pub fn hold_signals() -> Result<()> {
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded_set()), None)
        .context("blocking signals until they can be forwarded")
}

/// A thread that forwards our signals to `pid` (and window size changes to the pty).
pub struct Forwarder {
    handle: Handle,
    thread: std::thread::JoinHandle<()>,
}

impl Forwarder {
    pub fn install(pid: Pid, master: Option<RawFd>) -> Result<Forwarder> {
        let mut signals = Signals::new(FORWARDED.iter().copied().chain([SIGWINCH]))
            .context("installing signal handlers")?;
        let handle = signals.handle();
        let thread = std::thread::spawn(move || {
            for sig in signals.forever() {
                if sig == SIGWINCH {
                    if let Some(fd) = master {
                        copy_winsize(0, fd);
                    }
                } else {
                    // SAFETY: kill(2) with a pid and signal number.
                    unsafe { libc::kill(pid.as_raw(), sig) };
                }
            }
        });
        // Signals held since hold_signals (pending ones now) reach the handlers from here on.
        sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&forwarded_set()), None)
            .context("unblocking forwarded signals")?;
        Ok(Forwarder { handle, thread })
    }

    pub fn finish(self) {
        self.handle.close();
        let _ = self.thread.join();
    }
}

/// Relays the terminal (if any) and waits for `pid`, our child; returns its exit status in
/// shell form (128+N for signal N).
pub fn supervise(pid: Pid, master: Option<OwnedFd>) -> u8 {
    let restore = master.as_ref().and_then(|m| {
        use std::os::fd::AsRawFd;
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
    code
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

pub fn receive_master(sock: RawFd) -> Result<OwnedFd> {
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
