//! `linux.resources` validated once into [`Limits`], which the v1 and v2 writers apply.
//!
//! Every field is optional: `None` leaves the kernel's value alone, which is what `update`
//! needs (only the given flags change). Zero means "unset" where runc treats it so.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxResources, LinuxThrottleDevice};

use super::devices::{self, DeviceRule};
use super::CgroupError;

/// The value runc and the kernel use for "no memory limit" in v1 files (-1).
pub const MEMORY_UNLIMITED: i64 = -1;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory: Memory,
    pub cpu: Cpu,
    /// pids.max; -1 for "max".
    pub pids: Option<i64>,
    pub block_io: BlockIo,
    /// (page size such as "2MB", limit in bytes).
    pub hugepages: Vec<(String, u64)>,
    pub network: Network,
    /// cgroup v2 file name → value, written as given.
    pub unified: BTreeMap<String, String>,
    /// Device rules in order (later rules win); empty means "leave the device list alone".
    pub devices: Vec<DeviceRule>,
}

/// Memory values in bytes; -1 means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    pub limit: Option<i64>,
    pub reservation: Option<i64>,
    /// memory + swap, as in the OCI spec and v1's memory.memsw.limit_in_bytes.
    pub swap: Option<i64>,
    pub kernel_tcp: Option<i64>,
    pub swappiness: Option<u64>,
    pub disable_oom_killer: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cpu {
    pub shares: Option<u64>,
    /// Microseconds per period; -1 means no limit.
    pub quota: Option<i64>,
    pub period: Option<u64>,
    pub burst: Option<u64>,
    pub realtime_runtime: Option<i64>,
    pub realtime_period: Option<u64>,
    pub cpus: Option<String>,
    pub mems: Option<String>,
    pub idle: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockIo {
    /// 10..=1000 (the v1 scale; v2 converts).
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
    /// (major, minor, weight).
    pub weight_device: Vec<(u64, u64, u16)>,
    pub throttle_read_bps: Vec<(u64, u64, u64)>,
    pub throttle_write_bps: Vec<(u64, u64, u64)>,
    pub throttle_read_iops: Vec<(u64, u64, u64)>,
    pub throttle_write_iops: Vec<(u64, u64, u64)>,
}

impl BlockIo {
    pub fn is_empty(&self) -> bool {
        *self == BlockIo::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Network {
    pub class_id: Option<u32>,
    pub priorities: Vec<(String, u32)>,
}

fn invalid(field: impl Into<String>, value: impl ToString, reason: &'static str) -> CgroupError {
    CgroupError::Invalid {
        field: field.into(),
        value: value.to_string(),
        reason,
    }
}

/// None for zero (runc's "unset"), the value itself otherwise.
fn nonzero<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|x| *x != T::default())
}

impl Limits {
    /// Validates `linux.resources` (and allows `linux.devices`, which the container gets as
    /// device nodes) into limits.
    pub fn from_spec(linux: &oci_spec::runtime::Linux) -> Result<Limits, CgroupError> {
        let empty = LinuxResources::default();
        let res = linux.resources().as_ref().unwrap_or(&empty);
        Limits::from_resources(res)
    }

    /// Validates a resources object (the spec's, or `update -r`'s).
    pub fn from_resources(res: &LinuxResources) -> Result<Limits, CgroupError> {
        let mut l = Limits::default();
        if let Some(m) = res.memory() {
            let f = "linux.resources.memory";
            l.memory.limit = check_bytes(&format!("{f}.limit"), nonzero(m.limit()))?;
            l.memory.reservation = check_bytes(&format!("{f}.reservation"), m.reservation())?;
            l.memory.swap = check_bytes(&format!("{f}.swap"), nonzero(m.swap()))?;
            l.memory.kernel_tcp = check_bytes(&format!("{f}.kernelTCP"), m.kernel_tcp())?;
            if let (Some(limit), Some(swap)) = (l.memory.limit, l.memory.swap) {
                if limit > 0 && swap > 0 && swap < limit {
                    return Err(invalid(
                        format!("{f}.swap"),
                        swap,
                        "memory+swap must be at least memory.limit",
                    ));
                }
            }
            if let Some(s) = m.swappiness() {
                if s > 100 {
                    return Err(invalid(format!("{f}.swappiness"), s, "must be 0..=100"));
                }
                l.memory.swappiness = Some(s);
            }
            l.memory.disable_oom_killer = m.disable_oom_killer();
        }
        if let Some(c) = res.cpu() {
            let f = "linux.resources.cpu";
            if let Some(s) = nonzero(c.shares()) {
                if !(2..=262_144).contains(&s) {
                    return Err(invalid(format!("{f}.shares"), s, "must be 2..=262144"));
                }
                l.cpu.shares = Some(s);
            }
            if let Some(q) = nonzero(c.quota()) {
                // sched-bwc.rst: the quota is at least 1 ms; -1 removes the limit.
                if q != -1 && q < 1000 {
                    return Err(invalid(
                        format!("{f}.quota"),
                        q,
                        "must be -1 (no limit) or at least 1000 microseconds",
                    ));
                }
                l.cpu.quota = Some(q);
            }
            if let Some(p) = nonzero(c.period()) {
                if !(1000..=1_000_000).contains(&p) {
                    return Err(invalid(
                        format!("{f}.period"),
                        p,
                        "must be 1000..=1000000 microseconds",
                    ));
                }
                l.cpu.period = Some(p);
            }
            l.cpu.burst = c.burst();
            if let Some(r) = nonzero(c.realtime_runtime()) {
                if r < -1 {
                    return Err(invalid(
                        format!("{f}.realtimeRuntime"),
                        r,
                        "must be -1 or at least 0",
                    ));
                }
                l.cpu.realtime_runtime = Some(r);
            }
            l.cpu.realtime_period = nonzero(c.realtime_period());
            l.cpu.cpus = c.cpus().clone().filter(|s| !s.is_empty());
            l.cpu.mems = c.mems().clone().filter(|s| !s.is_empty());
            if let Some(i) = c.idle() {
                if !(0..=1).contains(&i) {
                    return Err(invalid(format!("{f}.idle"), i, "must be 0 or 1"));
                }
                l.cpu.idle = Some(i);
            }
        }
        if let Some(p) = res.pids() {
            // runc: 0 leaves the limit alone, a negative value means no limit.
            l.pids = match p.limit() {
                0 => None,
                n if n < 0 => Some(-1),
                n => Some(n),
            };
        }
        if let Some(b) = res.block_io() {
            let f = "linux.resources.blockIO";
            l.block_io.weight = check_weight(&format!("{f}.weight"), nonzero(b.weight()))?;
            l.block_io.leaf_weight =
                check_weight(&format!("{f}.leafWeight"), nonzero(b.leaf_weight()))?;
            for (i, d) in b.weight_device().iter().flatten().enumerate() {
                let field = format!("{f}.weightDevice[{i}]");
                let (maj, min) = check_dev(&field, d.major(), d.minor())?;
                if let Some(w) = check_weight(&format!("{field}.weight"), d.weight())? {
                    l.block_io.weight_device.push((maj, min, w));
                }
            }
            let throttles = [
                (
                    "throttleReadBpsDevice",
                    b.throttle_read_bps_device(),
                    &mut l.block_io.throttle_read_bps,
                ),
                (
                    "throttleWriteBpsDevice",
                    b.throttle_write_bps_device(),
                    &mut l.block_io.throttle_write_bps,
                ),
                (
                    "throttleReadIOPSDevice",
                    b.throttle_read_iops_device(),
                    &mut l.block_io.throttle_read_iops,
                ),
                (
                    "throttleWriteIOPSDevice",
                    b.throttle_write_iops_device(),
                    &mut l.block_io.throttle_write_iops,
                ),
            ];
            for (name, list, out) in throttles {
                for (i, d) in list.iter().flatten().enumerate() {
                    out.push(throttle(&format!("{f}.{name}[{i}]"), d)?);
                }
            }
        }
        for (i, h) in res.hugepage_limits().iter().flatten().enumerate() {
            let field = format!("linux.resources.hugepageLimits[{i}]");
            let size = h.page_size();
            let digits = size.trim_end_matches(['K', 'M', 'G', 'B']);
            let unit = &size[digits.len()..];
            if digits.is_empty()
                || !digits.bytes().all(|b| b.is_ascii_digit())
                || !matches!(unit, "KB" | "MB" | "GB")
            {
                return Err(invalid(
                    format!("{field}.pageSize"),
                    size,
                    "expected a size such as 2MB or 1GB",
                ));
            }
            let limit = u64::try_from(h.limit()).map_err(|_| {
                invalid(format!("{field}.limit"), h.limit(), "must not be negative")
            })?;
            l.hugepages.push((size.clone(), limit));
        }
        if let Some(n) = res.network() {
            l.network.class_id = n.class_id();
            for p in n.priorities().iter().flatten() {
                if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                    return Err(invalid(
                        "linux.resources.network.priorities.name",
                        format!("{:?}", p.name()),
                        "must be an interface name",
                    ));
                }
                l.network.priorities.push((p.name().clone(), p.priority()));
            }
        }
        for (k, v) in res.unified().iter().flatten() {
            // A key names a file in the container's own cgroup directory, nothing else.
            if k.is_empty() || k.contains('/') || k.starts_with('.') {
                return Err(invalid(
                    "linux.resources.unified",
                    format!("{k:?}"),
                    "a key must be a file name in the cgroup directory",
                ));
            }
            l.unified.insert(k.clone(), v.clone());
        }
        l.devices = devices::rules(res.devices().as_deref().unwrap_or(&[]))?;
        Ok(l)
    }
}

