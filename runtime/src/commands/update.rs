//! `update`: runc's flags, or `-r resources.json` (`-` for stdin) which then wins over them.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth_runtime::cgroups::Limits;
use berth_runtime::container;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use crate::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id
    pub id: String,
    /// A file with a linux.resources JSON object ('-' for stdin); other flags are then ignored
    #[arg(long, short = 'r')]
    pub resources: Option<PathBuf>,
    /// Block IO weight, 10 to 1000
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period in microseconds
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds per period (-1: no limit)
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    /// CPU realtime period in microseconds
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds per period
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs to use (e.g. 0-1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit in bytes (k, m, g suffixes; -1: unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory reservation (soft limit) in bytes
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap in bytes (-1: unlimited swap)
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Kernel memory limit (deprecated; accepted and ignored, as by runc)
    #[arg(long = "kernel-memory", allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit in bytes
    #[arg(long = "kernel-memory-tcp", allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Maximum number of processes (-1 or 0: no limit... 0 leaves it unchanged)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT L3 cache schema (not supported)
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported)
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
}

/// Bytes with an optional binary suffix (b, k, m, g, t; case-insensitive), or -1.
fn parse_bytes(flag: &str, s: &str) -> Result<i64> {
    let lower = s.trim().to_ascii_lowercase();
    let num_end = lower
        .find(|c: char| !c.is_ascii_digit() && c != '-')
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    let n: i64 = num
        .parse()
        .with_context(|| format!("--{flag}: invalid size {s:?}"))?;
    let mult: i64 = match unit.trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => bail!("--{flag}: invalid size {s:?}: units are b, k, m, g, t"),
    };
    n.checked_mul(mult)
        .with_context(|| format!("--{flag}: size {s:?} is too large"))
}

fn from_flags(a: &Args) -> Result<Value> {
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        bail!("--l3-cache-schema/--mem-bw-schema: Intel RDT is not supported by berth-runtime");
    }
    let mut memory = Map::new();
    for (flag, key, v) in [
        ("memory", "limit", &a.memory),
        ("memory-reservation", "reservation", &a.memory_reservation),
        ("memory-swap", "swap", &a.memory_swap),
        ("kernel-memory-tcp", "kernelTCP", &a.kernel_memory_tcp),
    ] {
        if let Some(v) = v {
            memory.insert(key.into(), json!(parse_bytes(flag, v)?));
        }
    }
    let mut cpu = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            cpu.insert(k.into(), v);
        }
    };
    put("shares", a.cpu_share.map(Value::from));
    put("quota", a.cpu_quota.map(Value::from));
    put("period", a.cpu_period.map(Value::from));
    put("realtimePeriod", a.cpu_rt_period.map(Value::from));
    put("realtimeRuntime", a.cpu_rt_runtime.map(Value::from));
    put("cpus", a.cpuset_cpus.clone().map(Value::from));
    put("mems", a.cpuset_mems.clone().map(Value::from));
    let mut res = Map::new();
    if !memory.is_empty() {
        res.insert("memory".into(), Value::Object(memory));
    }
    if !cpu.is_empty() {
        res.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = a.pids_limit {
        res.insert("pids".into(), json!({ "limit": p }));
    }
    if let Some(w) = a.blkio_weight {
        res.insert("blockIO".into(), json!({ "weight": w }));
    }
    Ok(Value::Object(res))
}

#[inline(never)] // see main()
pub fn run(g: &Global, args: Args) -> Result<u8> {
    let res: LinuxResources = match &args.resources {
        Some(path) => {
            let mut text = String::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading resources from stdin")?;
            } else {
                text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
            }
            berth_runtime::jsonpath::from_slice(text.as_bytes())
                .with_context(|| format!("parsing resources {}", path.display()))?
        }
        None => serde_json::from_value(from_flags(&args)?).context("building resources")?,
    };
    let limits = Limits::from_resources(&res)?;
    container::update(&g.root, &args.id, &limits)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_bytes("memory", "100m").unwrap(), 100 << 20);
        assert_eq!(parse_bytes("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("memory", "4096").unwrap(), 4096);
        assert_eq!(parse_bytes("memory", "-1").unwrap(), -1);
        assert!(parse_bytes("memory", "12q").is_err());
    }
}
