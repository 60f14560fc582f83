//! The `linux` section: namespaces, cgroup resources and devices.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder,
    LinuxDeviceType, LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder,
};

use super::flags::DeviceRequest;
use super::options::{NamespaceMode, Options, ResourceOptions};
use super::{build_err, SpecGenError};

/// CFS period docker uses with --cpus (100 ms).
pub const CPU_PERIOD: u64 = 100_000;
/// Docker refuses memory limits below this (smaller containers fail to start at all).
pub const MIN_MEMORY: u64 = 6 << 20;

fn namespace(typ: LinuxNamespaceType, path: Option<&Path>) -> Result<LinuxNamespace, SpecGenError> {
    let b = LinuxNamespaceBuilder::default().typ(typ);
    let b = match path {
        Some(p) => b.path(p),
        None => b,
    };
    b.build().map_err(build_err("namespace"))
}

/// Mount, and the configurable network/pid/ipc/uts (none for `Host`). The cgroup namespace
/// follows docker's default cgroupns mode: private on a cgroup v2 host, host on v1 and hybrid
/// hosts, where a private cgroupns would hide the v1 hierarchies' paths that tools expect.
pub(crate) fn namespaces(opts: &Options) -> Result<Vec<LinuxNamespace>, SpecGenError> {
    let ns = &opts.namespaces;
    let mut out = vec![namespace(LinuxNamespaceType::Mount, None)?];
    for (typ, mode) in [
        (LinuxNamespaceType::Network, &ns.network),
        (LinuxNamespaceType::Pid, &ns.pid),
        (LinuxNamespaceType::Ipc, &ns.ipc),
        (LinuxNamespaceType::Uts, &ns.uts),
    ] {
        match mode {
            NamespaceMode::Private => out.push(namespace(typ, None)?),
            NamespaceMode::Path(p) => out.push(namespace(typ, Some(p))?),
            NamespaceMode::Host => {}
        }
    }
    if host_is_cgroup_v2() {
        out.push(namespace(LinuxNamespaceType::Cgroup, None)?);
    }
    Ok(out)
}

/// True when /sys/fs/cgroup is the unified (v2) hierarchy (statfs(2) magic CGROUP2_SUPER_MAGIC).
pub(crate) fn host_is_cgroup_v2() -> bool {
    const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
    rustix::fs::statfs("/sys/fs/cgroup").is_ok_and(|s| s.f_type as u64 == CGROUP2_SUPER_MAGIC)
}

/// Whether the kernel accounts swap in the memory cgroup; docker drops swap limits otherwise.
fn swap_accounting() -> bool {
    host_is_cgroup_v2() || Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
}

/// Checks docker's rules between the memory flags, then builds `linux.resources` (devices are
/// added separately).
pub(crate) fn resources(r: &ResourceOptions) -> Result<LinuxResourcesBuilder, SpecGenError> {
    if let Some(mem) = r.memory {
        if mem < MIN_MEMORY {
            return Err(SpecGenError::Resources {
                reason: "minimum memory limit allowed is 6MB",
            });
        }
    }
    match (r.memory, r.memory_swap) {
        (None, Some(s)) if s != -1 => {
            return Err(SpecGenError::Resources {
                reason: "you should always set the memory limit when using the memory-swap limit",
            })
        }
        (Some(m), Some(s)) if s != -1 && (s as u64) < m => {
            return Err(SpecGenError::Resources {
                reason: "minimum memory-swap limit should be larger than memory limit",
            })
        }
        _ => {}
    }
    if let (Some(m), Some(res)) = (r.memory, r.memory_reservation) {
        if res > m {
            return Err(SpecGenError::Resources {
                reason: "minimum memory limit can not be less than memory reservation limit",
            });
        }
    }

    if let Some(cpus) = r.cpus {
        // Docker's bound: no more CPUs than the host (this process's affinity) has.
        let available = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cpus.0 > available as u64 * 1_000_000_000 {
            return Err(SpecGenError::TooManyCpus {
                requested: cpus,
                available,
            });
        }
    }

    let mut b = LinuxResourcesBuilder::default();
    if r.memory.is_some() || r.memory_reservation.is_some() {
        let mut mem = LinuxMemoryBuilder::default();
        if let Some(m) = r.memory {
            mem = mem.limit(to_i64(m));
            // Without --memory-swap docker lets the container use as much swap as memory.
            let swap = r.memory_swap.unwrap_or_else(|| to_i64(m).saturating_mul(2));
            if swap_accounting() {
                mem = mem.swap(swap);
            }
        }
        if let Some(res) = r.memory_reservation {
            mem = mem.reservation(to_i64(res));
        }
        b = b.memory(mem.build().map_err(build_err("memory resources"))?);
    }
    if r.cpus.is_some() || r.cpu_shares.is_some() || r.cpuset_cpus.is_some() {
        let mut cpu = LinuxCpuBuilder::default();
        if let Some(cpus) = r.cpus.filter(|c| c.0 > 0) {
            cpu = cpu.quota(cpus.quota(CPU_PERIOD)).period(CPU_PERIOD);
        }
        if let Some(shares) = r.cpu_shares {
            cpu = cpu.shares(shares);
        }
        if let Some(set) = &r.cpuset_cpus {
            cpu = cpu.cpus(set.clone());
        }
        b = b.cpu(cpu.build().map_err(build_err("cpu resources"))?);
    }
    if let Some(limit) = r.pids_limit.filter(|l| *l > 0) {
        let pids = LinuxPidsBuilder::default().limit(limit).build();
        b = b.pids(pids.map_err(build_err("pids resources"))?);
    }
    Ok(b)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn cgroup_rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Result<LinuxDeviceCgroup, SpecGenError> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .access(access);
    if let Some(t) = typ {
        b = b.typ(t);
    }
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().map_err(build_err("device cgroup rule"))
}

