//! `GET /containers/{id}/stats`, `berth stats`: a container's resource use read from its
//! cgroup (v1, as on hybrid hosts, or v2) and its network namespace's `/proc/<pid>/net/dev`,
//! in docker's `StatsJSON` shape.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::container::Status;
use crate::ops::cancel::Cancel;
use crate::ops::error::Result;
use crate::ops::Engine;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub name: String,
    pub id: String,
    pub read: String,
    pub preread: String,
    pub pids_stats: PidsStats,
    pub blkio_stats: BlkioStats,
    pub num_procs: u32,
    pub storage_stats: BTreeMap<String, u64>,
    pub cpu_stats: CpuStats,
    pub precpu_stats: CpuStats,
    pub memory_stats: MemoryStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, NetworkStats>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PidsStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Option<Vec<BlkioEntry>>,
    pub io_serviced_recursive: Option<Vec<BlkioEntry>>,
    pub io_queue_recursive: Option<Vec<BlkioEntry>>,
    pub io_service_time_recursive: Option<Vec<BlkioEntry>>,
    pub io_wait_time_recursive: Option<Vec<BlkioEntry>>,
    pub io_merged_recursive: Option<Vec<BlkioEntry>>,
    pub io_time_recursive: Option<Vec<BlkioEntry>>,
    pub sectors_recursive: Option<Vec<BlkioEntry>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUsage {
    pub total_usage: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percpu_usage: Option<Vec<u64>>,
    pub usage_in_kernelmode: u64,
    pub usage_in_usermode: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throttling {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuStats {
    pub cpu_usage: CpuUsage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_cpu_usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online_cpus: Option<u32>,
    pub throttling_data: Throttling,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

impl Stats {
    /// docker's CPU %: the container's share of the host's CPU time since the previous
    /// sample, times the CPUs.
    pub fn cpu_percent(&self) -> f64 {
        let cpu = self
            .cpu_stats
            .cpu_usage
            .total_usage
            .saturating_sub(self.precpu_stats.cpu_usage.total_usage) as f64;
        let sys =
            self.cpu_stats
                .system_cpu_usage
                .unwrap_or(0)
                .saturating_sub(self.precpu_stats.system_cpu_usage.unwrap_or(0)) as f64;
        let cpus = self.cpu_stats.online_cpus.unwrap_or(1) as f64;
        if sys > 0.0 && cpu > 0.0 {
            cpu / sys * cpus * 100.0
        } else {
            0.0
        }
    }

    /// Memory in use as docker's CLI counts it: usage less the inactive page cache.
    pub fn memory_used(&self) -> u64 {
        let usage = self.memory_stats.usage.unwrap_or(0);
        let stats = self.memory_stats.stats.as_ref();
        let cache = stats
            .and_then(|s| {
                s.get("total_inactive_file")
                    .or_else(|| s.get("inactive_file"))
            })
            .copied()
            .unwrap_or(0);
        usage.saturating_sub(cache)
    }

    /// Bytes read and written (block devices).
    pub fn block_io(&self) -> (u64, u64) {
        let mut r = (0, 0);
        for e in self.blkio_stats.io_service_bytes_recursive.iter().flatten() {
            match e.op.to_ascii_lowercase().as_str() {
                "read" => r.0 += e.value,
                "write" => r.1 += e.value,
                _ => {}
            }
        }
        r
    }

    /// Bytes received and sent on every interface.
    pub fn net_io(&self) -> (u64, u64) {
        self.networks
            .iter()
            .flatten()
            .fold((0, 0), |(rx, tx), (_, n)| {
                (rx + n.rx_bytes, tx + n.tx_bytes)
            })
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn read_u64(path: &Path) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

fn kv(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

/// The host's CPU time in nanoseconds (the `cpu` line of /proc/stat) and its CPUs.
fn system_cpu() -> (u64, u32) {
    let text = read(Path::new("/proc/stat")).unwrap_or_default();
    let ticks: u64 = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(8)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let cpus = text
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count() as u32;
    (ticks * (1_000_000_000 / clock_ticks()), cpus.max(1))
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf reads a configuration value and touches no memory of ours.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

fn host_memory() -> u64 {
    read(Path::new("/proc/meminfo"))
        .and_then(|t| {
            let l = t.lines().find(|l| l.starts_with("MemTotal:"))?;
            l.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(u64::MAX, |kb| kb * 1024)
}

/// Where a controller's files for the cgroup are: `/sys/fs/cgroup/<ctl>/<cg>` on v1,
/// `/sys/fs/cgroup/<cg>` on v2.
fn dirs(cgroup: &Path) -> (bool, impl Fn(&str) -> PathBuf) {
    let v2 = Path::new(CGROUP_ROOT).join("cgroup.controllers").exists();
    let rel = cgroup.strip_prefix("/").unwrap_or(cgroup).to_path_buf();
    (v2, move |ctl: &str| {
        let base = Path::new(CGROUP_ROOT);
        if v2 {
            base.join(&rel)
        } else {
            base.join(ctl).join(&rel)
        }
    })
}

fn sample_cpu(v2: bool, dir: &dyn Fn(&str) -> PathBuf) -> CpuStats {
    let (system, cpus) = system_cpu();
    let mut c = CpuStats {
        system_cpu_usage: Some(system),
        online_cpus: Some(cpus),
        ..CpuStats::default()
    };
    if v2 {
        let s = kv(&read(&dir("cpu").join("cpu.stat")).unwrap_or_default());
        let g = |k: &str| s.get(k).copied().unwrap_or(0);
        c.cpu_usage.total_usage = g("usage_usec") * 1000;
        c.cpu_usage.usage_in_usermode = g("user_usec") * 1000;
        c.cpu_usage.usage_in_kernelmode = g("system_usec") * 1000;
        c.throttling_data = Throttling {
            periods: g("nr_periods"),
            throttled_periods: g("nr_throttled"),
            throttled_time: g("throttled_usec") * 1000,
        };
    } else {
        let acct = dir("cpuacct");
        c.cpu_usage.total_usage = read_u64(&acct.join("cpuacct.usage")).unwrap_or(0);
        c.cpu_usage.percpu_usage = read(&acct.join("cpuacct.usage_percpu")).map(|t| {
            t.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        });
        let st = kv(&read(&acct.join("cpuacct.stat")).unwrap_or_default());
        let ns = 1_000_000_000 / clock_ticks();
        c.cpu_usage.usage_in_usermode = st.get("user").copied().unwrap_or(0) * ns;
        c.cpu_usage.usage_in_kernelmode = st.get("system").copied().unwrap_or(0) * ns;
        let s = kv(&read(&dir("cpu").join("cpu.stat")).unwrap_or_default());
        let g = |k: &str| s.get(k).copied().unwrap_or(0);
        c.throttling_data = Throttling {
            periods: g("nr_periods"),
            throttled_periods: g("nr_throttled"),
            throttled_time: g("throttled_time"),
        };
    }
    c
}

fn blkio(v2: bool, dir: &dyn Fn(&str) -> PathBuf) -> BlkioStats {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    if v2 {
        for line in read(&dir("io").join("io.stat")).unwrap_or_default().lines() {
            let mut it = line.split_whitespace();
            let Some((major, minor)) = it.next().and_then(|d| d.split_once(':')) else {
                continue;
            };
            let (major, minor) = (major.parse().unwrap_or(0), minor.parse().unwrap_or(0));
            for f in it {
                let Some((k, v)) = f.split_once('=') else {
                    continue;
                };
                let v: u64 = v.parse().unwrap_or(0);
                let (list, op) = match k {
                    "rbytes" => (&mut bytes, "read"),
                    "wbytes" => (&mut bytes, "write"),
                    "rios" => (&mut ios, "read"),
                    "wios" => (&mut ios, "write"),
                    _ => continue,
                };
                list.push(BlkioEntry {
                    major,
                    minor,
                    op: op.into(),
                    value: v,
                });
            }
        }
    } else {
        let parse = |file: &str| -> Vec<BlkioEntry> {
            read(&dir("blkio").join(file))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let mut it = l.split_whitespace();
                    let (major, minor) = it.next()?.split_once(':')?;
                    Some(BlkioEntry {
                        major: major.parse().ok()?,
                        minor: minor.parse().ok()?,
                        op: it.next()?.to_string(),
                        value: it.next()?.parse().ok()?,
                    })
                })
                .collect()
        };
        bytes = parse("blkio.throttle.io_service_bytes_recursive");
        ios = parse("blkio.throttle.io_serviced_recursive");
    }
    BlkioStats {
        io_service_bytes_recursive: Some(bytes),
        io_serviced_recursive: Some(ios),
        ..BlkioStats::default()
    }
}

fn memory(v2: bool, dir: &dyn Fn(&str) -> PathBuf) -> MemoryStats {
    let d = dir("memory");
    let host = host_memory();
    if v2 {
        let limit = read(&d.join("memory.max"))
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(host);
        MemoryStats {
            usage: read_u64(&d.join("memory.current")),
            max_usage: read_u64(&d.join("memory.peak")),
            stats: read(&d.join("memory.stat")).map(|t| kv(&t)),
            limit: Some(limit.min(host)),
        }
    } else {
        let limit = read_u64(&d.join("memory.limit_in_bytes")).unwrap_or(host);
        MemoryStats {
            usage: read_u64(&d.join("memory.usage_in_bytes")),
            max_usage: read_u64(&d.join("memory.max_usage_in_bytes")),
            stats: read(&d.join("memory.stat")).map(|t| kv(&t)),
            limit: Some(limit.min(host)),
        }
    }
}

fn pids(dir: &dyn Fn(&str) -> PathBuf) -> PidsStats {
    let d = dir("pids");
    PidsStats {
        current: read_u64(&d.join("pids.current")),
        limit: read(&d.join("pids.max")).and_then(|s| s.trim().parse().ok()),
    }
}

/// The interfaces of the network namespace `pid` lives in (loopback left out).
fn networks(pid: i32) -> Option<BTreeMap<String, NetworkStats>> {
    let text = read(&PathBuf::from(format!("/proc/{pid}/net/dev")))?;
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            NetworkStats {
                rx_bytes: v[0],
                rx_packets: v[1],
                rx_errors: v[2],
                rx_dropped: v[3],
                tx_bytes: v[8],
                tx_packets: v[9],
                tx_errors: v[10],
                tx_dropped: v[11],
            },
        );
    }
    Some(out)
}

fn now() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// How to sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsMode {
    /// A sample every second until the container stops or the token is cancelled.
    Stream,
    /// One sample with `precpu_stats` from a sample a second before (docker's
    /// `stream=false`).
    Once,
    /// One sample at once, `precpu_stats` empty (`one-shot=true`).
    OneShot,
}

/// The samples of a container, as an iterator (blocking: it sleeps between samples).
pub fn stats(engine: &Engine, what: &str, mode: StatsMode, cancel: &Cancel) -> Result<StatsIter> {
    let (_, r) = crate::ops::containers::find(engine, what)?;
    Ok(StatsIter {
        engine: engine.clone(),
        id: r.id.clone(),
        name: format!("/{}", r.name),
        mode,
        prev: None,
        done: false,
        first: true,
        cancel: cancel.clone(),
    })
}

pub struct StatsIter {
    engine: Engine,
    id: String,
    name: String,
    mode: StatsMode,
    prev: Option<(CpuStats, String)>,
    done: bool,
    first: bool,
    cancel: Cancel,
}

impl StatsIter {
    fn sample(&self) -> Result<Option<Stats>> {
        let (_, r) = crate::ops::containers::find(&self.engine, &self.id)?;
        let mut s = Stats {
            name: self.name.clone(),
            id: self.id.clone(),
            read: ZERO_TIME.into(),
            preread: ZERO_TIME.into(),
            ..Stats::default()
        };
        if !matches!(r.state.status, Status::Running | Status::Paused) || r.state.pid <= 0 {
            return Ok(Some(s));
        }
        let (v2, dir) = dirs(&r.cgroup());
        s.read = now();
        s.cpu_stats = sample_cpu(v2, &dir);
        s.memory_stats = memory(v2, &dir);
        s.blkio_stats = blkio(v2, &dir);
        s.pids_stats = pids(&dir);
        s.networks = networks(r.state.pid);
        Ok(Some(s))
    }

    fn running(&self) -> bool {
        crate::ops::containers::find(&self.engine, &self.id)
            .is_ok_and(|(_, r)| matches!(r.state.status, Status::Running | Status::Paused))
    }
}

impl Iterator for StatsIter {
    type Item = Result<Stats>;

    fn next(&mut self) -> Option<Result<Stats>> {
        if self.done || self.cancel.is_cancelled() {
            return None;
        }
        let wait = |cancel: &Cancel, d: Duration| {
            let end = std::time::Instant::now() + d;
            while std::time::Instant::now() < end && !cancel.is_cancelled() {
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        match self.mode {
            StatsMode::OneShot => self.done = true,
            StatsMode::Once => {
                self.done = true;
                if self.running() {
                    match self.sample() {
                        Ok(Some(s)) => self.prev = Some((s.cpu_stats, s.read)),
                        Ok(None) => {}
                        Err(e) => return Some(Err(e)),
                    }
                    wait(&self.cancel, Duration::from_secs(1));
                }
            }
            StatsMode::Stream => {
                if !self.first {
                    wait(&self.cancel, Duration::from_secs(1));
                    if self.cancel.is_cancelled() {
                        return None;
                    }
                }
                if !self.running() {
                    // A stopped container: one empty sample, then the end.
                    self.done = true;
                }
            }
        }
        self.first = false;
        let mut s = match self.sample() {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        if let Some((cpu, read)) = self.prev.take() {
            s.precpu_stats = cpu;
            s.preread = read;
        }
        if s.read != ZERO_TIME {
            self.prev = Some((s.cpu_stats.clone(), s.read.clone()));
        }
        Some(Ok(s))
    }
}
