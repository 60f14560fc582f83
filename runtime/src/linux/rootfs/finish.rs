//! What follows the mounts: masked and read-only paths, the console, the read-only root, and
//! the switch into the new root (pivot_root, or MS_MOVE + chroot for --no-pivot).

use std::fs::{self, File};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use oci_spec::runtime::Spec;
use pathrs::{Handle, Root};

use super::super::mount::propagation_flag;
use super::super::{inroot, sys, SetupError};
use super::{do_mount, fd_path, in_root, make_target, remount};

/// Masks paths: a directory gets an empty read-only tmpfs, anything else the container's own
/// /dev/null on top (as runc: the mask then lives on the container's devices, not the host's
/// devtmpfs). Paths that do not exist in the image are skipped.
pub fn mask_paths(spec: &Spec, root: &Root) -> Result<(), SetupError> {
    let paths = spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().as_ref());
    // Looked up on the first file to mask: Some(None) means the host's /dev/null.
    let mut null: Option<Option<Handle>> = None;
    for p in paths.into_iter().flatten() {
        let path = Path::new(p);
        // Masking what the image does not have (or cannot be resolved) is a no-op.
        let Ok(Some(handle)) = inroot::resolve(root, path) else {
            continue;
        };
        let is_dir = handle_is_dir(&handle);
        if is_dir {
            do_mount(
                Some("tmpfs"),
                &fd_path(&handle),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
                &path.display(),
            )?;
        } else {
            let source = match null.get_or_insert_with(|| container_null(root)) {
                Some(h) => fd_path(&*h),
                None => "/dev/null".to_string(),
            };
            do_mount(
                Some(&source),
                &fd_path(&handle),
                None,
                MsFlags::MS_BIND,
                None,
                &path.display(),
            )?;
        }
    }
    Ok(())
}

/// The container's /dev/null, if it is the null device (else the host's is used).
fn container_null(root: &Root) -> Option<Handle> {
    let handle = inroot::resolve(root, Path::new("/dev/null"))
        .ok()
        .flatten()?;
    let is_null = nix::sys::stat::fstat(handle.as_fd()).is_ok_and(|st| {
        st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == nix::sys::stat::makedev(1, 3)
    });
    is_null.then_some(handle)
}

/// Makes paths read-only: bind each onto itself, then remount read-only.
pub fn readonly_paths(spec: &Spec, root: &Root) -> Result<(), SetupError> {
    let paths = spec
        .linux()
        .as_ref()
        .and_then(|l| l.readonly_paths().as_ref());
    for p in paths.into_iter().flatten() {
        let path = Path::new(p);
        let Ok(Some(handle)) = inroot::resolve(root, path) else {
            continue;
        };
        let fdp = fd_path(&handle);
        do_mount(
            Some(&fdp),
            &fdp,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
            &path.display(),
        )?;
        let mounted = root.resolve(path).map_err(in_root(path))?;
        remount(
            &mounted,
            MsFlags::MS_BIND
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            path,
        )?;
    }
    Ok(())
}

fn handle_is_dir(handle: &Handle) -> bool {
    nix::sys::stat::fstat(handle.as_fd()).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Remounts the root read-only (`root.readonly`).
pub fn readonly_root(rootfs: &Path) -> Result<(), SetupError> {
    let handle = Root::open(rootfs).map_err(in_root(rootfs))?;
    let h = handle.resolve("/").map_err(in_root(rootfs))?;
    remount(&h, MsFlags::MS_BIND | MsFlags::MS_RDONLY, Path::new("/"))
}

/// Binds the console's pty slave onto /dev/console.
pub fn bind_console(root: &Root, slave: &OwnedFd) -> Result<(), SetupError> {
    let dest = Path::new("/dev/console");
    let target = make_target(root, dest, true)?;
    do_mount(
        Some(&fd_path(slave)),
        &fd_path(&target),
        None,
        MsFlags::MS_BIND,
        None,
        &dest.display(),
    )
}

/// Switches the root with pivot_root(2): new and old root are the same directory ("."), then
/// the old root, now stacked underneath, is made rslave (so the unmount does not propagate
/// to the host) and lazily detached. No directory for the old root is needed.
pub fn pivot(rootfs: &Path) -> Result<(), SetupError> {
    let old = open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open", "/"))?;
    let new = open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open", rootfs.display()))?;
    fchdir(&new).map_err(sys("fchdir", rootfs.display()))?;
    pivot_root(".", ".").map_err(sys("pivot_root", rootfs.display()))?;
    fchdir(&old).map_err(sys("fchdir", "old root"))?;
    do_mount(
        None,
        ".",
        None,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
        &"old root",
    )?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys("umount2", "old root"))?;
    chdir("/").map_err(sys("chdir", "/"))
}

