//! `tmpcopyup` (runc's extension for tmpfs mounts): the new tmpfs starts with a copy of the
//! directory it covers, owners and modes kept, as podman asks for its tmpfs volumes.
//!
//! The copy works on descriptors only (openat, mkdirat, symlinkat, ... relative to the two
//! directories), never following a symlink of the image, so an image cannot send it outside
//! the rootfs.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmodat, fstatat, mkdirat, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, Gid, Uid};
use pathrs::Handle;

use super::super::{sys, SetupError};

/// Opens the directory behind an O_PATH handle for reading (through /proc/self/fd).
pub(super) fn open_dir(handle: &Handle, dest: &Path) -> Result<OwnedFd, SetupError> {
    let path = super::fd_path(handle);
    nix::fcntl::open(
        path.as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open", format!("{} (tmpcopyup)", dest.display())))
}

/// Copies everything in `from` into `to` (the fresh tmpfs), and gives `to` the owner and
/// mode of `from`.
pub(super) fn copy_tree(from: &OwnedFd, to: &OwnedFd, dest: &Path) -> Result<(), SetupError> {
    let err = |what: &str| sys("tmpcopyup", format!("{what} in {}", dest.display()));
    copy_dir(from.as_fd(), to.as_fd(), dest)?;
    let st = nix::sys::stat::fstat(from.as_fd()).map_err(err("fstat"))?;
    nix::unistd::fchown(
        to.as_fd(),
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
    .map_err(err("fchown"))?;
    nix::sys::stat::fchmod(to.as_fd(), Mode::from_bits_truncate(st.st_mode & 0o7777))
        .map_err(err("fchmod"))
}

fn copy_dir(from: BorrowedFd, to: BorrowedFd, dest: &Path) -> Result<(), SetupError> {
    let err = |what: String| sys("tmpcopyup", format!("{what} in {}", dest.display()));
    // Dir takes ownership of its descriptor: give it a duplicate.
    let dup = from
        .try_clone_to_owned()
        .map_err(|e| err("dup".into())(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF))))?;
    let mut dir = Dir::from_fd(dup).map_err(err("reading the directory".into()))?;
    for entry in dir.iter() {
        let entry = entry.map_err(err("reading the directory".into()))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let shown = name.to_string_lossy();
        let st = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(err(format!("stat {shown}")))?;
        let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
        let kind = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT);
        if kind == SFlag::S_IFDIR {
            mkdirat(to, name, mode).map_err(err(format!("mkdir {shown}")))?;
            let open = |fd: BorrowedFd| {
                openat(
                    fd,
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(err(format!("open {shown}")))
            };
            let (sub_from, sub_to) = (open(from)?, open(to)?);
            copy_dir(sub_from.as_fd(), sub_to.as_fd(), dest)?;
        } else if kind == SFlag::S_IFREG {
            let src = openat(
                from,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(err(format!("open {shown}")))?;
            let dst = openat(
                to,
                name,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
                mode,
            )
            .map_err(err(format!("create {shown}")))?;
            let (mut src, mut dst) = (File::from(src), File::from(dst));
            io::copy(&mut src, &mut dst).map_err(|e| {
                err(format!("copy {shown}"))(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
            })?;
        } else if kind == SFlag::S_IFLNK {
            let target = readlinkat(from, name).map_err(err(format!("readlink {shown}")))?;
            symlinkat(target.as_os_str(), to, name).map_err(err(format!("symlink {shown}")))?;
        } else {
            // Fifos, sockets and device nodes: the same kind of node.
            mknodat(to, name, kind, mode, st.st_rdev).map_err(err(format!("mknod {shown}")))?;
        }
        fchownat(
            to,
            name,
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(err(format!("chown {shown}")))?;
        if kind != SFlag::S_IFLNK {
            // After the chown, which clears set-id bits.
            fchmodat(to, name, mode, FchmodatFlags::NoFollowSymlink)
                .map_err(err(format!("chmod {shown}")))?;
        }
    }
    Ok(())
}
