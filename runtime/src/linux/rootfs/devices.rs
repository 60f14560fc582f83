//! Device nodes in the container's /dev: the defaults every container gets, those of
//! `linux.devices`, and the standard symlinks (bind mounts of the host's nodes in a user
//! namespace, where mknod is not allowed).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Spec};
use pathrs::{InodeType, Root};

use super::super::mount::parse;
use super::super::{inroot, sys, SetupError};
use super::{do_mount, fd_path, in_root, make_target, Context};

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
