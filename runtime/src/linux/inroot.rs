//! Looking up and creating paths inside the container's root on the hot path of `create`.
//!
//! The guarantee is the one pathrs gives, from the same kernel feature: every lookup is one
//! openat2(2) with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS on the root's descriptor, so ".."
//! and absolute symlinks are clamped at the container's root and /proc magic links are
//! refused (the CVE-2021-30465 class). What this module avoids is pathrs' overhead around
//! that one syscall: its `mkdir_all` re-opens the handle through a private procfs with a
//! dozen safety re-checks, and every error it builds reads the directory's path back through
//! /proc (readlink). A default `run` spent ~1,600 of its ~2,200 syscalls there. Here a lookup
//! is one openat2 and a missing directory one mkdirat(2) plus one openat2 per component.
//! Kernels without openat2 (before 5.6) fall back to pathrs, which emulates it in userspace.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use pathrs::{Handle, Root};

use super::SetupError;

fn error(path: &Path, source: Errno) -> SetupError {
    SetupError::InRootSys {
        path: path.to_path_buf(),
        source,
    }
}

/// `struct open_how` of openat2(2) (libc's is non-exhaustive, so it cannot be built here).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2) of `path` under `root`, resolved as if `root` were "/".
fn openat2_in_root(root: BorrowedFd, path: &Path, flags: i32) -> Result<OwnedFd, Errno> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    // A rename or mount anywhere on the system during the lookup makes a scoped openat2 fail
    // with EAGAIN (openat2(2)); nothing is wrong, so try again a bounded number of times.
    let mut tries = 0;
    loop {
        // SAFETY: a NUL-terminated path and an open_how of the size passed; the kernel
        // returns a new descriptor that nothing else owns, or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                c_path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: see above: a fresh descriptor we now own.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
        match Errno::last() {
            Errno::EAGAIN if tries < 64 => tries += 1,
            e => return Err(e),
        }
    }
}

/// Opens `path` inside `root` as an O_PATH handle; `None` if it does not exist.
/// `follow` decides whether a symlink as the last component is followed (inside the root).
fn lookup(
    root: &Root,
    path: &Path,
    flags: i32,
    follow: bool,
) -> Result<Option<Handle>, SetupError> {
    let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
    match openat2_in_root(root.as_fd(), path, libc::O_PATH | nofollow | flags) {
        Ok(fd) => Ok(Some(Handle::from_fd(fd))),
        Err(Errno::ENOENT) => Ok(None),
        Err(Errno::ENOSYS) => {
            let found = if follow {
                root.resolve(path)
            } else {
                root.resolve_nofollow(path)
            };
            match found {
                Ok(h) => Ok(Some(h)),
                Err(e) if e.kind() == pathrs::error::ErrorKind::OsError(Some(libc::ENOENT)) => {
                    Ok(None)
                }
                Err(source) => Err(SetupError::InRoot {
                    path: path.to_path_buf(),
                    source,
                }),
            }
        }
        Err(e) => Err(error(path, e)),
    }
}

/// The object at `path` inside the root (symlinks followed inside it), if it exists.
pub fn resolve(root: &Root, path: &Path) -> Result<Option<Handle>, SetupError> {
    lookup(root, path, 0, true)
}

/// Like [`resolve`], but a symlink as the last component is returned itself.
pub fn resolve_nofollow(root: &Root, path: &Path) -> Result<Option<Handle>, SetupError> {
    lookup(root, path, 0, false)
}

/// Makes sure `path` is a directory inside the root, creating missing components with
/// `mode` (reduced by the umask), and returns an O_PATH handle to it. Fails if a component
/// exists but is not a directory, or is a dangling symlink.
pub fn mkdir_all(root: &Root, path: &Path, mode: u32) -> Result<Handle, SetupError> {
    if let Some(h) = lookup(root, path, libc::O_DIRECTORY, true)? {
        return Ok(h);
    }
    // Paths ending in "/" or ".." name nothing that could be created.
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(error(path, Errno::ENOENT));
    };
    // Usually only the last component is missing, so go up one level at a time rather than
    // down from the root. The parent is itself resolved inside the root, so a symlink met on
    // the way is followed the way the kernel follows it in the container.
    let dir = mkdir_all(root, parent, mode)?;
    // EEXIST: someone made it meanwhile, or it is a dangling symlink, which the lookup below
    // then refuses (ENOENT) instead of creating its target.
    match nix::sys::stat::mkdirat(
        dir.as_fd(),
        name,
        nix::sys::stat::Mode::from_bits_truncate(mode),
    ) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(error(path, e)),
    }
    existing_dir(root, path)
}

fn existing_dir(root: &Root, path: &Path) -> Result<Handle, SetupError> {
    lookup(root, path, libc::O_DIRECTORY, true)?.ok_or_else(|| error(path, Errno::ENOENT))
}

