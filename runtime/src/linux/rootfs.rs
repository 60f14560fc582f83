//! Building the container's root filesystem inside its mount namespace.
//!
//! Every destination is resolved *inside* the rootfs with pathrs (openat2 RESOLVE_IN_ROOT where
//! the kernel has it), and mounts target the resolved handle through /proc/self/fd/N, so a
//! symlink in the image can never send a mount, a device node or a mask outside the rootfs
//! (the CVE-2021-30465 class). Everything happens before pivot_root, while the host's /proc —
//! which we trust — is still the one at /proc.

use std::fs::{self, File};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use pathrs::{Handle, InodeType, Root};

use super::mount::{parse, propagation_flag, Options};
use super::{inroot, sys, SetupError};
use crate::cgroups::CgroupPaths;

/// What the rootfs builder needs to know beyond the spec.
pub struct Context<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub cgroup: &'a CgroupPaths,
    pub new_user: bool,
    pub new_cgroup_ns: bool,
    /// Waits until the parent has made the container's cgroup directories (the rootfs is
    /// built while it makes them); called before a cgroup mount binds them.
    pub cgroup_ready: &'a dyn Fn() -> Result<(), SetupError>,
    /// Bind-mount sources opened before clone, by mount index (see [`open_bind_sources`]).
    pub bind_sources: &'a [Option<OwnedFd>],
}

/// Clones the source of every bind mount into a detached mount (open_tree(2) with
/// OPEN_TREE_CLONE, recursive for rbind), for a container with a new user namespace. Its
/// init is born in that namespace, where it has no rights on host files its ids do not own:
/// a source directory only host root may enter would be out of its reach. Cloned here,
/// before clone, by the runtime; the init attaches the copy with move_mount(2), which a
/// mount namespace of its own allows (runc passes its init descriptors for the same reason).
/// Kernels without open_tree (before 5.2) leave the source to the init, as before.
pub fn open_bind_sources(spec: &Spec, bundle: &Path) -> Result<Vec<Option<OwnedFd>>, SetupError> {
    let mut out = Vec::new();
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        let opts = parse(m.options().as_deref().unwrap_or_default()).map_err(|reason| {
            SetupError::MountConfig {
                index,
                destination: m.destination().clone(),
                reason,
            }
        })?;
        let source = match m.source() {
            Some(src) if m.typ().as_deref() == Some("bind") || opts.is_bind() => {
                if src.is_absolute() {
                    src.clone()
                } else {
                    bundle.join(src)
                }
            }
            _ => {
                out.push(None);
                continue;
            }
        };
        let c_source =
            std::ffi::CString::new(source.as_os_str().as_encoded_bytes()).map_err(|_| {
                SetupError::MountConfig {
                    index,
                    destination: m.destination().clone(),
                    reason: format!("source {}: contains a NUL byte", source.display()),
                }
            })?;
        let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
        if opts.flags.contains(MsFlags::MS_REC)
            || m.typ().as_deref() != Some("bind") && !opts.is_bind()
        {
            flags |= libc::AT_RECURSIVE as libc::c_uint;
        }
        // SAFETY: open_tree reads a NUL-terminated path; it returns a new descriptor or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                c_source.as_ptr(),
                flags,
            )
        };
        match fd {
            -1 if Errno::last() == Errno::ENOSYS => out.push(None),
            -1 => {
                return Err(SetupError::MountConfig {
                    index,
                    destination: m.destination().clone(),
                    reason: format!("source {}: {}", source.display(), Errno::last().desc()),
                })
            }
            // SAFETY: a fresh descriptor that nothing else owns.
            fd => out.push(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })),
        }
    }
    Ok(out)
}