/// Byte values: -1 (unlimited) or not negative.
fn check_bytes(field: &str, v: Option<i64>) -> Result<Option<i64>, CgroupError> {
    match v {
        Some(n) if n < -1 => Err(invalid(
            field,
            n,
            "must be -1 (unlimited) or a number of bytes",
        )),
        other => Ok(other),
    }
}

fn check_weight(field: &str, v: Option<u16>) -> Result<Option<u16>, CgroupError> {
    match v {
        Some(w) if !(10..=1000).contains(&w) => Err(invalid(field, w, "must be 10..=1000")),
        other => Ok(other),
    }
}

fn check_dev(field: &str, major: i64, minor: i64) -> Result<(u64, u64), CgroupError> {
    let maj = u64::try_from(major)
        .map_err(|_| invalid(format!("{field}.major"), major, "must not be negative"))?;
    let min = u64::try_from(minor)
        .map_err(|_| invalid(format!("{field}.minor"), minor, "must not be negative"))?;
    Ok((maj, min))
}

fn throttle(field: &str, d: &LinuxThrottleDevice) -> Result<(u64, u64, u64), CgroupError> {
    let (maj, min) = check_dev(field, d.major(), d.minor())?;
    Ok((maj, min, d.rate()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Limits, CgroupError> {
        let res: LinuxResources = serde_json::from_str(json).unwrap();
        Limits::from_resources(&res)
    }

    #[test]
    fn negative_quota_is_rejected_with_the_field_name() {
        let err = parse(r#"{"cpu":{"quota":-5}}"#).unwrap_err().to_string();
        assert!(
            err.contains("linux.resources.cpu.quota") && err.contains("-5"),
            "{err}"
        );
        assert_eq!(
            parse(r#"{"cpu":{"quota":-1}}"#).unwrap().cpu.quota,
            Some(-1)
        );
    }

    #[test]
    fn zero_means_unset_and_negative_pids_mean_max() {
        let l = parse(r#"{"memory":{"limit":0},"cpu":{"shares":0},"pids":{"limit":-3}}"#).unwrap();
        assert_eq!(l.memory.limit, None);
        assert_eq!(l.cpu.shares, None);
        assert_eq!(l.pids, Some(-1));
    }

    #[test]
    fn swap_below_the_limit_and_bad_keys_are_rejected() {
        assert!(parse(r#"{"memory":{"limit":100000000,"swap":1000}}"#).is_err());
        assert!(parse(r#"{"unified":{"../x":"1"}}"#).is_err());
        assert!(parse(r#"{"hugepageLimits":[{"pageSize":"2XB","limit":1}]}"#).is_err());
        assert!(parse(r#"{"blockIO":{"weight":5}}"#).is_err());
    }
}
