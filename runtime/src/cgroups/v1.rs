//! Writing [`Limits`] to cgroup v1 hierarchies (also the hybrid layout, whose cgroup2 mount
//! has no controllers). File names: Documentation/admin-guide/cgroup-v1/*.rst.

use std::fs;
use std::io;
use std::path::Path;

use super::resources::{BlockIo, Cpu, Memory};
use super::{devices, write_file, CgroupError, CgroupPaths, Limits};

pub(crate) fn apply(paths: &CgroupPaths, l: &Limits) -> Result<(), CgroupError> {
    if let Some(key) = l.unified.keys().next() {
        return Err(CgroupError::UnifiedNeedsV2 {
            key: key.clone(),
            layout: paths.layout(),
        });
    }
    cpuset(paths, &l.cpu)?;
    memory(paths, &l.memory)?;
    cpu(paths, &l.cpu)?;
    if let Some(p) = l.pids {
        let dir = need(paths, "pids", "linux.resources.pids")?;
        let value = if p < 0 {
            "max".to_string()
        } else {
            p.to_string()
        };
        write_file("linux.resources.pids.limit", &dir.join("pids.max"), &value)?;
    }
    blkio(paths, &l.block_io)?;
    for (size, limit) in &l.hugepages {
        let dir = need(paths, "hugetlb", "linux.resources.hugepageLimits")?;
        let file = dir.join(format!("hugetlb.{size}.limit_in_bytes"));
        write_file("linux.resources.hugepageLimits", &file, &limit.to_string())?;
    }
    if let Some(id) = l.network.class_id {
        let dir = need(paths, "net_cls", "linux.resources.network.classID")?;
        write_file(
            "linux.resources.network.classID",
            &dir.join("net_cls.classid"),
            &id.to_string(),
        )?;
    }
    for (iface, prio) in &l.network.priorities {
        let dir = need(paths, "net_prio", "linux.resources.network.priorities")?;
        let file = dir.join("net_prio.ifpriomap");
        write_file(
            "linux.resources.network.priorities",
            &file,
            &format!("{iface} {prio}"),
        )?;
    }
    if !l.devices.is_empty() {
        let dir = need(paths, "devices", "linux.resources.devices")?;
        devices::apply_v1(dir, &l.devices)?;
    }
    Ok(())
}

fn need<'a>(
    paths: &'a CgroupPaths,
    controller: &'static str,
    field: &'static str,
) -> Result<&'a Path, CgroupError> {
    paths.v1_dir(controller).ok_or(CgroupError::NoController {
        field,
        controller,
        layout: paths.layout(),
    })
}

fn cpuset(paths: &CgroupPaths, c: &Cpu) -> Result<(), CgroupError> {
    for (value, file, field) in [
        (&c.cpus, "cpuset.cpus", "linux.resources.cpu.cpus"),
        (&c.mems, "cpuset.mems", "linux.resources.cpu.mems"),
    ] {
        if let Some(v) = value {
            let dir = need(paths, "cpuset", field)?;
            write_file(field, &dir.join(file), v)?;
        }
    }
    Ok(())
}

fn cpu(paths: &CgroupPaths, c: &Cpu) -> Result<(), CgroupError> {
    let f = "linux.resources.cpu";
    let s = |v: Option<i64>| v.map(|v| v.to_string());
    let u = |v: Option<u64>| v.map(|v| v.to_string());
    let one = |value: Option<String>, file: &str, name: &str| -> Result<(), CgroupError> {
        match value {
            Some(v) => {
                let dir = need(paths, "cpu", "linux.resources.cpu")?;
                write_file(&format!("{f}.{name}"), &dir.join(file), &v)
            }
            None => Ok(()),
        }
    };
    one(u(c.shares), "cpu.shares", "shares")?;
    // A quota is checked against the period in force and against the parent's limit
    // (sched-bwc.rst), an RT runtime against its period (sched-rt-group.rst): the period
    // goes first, and if the kernel refuses it while the other value is being set too,
    // after it.
    for [(period, pfile, pname), (other, ofile, oname)] in [
        [
            (u(c.period), "cpu.cfs_period_us", "period"),
            (s(c.quota), "cpu.cfs_quota_us", "quota"),
        ],
        [
            (u(c.realtime_period), "cpu.rt_period_us", "realtimePeriod"),
            (
                s(c.realtime_runtime),
                "cpu.rt_runtime_us",
                "realtimeRuntime",
            ),
        ],
    ] {
        match one(period.clone(), pfile, pname) {
            Err(CgroupError::Write { source, .. })
                if other.is_some() && source.raw_os_error() == Some(libc::EINVAL) =>
            {
                one(other, ofile, oname)?;
                one(period, pfile, pname)?;
            }
            first => {
                first?;
                one(other, ofile, oname)?;
            }
        }
        if pname == "period" {
            one(u(c.burst), "cpu.cfs_burst_us", "burst")?;
        }
    }
    one(s(c.idle), "cpu.idle", "idle")
}