/// open_tree(2) flag (linux/mount.h).
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// move_mount(2) flags (linux/mount.h).
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// Attaches a detached mount (from [`open_bind_sources`]) on `target`.
fn attach_tree(tree: &OwnedFd, target: &Handle, dest: &Path) -> Result<(), SetupError> {
    // SAFETY: move_mount with two descriptors and static empty paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_fd().as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(sys("move_mount", dest.display())(Errno::last()));
    }
    Ok(())
}

fn in_root(path: &Path) -> impl FnOnce(pathrs::error::Error) -> SetupError + '_ {
    move |source| SetupError::InRoot {
        path: path.to_path_buf(),
        source,
    }
}

/// The path through which mount(2) reaches an opened handle.
fn fd_path(fd: impl AsFd) -> String {
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

fn do_mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    what: &dyn std::fmt::Display,
) -> Result<(), SetupError> {
    mount(source, target, fstype, flags, data).map_err(sys("mount", what))
}

/// Sets the propagation of the host's tree as seen from our new mount namespace, so nothing we
/// mount leaks back to the host (default rslave, as runc), then makes the rootfs a mount point
/// of its own (pivot_root needs one).
pub fn prepare_root(ctx: &Context) -> Result<Root, SetupError> {
    let linux = ctx.spec.linux().as_ref();
    let prop = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag)
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    do_mount(None, "/", None, prop, None, &"/ propagation")?;
    make_parent_mount_private(ctx.rootfs)?;
    let rootfs = ctx.rootfs.to_string_lossy();
    do_mount(
        Some(&rootfs),
        &rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
        &ctx.rootfs.display(),
    )?;
    Root::open(ctx.rootfs).map_err(in_root(ctx.rootfs))
}

/// pivot_root(2) refuses a new root whose parent mount is shared; make that mount private.
fn make_parent_mount_private(rootfs: &Path) -> Result<(), SetupError> {
    let info = fs::read_to_string("/proc/self/mountinfo").map_err(|source| SetupError::Io {
        action: "reading",
        path: "/proc/self/mountinfo".into(),
        source,
    })?;
    let mut best: Option<(PathBuf, bool)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 7 {
            continue;
        }
        let mp = PathBuf::from(fields[4]);
        if rootfs.starts_with(&mp)
            && best
                .as_ref()
                .is_none_or(|(b, _)| mp.as_os_str().len() >= b.as_os_str().len())
        {
            let shared = fields[6..]
                .iter()
                .take_while(|f| **f != "-")
                .any(|f| f.starts_with("shared:"));
            best = Some((mp, shared));
        }
    }
    if let Some((mp, true)) = best {
        do_mount(
            None,
            &mp.to_string_lossy(),
            None,
            MsFlags::MS_PRIVATE,
            None,
            &mp.display(),
        )?;
    }
    Ok(())
}

/// Mounts every entry of `mounts`, in order.
pub fn mount_all(ctx: &Context, root: &Root) -> Result<(), SetupError> {
    for (index, m) in ctx.spec.mounts().iter().flatten().enumerate() {
        mount_one(ctx, root, index, m)?;
    }
    Ok(())
}