/// Makes sure `path` exists inside the root as a non-directory (an empty regular file is
/// created, mode 0644, if nothing is there; for file bind mounts) and returns a handle.
pub fn create_file(root: &Root, path: &Path) -> Result<Handle, SetupError> {
    if let Some(h) = resolve(root, path)? {
        return Ok(h);
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(error(path, Errno::EINVAL));
    };
    let dir = mkdir_all(root, parent, 0o755)?;
    // O_NOFOLLOW: a dangling symlink in the image's place must not make us create its
    // target; O_CREAT without O_EXCL: a racing creator is fine.
    nix::fcntl::openat(
        dir.as_fd(),
        name,
        nix::fcntl::OFlag::O_CREAT
            | nix::fcntl::OFlag::O_WRONLY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| error(path, e))?;
    resolve(root, path)?.ok_or_else(|| error(path, Errno::ENOENT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "berth-inroot-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("temp dir");
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn real_path(h: &Handle) -> PathBuf {
        std::fs::read_link(format!("/proc/self/fd/{}", h.as_fd().as_raw_fd())).expect("readlink")
    }

    #[test]
    fn absolute_symlinks_and_dotdot_stay_inside_the_root() {
        let t = TempDir::new("escape");
        let rootfs = t.0.join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).expect("mkdir");
        // Both would name the host's /etc if followed naively.
        symlink("/etc", rootfs.join("abs")).expect("symlink");
        symlink("../../../../etc", rootfs.join("rel")).expect("symlink");
        let root = Root::open(&rootfs).expect("root");
        for p in ["/abs", "/rel", "/../../etc"] {
            let h = resolve(&root, Path::new(p)).expect(p).expect(p);
            assert_eq!(real_path(&h), rootfs.join("etc"), "{p}");
        }
    }

    #[test]
    fn mkdir_all_creates_missing_directories_through_symlinks_inside_the_root() {
        let t = TempDir::new("mkdir");
        let rootfs = t.0.join("rootfs");
        std::fs::create_dir_all(&rootfs).expect("mkdir");
        symlink("/inside", rootfs.join("link")).expect("symlink");
        std::fs::create_dir(rootfs.join("inside")).expect("mkdir");
        let root = Root::open(&rootfs).expect("root");
        let h = mkdir_all(&root, Path::new("/link/a/b"), 0o755).expect("mkdir_all");
        assert_eq!(real_path(&h), rootfs.join("inside/a/b"));
        assert!(rootfs.join("inside/a/b").is_dir());
        // Existing: same directory, nothing new.
        let again = mkdir_all(&root, Path::new("/inside/a/b"), 0o755).expect("again");
        assert_eq!(real_path(&again), rootfs.join("inside/a/b"));
    }

    #[test]
    fn mkdir_all_refuses_a_file_and_a_dangling_symlink_in_the_way() {
        let t = TempDir::new("refuse");
        let rootfs = t.0.join("rootfs");
        std::fs::create_dir_all(&rootfs).expect("mkdir");
        std::fs::write(rootfs.join("file"), b"").expect("file");
        symlink("/nowhere/deeper", rootfs.join("dangling")).expect("symlink");
        let root = Root::open(&rootfs).expect("root");
        assert!(mkdir_all(&root, Path::new("/file/sub"), 0o755).is_err());
        let err = mkdir_all(&root, Path::new("/dangling"), 0o755).expect_err("dangling");
        assert!(err.to_string().contains("/dangling"), "{err}");
        assert!(!rootfs.join("nowhere").exists());
    }

    #[test]
    fn missing_paths_are_none_and_create_file_makes_an_empty_file() {
        let t = TempDir::new("file");
        let rootfs = t.0.join("rootfs");
        std::fs::create_dir_all(&rootfs).expect("mkdir");
        let root = Root::open(&rootfs).expect("root");
        assert!(resolve(&root, Path::new("/no/such"))
            .expect("lookup")
            .is_none());
        let h = create_file(&root, Path::new("/etc/hosts")).expect("create");
        assert_eq!(real_path(&h), rootfs.join("etc/hosts"));
        assert_eq!(
            std::fs::metadata(rootfs.join("etc/hosts"))
                .expect("meta")
                .len(),
            0
        );
    }

    #[test]
    fn nofollow_returns_the_symlink_itself() {
        let t = TempDir::new("nofollow");
        let rootfs = t.0.join("rootfs");
        std::fs::create_dir_all(&rootfs).expect("mkdir");
        symlink("/target", rootfs.join("l")).expect("symlink");
        let root = Root::open(&rootfs).expect("root");
        let h = resolve_nofollow(&root, Path::new("/l"))
            .expect("lookup")
            .expect("exists");
        let st = nix::sys::stat::fstat(h.as_fd()).expect("fstat");
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFLNK);
        assert!(resolve(&root, Path::new("/l")).expect("lookup").is_none());
    }
}
