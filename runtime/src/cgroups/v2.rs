//! Writing [`Limits`] to a unified (cgroup v2) hierarchy. File names and formats:
//! Documentation/admin-guide/cgroup-v2.rst.

use std::fs;
use std::path::Path;

use super::resources::{BlockIo, Cpu, Memory};
use super::{devices, write_file, CgroupError, CgroupPaths, Limits};

/// Controllers the runtime limits; each is enabled only if the parent offers it.
const CONTROLLERS: [&str; 6] = ["cpuset", "cpu", "io", "memory", "pids", "hugetlb"];

/// Enables the controllers in `cgroup.subtree_control` of every ancestor of `dir`, from the
/// mount point down, so `dir` gets their interface files. Best effort: the "no internal
/// processes" rule (cgroup-v2.rst) makes the kernel refuse (EBUSY) in a non-root ancestor that
/// has processes of its own, e.g. a relative cgroupsPath under the caller's busy cgroup; a
/// limit that then cannot be written fails later with the file named.
pub(crate) fn enable_controllers(mount_point: &Path, dir: &Path) {
    let mut ancestors: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .take_while(|a| a.starts_with(mount_point))
        .collect();
    ancestors.reverse();
    for a in ancestors {
        let available = fs::read_to_string(a.join("cgroup.controllers")).unwrap_or_default();
        let enabled = fs::read_to_string(a.join("cgroup.subtree_control")).unwrap_or_default();
        for c in CONTROLLERS {
            let has = |s: &str| s.split_whitespace().any(|x| x == c);
            if has(&available) && !has(&enabled) {
                if let Err(e) = fs::write(a.join("cgroup.subtree_control"), format!("+{c}")) {
                    crate::logging::debug(&format!(
                        "enabling {c} in {}: {e}",
                        a.join("cgroup.subtree_control").display()
                    ));
                }
            }
        }
    }
}