fn mount_one(ctx: &Context, root: &Root, index: usize, m: &Mount) -> Result<(), SetupError> {
    let dest = m.destination();
    let cfg_err = |reason: String| SetupError::MountConfig {
        index,
        destination: dest.clone(),
        reason,
    };
    let opts = parse(m.options().as_deref().unwrap_or_default()).map_err(cfg_err)?;
    let fstype = m.typ().as_deref().unwrap_or("");
    let is_bind = fstype == "bind" || opts.is_bind();
    if is_bind {
        let source = m
            .source()
            .as_ref()
            .ok_or_else(|| cfg_err("a bind mount needs a source".into()))?;
        let tree = ctx.bind_sources.get(index).and_then(Option::as_ref);
        let source = match tree {
            Some(fd) => PathBuf::from(fd_path(fd)),
            None if source.is_absolute() => source.clone(),
            None => ctx.bundle.join(source),
        };
        let meta = fs::metadata(&source)
            .map_err(|e| cfg_err(format!("source {}: {e}", source.display())))?;
        let target = make_target(root, dest, !meta.is_dir())?;
        if let Some(tree) = tree {
            attach_tree(tree, &target, dest)?;
        } else {
            let mut flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
            if fstype != "bind" && !opts.is_bind() {
                flags |= MsFlags::MS_REC;
            }
            do_mount(
                Some(&source.to_string_lossy()),
                &fd_path(&target),
                None,
                flags,
                None,
                &dest.display(),
            )?;
        }
        if !opts.remount_flags().is_empty() {
            let mounted = root.resolve(dest).map_err(in_root(dest))?;
            remount(&mounted, opts.remount_flags() | MsFlags::MS_BIND, dest)?;
        }
        set_recursive_attrs(root, dest, &opts)?;
        apply_propagation(root, dest, &opts)?;
        return Ok(());
    }
    match fstype {
        "cgroup" | "cgroup2" => mount_cgroups(ctx, root, dest, &opts),
        _ => {
            let existing_mode = (fstype == "tmpfs").then(|| dir_mode(root, dest)).flatten();
            let target = make_target(root, dest, false)?;
            let source = m
                .source()
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| fstype.to_string());
            let mut flags = opts.flags;
            if is_dev(dest) {
                // A read-only /dev is made read-only only once its device nodes, symlinks
                // and console are in place (readonly_dev).
                flags -= MsFlags::MS_RDONLY;
            }
            let mut data = opts.data();
            // A tmpfs over an existing directory keeps that directory's mode (set-id and
            // sticky bits included) unless the mount names one.
            if let Some(mode) =
                existing_mode.filter(|_| !opts.data.iter().any(|d| d.starts_with("mode=")))
            {
                let mode = format!("mode={mode:o}");
                data = Some(data.map_or(mode.clone(), |d| format!("{d},{mode}")));
            }
            let res = mount(
                Some(source.as_str()),
                fd_path(&target).as_str(),
                Some(fstype),
                flags,
                data.as_deref(),
            );
            match res {
                Ok(()) => {}
                // devpts refuses a gid= that is not mapped in a user namespace: drop it.
                Err(Errno::EINVAL)
                    if fstype == "devpts"
                        && data.as_deref().is_some_and(|d| d.contains("gid=")) =>
                {
                    let data: Vec<&str> = opts
                        .data
                        .iter()
                        .map(String::as_str)
                        .filter(|o| !o.starts_with("gid="))
                        .collect();
                    do_mount(
                        Some(&source),
                        &fd_path(&target),
                        Some(fstype),
                        flags,
                        Some(&data.join(",")),
                        &dest.display(),
                    )?;
                }
                // sysfs belongs to the network namespace; without a private one, or in a user
                // namespace that does not own it, bind the host's /sys instead (like runc).
                Err(Errno::EPERM) if fstype == "sysfs" => {
                    do_mount(
                        Some("/sys"),
                        &fd_path(&target),
                        None,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        None,
                        &dest.display(),
                    )?;
                    if flags.contains(MsFlags::MS_RDONLY) {
                        let mounted = root.resolve(dest).map_err(in_root(dest))?;
                        remount(&mounted, flags | MsFlags::MS_BIND, dest)?;
                    }
                }
                Err(e) => {
                    return Err(sys(
                        "mount",
                        format!("{} on {} type {fstype}", source, dest.display()),
                    )(e))
                }
            }
            set_recursive_attrs(root, dest, &opts)?;
            apply_propagation(root, dest, &opts)
        }
    }
}

fn is_dev(dest: &Path) -> bool {
    dest.components().eq(Path::new("/dev").components())
}

/// The permission bits of an existing directory at `dest` in the root.
fn dir_mode(root: &Root, dest: &Path) -> Option<u32> {
    let handle = inroot::resolve(root, dest).ok().flatten()?;
    let st = nix::sys::stat::fstat(handle.as_fd()).ok()?;
    (st.st_mode & libc::S_IFMT == libc::S_IFDIR).then_some(st.st_mode & 0o7777)
}