/// The device cgroup: deny everything, then allow mknod of any node (creating one is harmless,
/// opening it is what the rules guard) and the standard devices every container gets: null,
/// zero, full, random, urandom, tty, console, ptmx and the pty slaves.
pub(crate) fn default_device_rules() -> Result<Vec<LinuxDeviceCgroup>, SpecGenError> {
    use LinuxDeviceType::{B, C};
    let mut rules = vec![
        cgroup_rule(false, None, None, None, "rwm")?,
        cgroup_rule(true, Some(C), None, None, "m")?,
        cgroup_rule(true, Some(B), None, None, "m")?,
    ];
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
    ] {
        rules.push(cgroup_rule(true, Some(C), Some(major), Some(minor), "rwm")?);
    }
    rules.push(cgroup_rule(true, Some(C), Some(136), None, "rwm")?);
    Ok(rules)
}

/// Allow-all rule used with --privileged.
pub(crate) fn allow_all_devices() -> Result<Vec<LinuxDeviceCgroup>, SpecGenError> {
    Ok(vec![cgroup_rule(true, None, None, None, "rwm")?])
}

/// Creates the OCI device for a host node at `ctr_path`; `None` if it is not a device.
fn device_at(host: &Path, ctr_path: &Path) -> Result<Option<LinuxDevice>, SpecGenError> {
    let meta = fs::metadata(host).map_err(|source| SpecGenError::Device {
        path: host.to_path_buf(),
        source,
    })?;
    let ft = meta.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Ok(None);
    };
    let dev = meta.rdev();
    LinuxDeviceBuilder::default()
        .path(ctr_path)
        .typ(typ)
        .major(i64::from(rustix::fs::major(dev)))
        .minor(i64::from(rustix::fs::minor(dev)))
        .file_mode(meta.mode() & 0o7777)
        .uid(meta.uid())
        .gid(meta.gid())
        .build()
        .map(Some)
        .map_err(build_err("device"))
}

/// `--device` requests: a device node, or a directory whose device nodes are all added under
/// the container path (as docker does for e.g. /dev/snd). Returns the devices and their
/// cgroup allow rules.
pub(crate) fn requested_devices(
    requests: &[DeviceRequest],
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), SpecGenError> {
    let (mut devices, mut rules) = (Vec::new(), Vec::new());
    for req in requests {
        let meta = fs::metadata(&req.host_path).map_err(|source| SpecGenError::Device {
            path: req.host_path.clone(),
            source,
        })?;
        let found = if meta.is_dir() {
            let mut found = Vec::new();
            walk_devices(
                &req.host_path,
                &mut |host| {
                    let rel = host.strip_prefix(&req.host_path).unwrap_or(host);
                    device_at(host, &req.container_path.join(rel))
                },
                &mut found,
            )?;
            found
        } else {
            let dev = device_at(&req.host_path, &req.container_path)?;
            vec![dev.ok_or_else(|| SpecGenError::NotADevice {
                path: req.host_path.clone(),
            })?]
        };
        for d in found {
            rules.push(cgroup_rule(
                true,
                Some(d.typ()),
                Some(d.major()),
                Some(d.minor()),
                &req.permissions,
            )?);
            devices.push(d);
        }
    }
    Ok((devices, rules))
}

/// Every char and block device under the host's /dev, for --privileged (runc's GetDevices
/// rules: skip the per-container pseudo filesystems and /dev/console).
pub(crate) fn host_devices() -> Result<Vec<LinuxDevice>, SpecGenError> {
    let mut found = Vec::new();
    walk_devices(
        Path::new("/dev"),
        &mut |p| {
            if p == Path::new("/dev/console") {
                return Ok(None);
            }
            device_at(p, p)
        },
        &mut found,
    )?;
    Ok(found)
}

const SKIPPED_DEV_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

fn walk_devices(
    dir: &Path,
    make: &mut dyn FnMut(&Path) -> Result<Option<LinuxDevice>, SpecGenError>,
    out: &mut Vec<LinuxDevice>,
) -> Result<(), SpecGenError> {
    let entries = fs::read_dir(dir).map_err(|source| SpecGenError::Device {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let path: PathBuf = entry.path();
        // Entries may vanish while we walk (hotplug); skip what cannot be examined.
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            let skip = entry
                .file_name()
                .to_str()
                .is_some_and(|n| SKIPPED_DEV_DIRS.contains(&n));
            if !skip {
                walk_devices(&path, make, out)?;
            }
        } else if ft.is_char_device() || ft.is_block_device() {
            match make(&path) {
                Ok(Some(dev)) => out.push(dev),
                Ok(None) => {}
                Err(SpecGenError::Device { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
