//! The container's terminal: a pty made inside the container's devpts instance, its master
//! handed to whoever listens on the console socket (runc's protocol: one message whose data is
//! the pty name and whose SCM_RIGHTS payload is the master fd).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use pathrs::flags::OpenFlags;
use pathrs::Root;

use super::{sys, SetupError};

pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub name: String,
}

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

/// Opens a new pty from the container's /dev/pts/ptmx (resolved inside the rootfs).
pub fn open_in_root(root: &Root) -> Result<Pty, SetupError> {
    let ptmx_path = Path::new("/dev/pts/ptmx");
    let handle = root
        .resolve(ptmx_path)
        .map_err(|source| SetupError::InRoot {
            path: ptmx_path.into(),
            source,
        })?;
    let master: OwnedFd = handle
        .reopen(OpenFlags::O_RDWR | OpenFlags::O_NOCTTY | OpenFlags::O_CLOEXEC)
        .map_err(|source| SetupError::InRoot {
            path: ptmx_path.into(),
            source,
        })?
        .into();
    let fd = master.as_raw_fd();
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int through the valid pointer; fd is a ptmx master.
    if unsafe { libc::ioctl(fd, libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(sys("ioctl", "TIOCSPTLCK")(nix::errno::Errno::last()));
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int through the valid pointer.
    if unsafe { libc::ioctl(fd, libc::TIOCGPTN, &mut n) } < 0 {
        return Err(sys("ioctl", "TIOCGPTN")(nix::errno::Errno::last()));
    }
    // TIOCGPTPEER opens the slave through the master, with no path lookup an attacker could
    // redirect (Linux 4.13+).
    let flags = (OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).bits();
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd or -1.
    let slave = unsafe { libc::ioctl(fd, libc::TIOCGPTPEER, flags) };
    if slave < 0 {
        return Err(sys("ioctl", "TIOCGPTPEER")(nix::errno::Errno::last()));
    }
    Ok(Pty {
        master,
        // SAFETY: `slave` is a fresh descriptor that nothing else owns.
        slave: unsafe { OwnedFd::from_raw_fd(slave) },
        name: format!("/dev/pts/{n}"),
    })
}

/// Makes the process's terminal: a new pty in the container, sized as the config says, its
/// master sent over the console socket. The caller makes the slave its stdio.
pub fn create_for(
    root: &Root,
    process: &oci_spec::runtime::Process,
    console: RawFd,
) -> Result<Pty, SetupError> {
    let pty = open_in_root(root)?;
    if let Some(size) = process.console_size() {
        set_size(
            pty.master.as_raw_fd(),
            size.height() as u16,
            size.width() as u16,
        )?;
    }
    send_master(console, &pty)?;
    Ok(pty)
}

pub fn set_size(fd: RawFd, rows: u16, cols: u16) -> Result<(), SetupError> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: the pointer is to a valid winsize for the duration of the call.
    unsafe { set_winsize(fd, &ws) }.map_err(sys("ioctl", "TIOCSWINSZ"))?;
    Ok(())
}

/// Sends the master over the console socket.
pub fn send_master(socket: RawFd, pty: &Pty) -> Result<(), SetupError> {
    let fds = [pty.master.as_raw_fd()];
    let iov = [IoSlice::new(pty.name.as_bytes())];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(socket, &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(sys("sendmsg", "console socket"))?;
    Ok(())
}

/// Makes the slave the controlling terminal and the stdio of this process.
pub fn make_controlling(slave: &OwnedFd) -> Result<(), SetupError> {
    let fd = slave.as_raw_fd();
    // SAFETY: TIOCSCTTY takes an int argument; we are a session leader (setsid was called).
    if unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) } < 0 {
        return Err(sys("ioctl", "TIOCSCTTY")(nix::errno::Errno::last()));
    }
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors; both fds are valid.
        if unsafe { libc::dup2(fd, target) } < 0 {
            return Err(sys("dup2", format!("pty to fd {target}"))(
                nix::errno::Errno::last(),
            ));
        }
    }
    Ok(())
}