/// Applies `rro`, `rnosuid`, ... to the mount at `dest` and every mount below it
/// (mount_setattr(2) with AT_RECURSIVE, Linux 5.12).
fn set_recursive_attrs(root: &Root, dest: &Path, opts: &Options) -> Result<(), SetupError> {
    if opts.recursive.is_empty() {
        return Ok(());
    }
    let mounted = root.resolve(dest).map_err(in_root(dest))?;
    let attr = libc::mount_attr {
        attr_set: opts.recursive.set,
        attr_clr: opts.recursive.clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads `size` bytes of a valid mount_attr; the path is a static
    // empty string, used with AT_EMPTY_PATH on our O_PATH descriptor.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mounted.as_fd().as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if r < 0 {
        return Err(sys(
            "mount_setattr",
            format!("{} (recursive options)", dest.display()),
        )(Errno::last()));
    }
    Ok(())
}

/// Makes a `ro` /dev read-only, now that it is complete (see mount_one).
pub fn readonly_dev(spec: &Spec, root: &Root) -> Result<(), SetupError> {
    let Some(m) = spec
        .mounts()
        .iter()
        .flatten()
        .rfind(|m| is_dev(m.destination()))
    else {
        return Ok(());
    };
    let opts = parse(m.options().as_deref().unwrap_or_default()).map_err(|reason| {
        SetupError::MountConfig {
            index: 0,
            destination: m.destination().clone(),
            reason,
        }
    })?;
    if opts.is_bind() || !opts.flags.contains(MsFlags::MS_RDONLY) {
        return Ok(());
    }
    let dev = Path::new("/dev");
    let mounted = root.resolve(dev).map_err(in_root(dev))?;
    let target = fd_path(&mounted);
    do_mount(
        None,
        &target,
        None,
        opts.flags | MsFlags::MS_REMOUNT,
        opts.data().as_deref(),
        &"remount /dev read-only",
    )
}

fn apply_propagation(root: &Root, dest: &Path, opts: &Options) -> Result<(), SetupError> {
    if opts.propagation.is_empty() {
        return Ok(());
    }
    let mounted = root.resolve(dest).map_err(in_root(dest))?;
    for p in &opts.propagation {
        do_mount(None, &fd_path(&mounted), None, *p, None, &dest.display())?;
    }
    Ok(())
}