/// After pivot_root the new root mount gets the configured `rootfsPropagation` (shared,
/// slave, ...), as runc does; nothing to do when unset.
pub fn apply_root_propagation(spec: &Spec) -> Result<(), SetupError> {
    let flag = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag);
    match flag {
        Some(f) => do_mount(None, "/", None, f, None, &"/ (rootfsPropagation)"),
        None => Ok(()),
    }
}

/// `--no-pivot`: move the rootfs mount over / and chroot into it (for ramdisk roots where
/// pivot_root is impossible). Weaker: the old root stays reachable to a process that can
/// escape the chroot, and stays in the mount namespace. So first the host's full procfs and
/// sysfs mounts go: the kernel lets a new user namespace mount procfs or sysfs only while a
/// fully visible one exists in its mount namespace (fs/namespace.c, mount_too_revealing), and
/// without pivot_root the host's would be that one, unmasked.
pub fn move_root(rootfs: &Path) -> Result<(), SetupError> {
    hide_host_proc_and_sys(rootfs)?;
    chdir(rootfs).map_err(sys("chdir", rootfs.display()))?;
    do_mount(
        Some(&rootfs.to_string_lossy()),
        "/",
        None,
        MsFlags::MS_MOVE,
        None,
        &rootfs.display(),
    )?;
    chroot(".").map_err(sys("chroot", rootfs.display()))?;
    chdir("/").map_err(sys("chdir", "/"))
}

/// Detaches every mount of a whole procfs or sysfs outside `rootfs` (or covers it with an
/// empty tmpfs where it cannot be detached), as mountinfo lists them before any goes.
fn hide_host_proc_and_sys(rootfs: &Path) -> Result<(), SetupError> {
    let info = fs::read_to_string("/proc/self/mountinfo").map_err(|source| SetupError::Io {
        action: "reading",
        path: "/proc/self/mountinfo".into(),
        source,
    })?;
    let mut targets = Vec::new();
    for line in info.lines() {
        // mountinfo: id parent maj:min root mountpoint options [optional...] - fstype ...
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(root), Some(mp), Some(fstype)) =
            (fields.get(3), fields.get(4), fields.get(dash + 1))
        else {
            continue;
        };
        let mp = PathBuf::from(unescape_mountinfo(mp));
        if *root == "/" && matches!(*fstype, "proc" | "sysfs") && !mp.starts_with(rootfs) {
            targets.push(mp);
        }
    }
    for mp in targets {
        let path = mp.to_string_lossy().into_owned();
        // The unmount must not propagate to the host.
        match mount(
            None::<&str>,
            path.as_str(),
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            // Gone with a parent detached before it.
            Err(Errno::ENOENT) => continue,
            other => other.map_err(sys("mount", format!("{path} rslave")))?,
        }
        match umount2(path.as_str(), MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno::EINVAL | Errno::EPERM) => do_mount(
                Some("tmpfs"),
                &path,
                Some("tmpfs"),
                MsFlags::empty(),
                None,
                &mp.display(),
            )?,
            Err(e) => return Err(sys("umount2", &path)(e)),
        }
    }
    Ok(())
}

/// mountinfo escapes space, tab, newline and backslash as \ooo (proc(5)).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Opens `/proc/self/fd` of the host's procfs as a directory handle, so the init can reopen
/// its own descriptors (the exec fifo) after pivot_root even when the container has no /proc.
pub fn open_own_fd_dir() -> Result<File, SetupError> {
    let f = File::open("/proc/self/fd").map_err(|source| SetupError::Io {
        action: "opening",
        path: "/proc/self/fd".into(),
        source,
    })?;
    if !super::super::proc::is_procfs(&f) {
        return Err(SetupError::NotProcfs {
            path: "/proc/self/fd".into(),
        });
    }
    Ok(f)
}

/// Is this fd a character device (used to leave /dev/null stdio alone)?
pub fn is_char_device(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() != 0
}
