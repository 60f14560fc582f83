//! Statistics and OOM notifications for `events`, in the JSON shape of runc's `events`
//! (`data` of a `{"type":"stats"}` event): cpu, memory, pids, blkio and hugetlb.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError};

use cgroups_rs::cpuacct::CpuAcctController;
use cgroups_rs::memory::MemController;
use serde_json::{json, Map, Value};

use super::CgroupPaths;

/// What `events` prints as `data`.
pub type Stats = Value;

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file)).unwrap_or_default()
}

fn read_u64(dir: &Path, file: &str) -> u64 {
    read(dir, file).trim().parse().unwrap_or(0)
}

/// A value that may be "max" (v2): runc reports "max" as u64::MAX.
fn read_max(dir: &Path, file: &str) -> u64 {
    let s = read(dir, file);
    match s.trim() {
        "max" => u64::MAX,
        v => v.parse().unwrap_or(0),
    }
}

/// "key value" lines (memory.stat, cpu.stat, memory.events) as a map.
fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn numbers(s: &str) -> Vec<u64> {
    s.split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect()
}

impl CgroupPaths {
    /// The container's statistics now. Files that do not exist are reported as zero, as runc
    /// does for controllers a host lacks.
    pub fn stats(&self) -> Stats {
        let mut data = Map::new();
        if self.is_v2() {
            if let Some(dir) = self.unified_dir() {
                v2_stats(dir, &mut data);
            }
        } else {
            self.v1_stats(&mut data);
        }
        data.insert("intel_rdt".into(), json!({}));
        data.insert("network_interfaces".into(), Value::Null);
        Value::Object(data)
    }

    fn v1_stats(&self, data: &mut Map<String, Value>) {
        let mut cpu = json!({"usage": {}, "throttling": {}});
        if let Some(dir) = self.v1_dir("cpuacct") {
            let acct = CpuAcctController::new(dir.to_path_buf()).cpuacct();
            cpu["usage"] = json!({
                "total": acct.usage,
                "percpu": numbers(&acct.usage_percpu),
                "percpu_kernel": numbers(&acct.usage_percpu_sys),
                "percpu_user": numbers(&acct.usage_percpu_user),
                "kernel": acct.usage_sys,
                "user": acct.usage_user,
            });
        }
        if let Some(dir) = self.v1_dir("cpu") {
            let s = flat_keyed(&read(dir, "cpu.stat"));
            cpu["throttling"] = json!({
                "periods": s.get("nr_periods").copied().unwrap_or(0),
                "throttled_periods": s.get("nr_throttled").copied().unwrap_or(0),
                "throttled_time": s.get("throttled_time").copied().unwrap_or(0),
            });
        }
        data.insert("cpu".into(), cpu);
        if let Some(dir) = self.v1_dir("memory") {
            let mem = MemController::new(dir.to_path_buf(), false);
            let m = mem.memory_stat();
            let swap = mem.memswap();
            let kmem = mem.kmem_stat();
            let tcp = mem.kmem_tcp_stat();
            let entry = |limit: i64, usage: u64, max: u64, failcnt: u64| json!({"limit": limit as u64, "usage": usage, "max": max, "failcnt": failcnt});
            data.insert(
                "memory".into(),
                json!({
                    "usage": entry(m.limit_in_bytes, m.usage_in_bytes, m.max_usage_in_bytes, m.fail_cnt),
                    "swap": entry(swap.limit_in_bytes, swap.usage_in_bytes, swap.max_usage_in_bytes, swap.fail_cnt),
                    "kernel": entry(kmem.limit_in_bytes, kmem.usage_in_bytes, kmem.max_usage_in_bytes, kmem.fail_cnt),
                    "kernelTCP": entry(tcp.limit_in_bytes, tcp.usage_in_bytes, tcp.max_usage_in_bytes, tcp.fail_cnt),
                    // cgroups-rs parses memory.stat into fixed fields; runc reports every key.
                    "raw": flat_keyed(&read(dir, "memory.stat")),
                }),
            );
        }
        if let Some(dir) = self.v1_dir("pids") {
            data.insert("pids".into(), pids(dir));
        }
        let mut blkio = Map::new();
        if let Some(dir) = self.v1_dir("blkio") {
            for (key, file) in [
                (
                    "io_service_bytes_recursive",
                    "blkio.throttle.io_service_bytes_recursive",
                ),
                (
                    "io_serviced_recursive",
                    "blkio.throttle.io_serviced_recursive",
                ),
            ] {
                blkio.insert(key.into(), Value::Array(v1_blkio_entries(&read(dir, file))));
            }
        }
        data.insert("blkio".into(), Value::Object(blkio));
        let mut huge = Map::new();
        if let Some(dir) = self.v1_dir("hugetlb") {
            for size in hugepage_sizes(dir, ".limit_in_bytes") {
                let f = |what: &str| read_u64(dir, &format!("hugetlb.{size}.{what}"));
                huge.insert(
                    size.clone(),
                    json!({"usage": f("usage_in_bytes"), "max": f("max_usage_in_bytes"), "failcnt": f("failcnt")}),
                );
            }
        }
        data.insert("hugetlb".into(), Value::Object(huge));
    }
}

fn pids(dir: &Path) -> Value {
    let limit = match read_max(dir, "pids.max") {
        u64::MAX => 0,
        n => n,
    };
    json!({"current": read_u64(dir, "pids.current"), "limit": limit})
}