fn memory(paths: &CgroupPaths, m: &Memory) -> Result<(), CgroupError> {
    if *m == Memory::default() {
        return Ok(());
    }
    let dir = need(paths, "memory", "linux.resources.memory")?;
    let f = "linux.resources.memory";
    let limit_file = dir.join("memory.limit_in_bytes");
    let swap_file = dir.join("memory.memsw.limit_in_bytes");
    if m.swap.is_some() && !swap_file.exists() {
        return Err(CgroupError::NoController {
            field: "linux.resources.memory.swap",
            controller: "memory swap accounting (memory.memsw.*)",
            layout: paths.layout(),
        });
    }
    // Lifting the memory limit (-1) without a word about swap lifts the swap limit too, as
    // runc does: the kernel refuses a memory limit above the memory+swap one.
    let swap = m
        .swap
        .or_else(|| (m.limit == Some(-1) && swap_file.exists()).then_some(-1));
    match (m.limit, swap) {
        (Some(limit), Some(swap)) => {
            // memory.rst: memsw.limit_in_bytes may never be below limit_in_bytes, so the kernel
            // rejects (EINVAL) whichever write would cross them: raise memsw first when it
            // grows, lower the limit first when it shrinks.
            match write_file(&format!("{f}.swap"), &swap_file, &swap.to_string()) {
                Ok(()) => write_file(&format!("{f}.limit"), &limit_file, &limit.to_string())?,
                Err(CgroupError::Write { source, .. })
                    if source.raw_os_error() == Some(libc::EINVAL) =>
                {
                    write_file(&format!("{f}.limit"), &limit_file, &limit.to_string())?;
                    write_file(&format!("{f}.swap"), &swap_file, &swap.to_string())?;
                }
                Err(e) => return Err(e),
            }
        }
        (Some(limit), None) => write_file(&format!("{f}.limit"), &limit_file, &limit.to_string())?,
        (None, Some(swap)) => write_file(&format!("{f}.swap"), &swap_file, &swap.to_string())?,
        (None, None) => {}
    }
    let rest = [
        (
            m.reservation.map(|v| v.to_string()),
            "memory.soft_limit_in_bytes",
            "reservation",
        ),
        (
            m.kernel_tcp.map(|v| v.to_string()),
            "memory.kmem.tcp.limit_in_bytes",
            "kernelTCP",
        ),
        (
            m.swappiness.map(|v| v.to_string()),
            "memory.swappiness",
            "swappiness",
        ),
        (
            m.disable_oom_killer.map(|b| u8::from(b).to_string()),
            "memory.oom_control",
            "disableOOMKiller",
        ),
    ];
    for (value, file, name) in rest {
        if let Some(v) = value {
            write_file(&format!("{f}.{name}"), &dir.join(file), &v)?;
        }
    }
    Ok(())
}

fn blkio(paths: &CgroupPaths, b: &BlockIo) -> Result<(), CgroupError> {
    if b.is_empty() {
        return Ok(());
    }
    let dir = need(paths, "blkio", "linux.resources.blockIO")?;
    let f = "linux.resources.blockIO";
    // Without CFQ (gone since Linux 5.0) the weight files exist only with BFQ, as blkio.bfq.*.
    let weight_file = |plain: &str, bfq: &str, field: &'static str| {
        [plain, bfq]
            .iter()
            .map(|name| dir.join(name))
            .find(|p| p.exists())
            .ok_or(CgroupError::NoController {
                field,
                controller:
                    "blkio weight (blkio.weight or blkio.bfq.weight: needs the BFQ I/O scheduler)",
                layout: paths.layout(),
            })
    };
    if let Some(w) = b.weight {
        let file = weight_file(
            "blkio.weight",
            "blkio.bfq.weight",
            "linux.resources.blockIO.weight",
        )?;
        write_file(&format!("{f}.weight"), &file, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight {
        write_file(
            &format!("{f}.leafWeight"),
            &dir.join("blkio.leaf_weight"),
            &w.to_string(),
        )?;
    }
    for (maj, min, w) in &b.weight_device {
        let file = weight_file(
            "blkio.weight_device",
            "blkio.bfq.weight_device",
            "linux.resources.blockIO.weightDevice",
        )?;
        write_file(
            &format!("{f}.weightDevice"),
            &file,
            &format!("{maj}:{min} {w}"),
        )?;
    }
    for (list, file, name) in [
        (
            &b.throttle_read_bps,
            "blkio.throttle.read_bps_device",
            "throttleReadBpsDevice",
        ),
        (
            &b.throttle_write_bps,
            "blkio.throttle.write_bps_device",
            "throttleWriteBpsDevice",
        ),
        (
            &b.throttle_read_iops,
            "blkio.throttle.read_iops_device",
            "throttleReadIOPSDevice",
        ),
        (
            &b.throttle_write_iops,
            "blkio.throttle.write_iops_device",
            "throttleWriteIOPSDevice",
        ),
    ] {
        for (maj, min, rate) in list {
            write_file(
                &format!("{f}.{name}"),
                &dir.join(file),
                &format!("{maj}:{min} {rate}"),
            )?;
        }
    }
    Ok(())
}

/// A new v1 cpuset cgroup starts with empty cpuset.cpus and cpuset.mems, and the kernel
/// refuses tasks until both are set (ENOSPC): copy them down from the nearest ancestor.
pub(crate) fn inherit_cpuset(mount_point: &Path, dir: &Path) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let mut chain = vec![dir.to_path_buf()];
        let mut cur = dir;
        while let Some(parent) = cur.parent() {
            if !parent.starts_with(mount_point) {
                break;
            }
            chain.push(parent.to_path_buf());
            cur = parent;
        }
        // From the top down: each empty level takes its parent's value.
        let mut value = String::new();
        for level in chain.iter().rev() {
            let path = level.join(file);
            let current = fs::read_to_string(&path).unwrap_or_default();
            if current.trim().is_empty() && !value.trim().is_empty() {
                fs::write(&path, value.trim()).map_err(|source: io::Error| CgroupError::Io {
                    action: "writing",
                    path: path.clone(),
                    source,
                })?;
            } else {
                value = current;
            }
        }
    }
    Ok(())
}