pub(crate) fn apply(paths: &CgroupPaths, l: &Limits) -> Result<(), CgroupError> {
    let Some(dir) = paths.unified_dir() else {
        return Err(CgroupError::NoHierarchy);
    };
    let f = "linux.resources";
    if let Some(v) = &l.cpu.cpus {
        write_file(&format!("{f}.cpu.cpus"), &dir.join("cpuset.cpus"), v)?;
    }
    if let Some(v) = &l.cpu.mems {
        write_file(&format!("{f}.cpu.mems"), &dir.join("cpuset.mems"), v)?;
    }
    memory(dir, &l.memory)?;
    cpu(dir, &l.cpu)?;
    if let Some(p) = l.pids {
        let value = if p < 0 {
            "max".to_string()
        } else {
            p.to_string()
        };
        write_file(&format!("{f}.pids.limit"), &dir.join("pids.max"), &value)?;
    }
    io(dir, &l.block_io)?;
    for (size, limit) in &l.hugepages {
        let file = dir.join(format!("hugetlb.{size}.max"));
        write_file(&format!("{f}.hugepageLimits"), &file, &limit.to_string())?;
    }
    if l.network.class_id.is_some() || !l.network.priorities.is_empty() {
        // net_cls and net_prio have no v2 counterpart (the kernel doc points to eBPF).
        return Err(CgroupError::Unsupported {
            field: "linux.resources.network",
            version: "v2 (net_cls/net_prio exist only in v1)",
        });
    }
    for (key, value) in &l.unified {
        let file = dir.join(key);
        if !file.exists() {
            return Err(CgroupError::UnknownUnifiedKey {
                key: key.clone(),
                dir: dir.to_path_buf(),
            });
        }
        write_file(&format!("{f}.unified[{key:?}]"), &file, value)?;
    }
    if !l.devices.is_empty() {
        devices::apply_v2(dir, &l.devices)?;
    }
    Ok(())
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

fn memory(dir: &Path, m: &Memory) -> Result<(), CgroupError> {
    let f = "linux.resources.memory";
    if let Some(limit) = m.limit {
        write_file(
            &format!("{f}.limit"),
            &dir.join("memory.max"),
            &max_or(limit),
        )?;
    }
    if let Some(swap) = m.swap {
        // The OCI value is memory+swap (v1's memsw); v2's memory.swap.max counts swap alone.
        let value = if swap < 0 {
            "max".to_string()
        } else {
            let limit = match m.limit {
                Some(l) => l,
                None => {
                    let cur = fs::read_to_string(dir.join("memory.max")).unwrap_or_default();
                    cur.trim().parse::<i64>().unwrap_or(-1)
                }
            };
            if limit < 0 {
                return Err(CgroupError::Invalid {
                    field: format!("{f}.swap"),
                    value: swap.to_string(),
                    reason: "memory+swap needs a memory limit on cgroup v2",
                });
            }
            (swap - limit).max(0).to_string()
        };
        write_file(&format!("{f}.swap"), &dir.join("memory.swap.max"), &value)?;
    }
    if let Some(r) = m.reservation {
        write_file(
            &format!("{f}.reservation"),
            &dir.join("memory.low"),
            &max_or(r),
        )?;
    }
    // swappiness, disableOOMKiller and kernelTCP have no v2 file; runc ignores them there
    // too, and so does this runtime (with a note in the debug log).
    if m.swappiness.is_some() || m.disable_oom_killer == Some(true) || m.kernel_tcp.is_some() {
        crate::logging::debug("memory swappiness/disableOOMKiller/kernelTCP ignored on cgroup v2");
    }
    Ok(())
}

fn cpu(dir: &Path, c: &Cpu) -> Result<(), CgroupError> {
    let f = "linux.resources.cpu";
    if let Some(shares) = c.shares {
        write_file(
            &format!("{f}.shares"),
            &dir.join("cpu.weight"),
            &cpu_weight(shares).to_string(),
        )?;
    }
    if c.quota.is_some() || c.period.is_some() {
        // cpu.max is "$MAX $PERIOD"; keep whichever half was not given.
        let file = dir.join("cpu.max");
        let cur = fs::read_to_string(&file).unwrap_or_default();
        let mut parts = cur.split_whitespace();
        let (cur_max, cur_period) = (
            parts.next().unwrap_or("max"),
            parts.next().unwrap_or("100000"),
        );
        let max = c.quota.map_or(cur_max.to_string(), max_or);
        let period = c.period.map_or(cur_period.to_string(), |p| p.to_string());
        write_file(&format!("{f}.quota"), &file, &format!("{max} {period}"))?;
    }
    if let Some(b) = c.burst {
        write_file(
            &format!("{f}.burst"),
            &dir.join("cpu.max.burst"),
            &b.to_string(),
        )?;
    }
    if let Some(i) = c.idle {
        write_file(&format!("{f}.idle"), &dir.join("cpu.idle"), &i.to_string())?;
    }
    if c.realtime_runtime.is_some() || c.realtime_period.is_some() {
        return Err(CgroupError::Unsupported {
            field: "linux.resources.cpu.realtimeRuntime/realtimePeriod",
            version: "v2 (the cpu controller has no realtime group scheduling there)",
        });
    }
    Ok(())
}

/// Shares 2..=262144 map linearly onto cpu.weight 1..=10000 (runc's conversion).
fn cpu_weight(shares: u64) -> u64 {
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// blkio weights (10..=1000) onto io.weight (1..=10000), as runc converts them.
fn io_weight(w: u16) -> u64 {
    1 + (u64::from(w) - 10) * 9999 / 990
}

fn io(dir: &Path, b: &BlockIo) -> Result<(), CgroupError> {
    if b.is_empty() {
        return Ok(());
    }
    let f = "linux.resources.blockIO";
    // BFQ's io.bfq.weight takes the blkio scale as it is; io.weight is the generic one.
    let bfq = dir.join("io.bfq.weight");
    if let Some(w) = b.weight {
        if bfq.exists() {
            write_file(&format!("{f}.weight"), &bfq, &w.to_string())?;
        } else {
            let v = format!("default {}", io_weight(w));
            write_file(&format!("{f}.weight"), &dir.join("io.weight"), &v)?;
        }
    }
    for (maj, min, w) in &b.weight_device {
        if bfq.exists() {
            write_file(
                &format!("{f}.weightDevice"),
                &bfq,
                &format!("{maj}:{min} {w}"),
            )?;
        } else {
            let v = format!("{maj}:{min} {}", io_weight(*w));
            write_file(&format!("{f}.weightDevice"), &dir.join("io.weight"), &v)?;
        }
    }
    for (list, key, name) in [
        (&b.throttle_read_bps, "rbps", "throttleReadBpsDevice"),
        (&b.throttle_write_bps, "wbps", "throttleWriteBpsDevice"),
        (&b.throttle_read_iops, "riops", "throttleReadIOPSDevice"),
        (&b.throttle_write_iops, "wiops", "throttleWriteIOPSDevice"),
    ] {
        for (maj, min, rate) in list {
            let v = format!("{maj}:{min} {key}={rate}");
            write_file(&format!("{f}.{name}"), &dir.join("io.max"), &v)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_scales_map_onto_the_v2_ranges() {
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(1024), 39);
        assert_eq!(cpu_weight(262_144), 10000);
        assert_eq!(io_weight(10), 1);
        assert_eq!(io_weight(1000), 10000);
    }
}