/// Page sizes with a hugetlb.<size><suffix> file, e.g. "2MB".
fn hugepage_sizes(dir: &Path, suffix: &str) -> Vec<String> {
    let mut sizes: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("hugetlb.")?
                .strip_suffix(suffix)
                .map(str::to_string)
        })
        .collect();
    sizes.sort();
    sizes
}

/// v1 blkio lines: "8:0 Read 4096" (and a final "Total N").
fn v1_blkio_entries(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (dev, op, value) = (it.next()?, it.next()?, it.next()?);
            let (maj, min) = dev.split_once(':')?;
            Some(json!({
                "major": maj.parse::<u64>().ok()?,
                "minor": min.parse::<u64>().ok()?,
                "op": op,
                "value": value.parse::<u64>().ok()?,
            }))
        })
        .collect()
}

fn v2_stats(dir: &Path, data: &mut Map<String, Value>) {
    let cpu = flat_keyed(&read(dir, "cpu.stat"));
    let get = |k: &str| cpu.get(k).copied().unwrap_or(0);
    data.insert(
        "cpu".into(),
        json!({
            "usage": {
                "total": get("usage_usec") * 1000,
                "kernel": get("system_usec") * 1000,
                "user": get("user_usec") * 1000,
            },
            "throttling": {
                "periods": get("nr_periods"),
                "throttled_periods": get("nr_throttled"),
                "throttled_time": get("throttled_usec") * 1000,
            },
        }),
    );
    let events = flat_keyed(&read(dir, "memory.events"));
    data.insert(
        "memory".into(),
        json!({
            "usage": {
                "limit": read_max(dir, "memory.max"),
                "usage": read_u64(dir, "memory.current"),
                "max": read_u64(dir, "memory.peak"),
                "failcnt": events.get("max").copied().unwrap_or(0),
            },
            "swap": {
                "limit": read_max(dir, "memory.swap.max"),
                "usage": read_u64(dir, "memory.swap.current"),
            },
            "raw": flat_keyed(&read(dir, "memory.stat")),
        }),
    );
    data.insert("pids".into(), pids(dir));
    // io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0".
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for line in read(dir, "io.stat").lines() {
        let mut it = line.split_whitespace();
        let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(maj), Ok(min)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            list.push(json!({"major": maj, "minor": min, "op": op, "value": v}));
        }
    }
    data.insert(
        "blkio".into(),
        json!({"io_service_bytes_recursive": bytes, "io_serviced_recursive": ios}),
    );
    let mut huge = Map::new();
    for size in hugepage_sizes(dir, ".max") {
        let ev = flat_keyed(&read(dir, &format!("hugetlb.{size}.events")));
        huge.insert(
            size.clone(),
            json!({
                "usage": read_u64(dir, &format!("hugetlb.{size}.current")),
                "max": read_max(dir, &format!("hugetlb.{size}.max")),
                "failcnt": ev.get("max").copied().unwrap_or(0),
            }),
        );
    }
    data.insert("hugetlb".into(), Value::Object(huge));
}

/// Watches for OOM kills in the container's cgroup.
pub struct OomWatch {
    /// v1: cgroups-rs's eventfd registration on memory.oom_control (memory.rst, section
    /// "Memory thresholds"/"OOM Control"), one message per OOM.
    v1: Option<Receiver<String>>,
    /// v2 (and the v1 fallback): a counter file and its last value. cgroups-rs registers
    /// memory.oom_control on v2 too, where it does not exist, so v2 reads memory.events.
    counter: Option<(PathBuf, &'static str, u64)>,
}

impl OomWatch {
    pub fn new(paths: &CgroupPaths) -> OomWatch {
        let (file, key) = if paths.is_v2() {
            (
                paths.unified_dir().map(|d| d.join("memory.events")),
                "oom_kill",
            )
        } else {
            (
                paths.v1_dir("memory").map(|d| d.join("memory.oom_control")),
                "oom_kill",
            )
        };
        if !paths.is_v2() {
            if let Some(dir) = paths.v1_dir("memory") {
                if let Ok(rx) =
                    MemController::new(dir.to_path_buf(), false).register_oom_event("oom")
                {
                    return OomWatch {
                        v1: Some(rx),
                        counter: None,
                    };
                }
            }
        }
        let counter = file.map(|f| {
            let now = counter_value(&f, key);
            (f, key, now)
        });
        OomWatch { v1: None, counter }
    }

    /// How many OOM events happened since the last call.
    pub fn poll(&mut self) -> u64 {
        let mut n = 0;
        if let Some(rx) = &self.v1 {
            loop {
                match rx.try_recv() {
                    Ok(_) => n += 1,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.v1 = None;
                        break;
                    }
                }
            }
        }
        if let Some((file, key, last)) = &mut self.counter {
            let now = counter_value(file, key);
            if now > *last {
                n += now - *last;
                *last = now;
            }
        }
        n
    }
}

fn counter_value(file: &Path, key: &str) -> u64 {
    flat_keyed(&fs::read_to_string(file).unwrap_or_default())
        .get(key)
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keyed_files_and_v1_blkio_lines() {
        let m = flat_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
        assert_eq!(m["oom_kill"], 3);
        let e = v1_blkio_entries("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[0],
            json!({"major": 8, "minor": 0, "op": "Read", "value": 4096})
        );
    }
}