/// Remounts with new per-mount flags. In a user namespace the kernel keeps flags of the
/// source mount locked (nosuid, nodev, noexec, atime); retry with them added, as runc does.
fn remount(handle: &Handle, flags: MsFlags, dest: &Path) -> Result<(), SetupError> {
    let target = fd_path(handle);
    match mount(
        None::<&str>,
        target.as_str(),
        None::<&str>,
        flags | MsFlags::MS_REMOUNT,
        None::<&str>,
    ) {
        Err(Errno::EPERM) => {
            let st = nix::sys::statvfs::fstatvfs(handle.as_fd())
                .map_err(sys("statvfs", dest.display()))?;
            let mut locked = MsFlags::empty();
            use nix::sys::statvfs::FsFlags;
            for (st_flag, ms) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
                (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
                (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
                (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
            ] {
                if st.flags().contains(st_flag) {
                    locked |= ms;
                }
            }
            do_mount(
                None,
                &target,
                None,
                flags | locked | MsFlags::MS_REMOUNT,
                None,
                &format!("remount {}", dest.display()),
            )
        }
        other => other.map_err(sys("mount", format!("remount {}", dest.display()))),
    }
}

/// Creates the mount point inside the root: a directory, or an empty file for file binds.
fn make_target(root: &Root, dest: &Path, is_file: bool) -> Result<Handle, SetupError> {
    if is_file {
        inroot::create_file(root, dest)
    } else {
        inroot::mkdir_all(root, dest, 0o755)
    }
}

/// A `cgroup` mount: with a private cgroup namespace the kernel shows the container's own
/// cgroup as the root, so mount the hierarchies themselves; without one, bind-mount the
/// container's directories. On v1 and hybrid hosts the hierarchies sit under a tmpfs.
fn mount_cgroups(
    ctx: &Context,
    root: &Root,
    dest: &Path,
    opts: &Options,
) -> Result<(), SetupError> {
    (ctx.cgroup_ready)()?;
    let flags = opts.flags - MsFlags::MS_RDONLY;
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let dirs = &ctx.cgroup.dirs;
    let v2_only = dirs.len() == 1 && dirs.contains_key("");
    if v2_only {
        let target = make_target(root, dest, false)?;
        if ctx.new_cgroup_ns {
            do_mount(
                Some("cgroup2"),
                &fd_path(&target),
                Some("cgroup2"),
                opts.flags,
                None,
                &dest.display(),
            )?;
        } else if let Some(dir) = dirs.get("") {
            do_mount(
                Some(&dir.to_string_lossy()),
                &fd_path(&target),
                None,
                MsFlags::MS_BIND,
                None,
                &dest.display(),
            )?;
            if ro {
                let mounted = root.resolve(dest).map_err(in_root(dest))?;
                remount(&mounted, opts.flags | MsFlags::MS_BIND, dest)?;
            }
        }
        return Ok(());
    }
    let target = make_target(root, dest, false)?;
    do_mount(
        Some("tmpfs"),
        &fd_path(&target),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
        &dest.display(),
    )?;
    for (key, dir) in dirs {
        let Some(mp) = ctx.cgroup.mount_points.get(key) else {
            continue;
        };
        let Some(name) = mp.file_name() else { continue };
        let sub = dest.join(name);
        let sub_target = make_target(root, &sub, false)?;
        let mut sub_flags = flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if ro {
            sub_flags |= MsFlags::MS_RDONLY;
        }
        if ctx.new_cgroup_ns {
            let (fstype, data) = if key.is_empty() {
                ("cgroup2", None)
            } else {
                ("cgroup", Some(key.as_str()))
            };
            do_mount(
                Some("cgroup"),
                &fd_path(&sub_target),
                Some(fstype),
                sub_flags,
                data,
                &sub.display(),
            )?;
        } else {
            do_mount(
                Some(&dir.to_string_lossy()),
                &fd_path(&sub_target),
                None,
                MsFlags::MS_BIND,
                None,
                &sub.display(),
            )?;
            let mounted = root.resolve(&sub).map_err(in_root(&sub))?;
            remount(&mounted, sub_flags | MsFlags::MS_BIND, &sub)?;
        }
        // Co-mounted controllers (cpu,cpuacct) get the per-controller symlinks the host has.
        if key.contains(',') && !key.starts_with("name=") {
            for ctrl in key.split(',') {
                let link = dest.join(ctrl);
                if ctrl != name.to_string_lossy() {
                    let _ = root.create(&link, &InodeType::Symlink(PathBuf::from(name)));
                }
            }
        }
    }
    if ro {
        let mounted = root.resolve(dest).map_err(in_root(dest))?;
        remount(&mounted, flags | MsFlags::MS_RDONLY, dest)?;
    }
    Ok(())
}

/// A device node to create in the container's /dev.
struct DeviceNode {
    path: PathBuf,
    kind: LinuxDeviceType,
    major: i64,
    minor: i64,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// The devices every container gets (runtime-spec "Default Devices").
fn default_devices() -> Vec<DeviceNode> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| DeviceNode {
        path: PathBuf::from("/dev").join(name),
        kind: LinuxDeviceType::C,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

fn spec_device(d: &LinuxDevice) -> DeviceNode {
    DeviceNode {
        path: d.path().clone(),
        kind: d.typ(),
        major: d.major(),
        minor: d.minor(),
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    }
}

/// Whether /dev is a private tmpfs we must populate (not a bind of the host's /dev).
fn dev_is_private(spec: &Spec) -> bool {
    spec.mounts()
        .iter()
        .flatten()
        .rfind(|m| m.destination() == Path::new("/dev"))
        .is_some_and(|m| {
            m.typ().as_deref() != Some("bind")
                && !parse(m.options().as_deref().unwrap_or_default()).is_ok_and(|o| o.is_bind())
        })
}

/// Creates default and configured device nodes and the standard /dev symlinks. In a user
/// namespace mknod(2) is not allowed, so host devices are bind-mounted instead.
pub fn create_devices(ctx: &Context, root: &Root) -> Result<(), SetupError> {
    let mut nodes = Vec::new();
    if dev_is_private(ctx.spec) {
        nodes.extend(default_devices());
    }
    let configured: Vec<DeviceNode> = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .map(|ds| ds.iter().map(spec_device).collect())
        .unwrap_or_default();
    nodes.retain(|n| !configured.iter().any(|c| c.path == n.path));
    nodes.extend(configured);
    for node in &nodes {
        create_device(ctx, root, node)?;
    }
    if dev_is_private(ctx.spec) {
        let mut links = vec![
            ("/dev/fd", "/proc/self/fd"),
            ("/dev/stdin", "/proc/self/fd/0"),
            ("/dev/stdout", "/proc/self/fd/1"),
            ("/dev/stderr", "/proc/self/fd/2"),
            ("/dev/ptmx", "pts/ptmx"),
        ];
        if Path::new("/proc/kcore").exists() {
            links.push(("/dev/core", "/proc/kcore"));
        }
        for (link, target) in links {
            match root.create(link, &InodeType::Symlink(PathBuf::from(target))) {
                Ok(()) => {}
                Err(e) if e.kind() == pathrs::error::ErrorKind::OsError(Some(libc::EEXIST)) => {}
                Err(source) => {
                    return Err(SetupError::InRoot {
                        path: link.into(),
                        source,
                    })
                }
            }
        }
    }
    Ok(())
}

fn create_device(ctx: &Context, root: &Root, node: &DeviceNode) -> Result<(), SetupError> {
    let path = &node.path;
    if let Some(parent) = path.parent() {
        inroot::mkdir_all(root, parent, 0o755)?;
    }
    if ctx.new_user {
        let target = make_target(root, path, true)?;
        return do_mount(
            Some(&path.to_string_lossy()),
            &fd_path(&target),
            None,
            MsFlags::MS_BIND,
            None,
            &path.display(),
        );
    }
    let dev = nix::sys::stat::makedev(node.major as u64, node.minor as u64);
    let perm = fs::Permissions::from_mode(node.mode);
    let inode = match node.kind {
        LinuxDeviceType::B => InodeType::BlockDevice(perm, dev),
        LinuxDeviceType::P => InodeType::Fifo(perm),
        _ => InodeType::CharacterDevice(perm, dev),
    };
    // A node left by the image (or an earlier mount) is replaced, as runc does.
    if inroot::resolve_nofollow(root, path)?.is_some() {
        root.remove_file(path).map_err(in_root(path))?;
    }
    root.create(path, &inode).map_err(in_root(path))?;
    let handle = root.resolve_nofollow(path).map_err(in_root(path))?;
    let fd_p = fd_path(&handle);
    // The mode given to mknod is reduced by the umask; chmod/chown through the handle.
    nix::unistd::chown(fd_p.as_str(), Some(node.uid.into()), Some(node.gid.into()))
        .map_err(sys("chown", path.display()))?;
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        fd_p.as_str(),
        Mode::from_bits_truncate(node.mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(sys("chmod", path.display()))?;
    Ok(())
}

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
    if !super::proc::is_procfs(&f) {
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
