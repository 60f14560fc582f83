//! Resource flags: byte sizes, CPUs, cpusets, pids and ulimits.

use oci_spec::runtime::PosixRlimitType;

use super::{int, invalid, FlagError};

/// A CPU count in billionths of a CPU (docker's NanoCPUs), so `--cpus 1.5` is exact.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct NanoCpus(pub u64);

impl std::fmt::Display for NanoCpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (whole, frac) = (self.0 / 1_000_000_000, self.0 % 1_000_000_000);
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let frac = format!("{frac:09}");
            write!(f, "{whole}.{}", frac.trim_end_matches('0'))
        }
    }
}

impl NanoCpus {
    /// The CFS quota for `period` microseconds (`cpus * period`).
    pub fn quota(self, period: u64) -> i64 {
        let quota = u128::from(self.0) * u128::from(period) / 1_000_000_000;
        i64::try_from(quota).unwrap_or(i64::MAX)
    }
}

/// `--ulimit name=soft[:hard]`; -1 (unlimited) is stored as `u64::MAX` (RLIM_INFINITY).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ulimit {
    /// Docker's name, e.g. `nofile`.
    pub name: String,
    pub kind: PosixRlimitType,
    pub soft: u64,
    pub hard: u64,
}

/// Parses docker's memory sizes (`--memory`, `--shm-size`, `--memory-reservation`): a decimal
/// number with an optional binary unit b, k, m, g, t or p (case-insensitive, optionally followed
/// by `b` or `ib`), as go-units' RAMInBytes.
pub fn parse_bytes(flag: &'static str, value: &str) -> Result<u64, FlagError> {
    let bad = || invalid(flag, value, "expected a size such as 512m or 1.5g");
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(bad());
    }
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let mut chars = unit.chars();
    let (multiplier, rest): (u64, &str) = match chars.next() {
        None => (1, ""),
        Some('b') => (1, chars.as_str()),
        Some(c) => {
            let shift = match c {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                'p' => 50,
                _ => return Err(bad()),
            };
            let rest = chars.as_str();
            let rest = rest.strip_prefix('i').unwrap_or(rest);
            (1u64 << shift, rest.strip_prefix('b').unwrap_or(rest))
        }
    };
    if !rest.is_empty() {
        return Err(bad());
    }
    let parsed: f64 = number.parse().map_err(|_| bad())?;
    let bytes = parsed * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(invalid(flag, value, "size is too large"));
    }
    // Truncation matches docker's int64(size * multiplier).
    Ok(bytes as u64)
}

/// `--memory-swap`: a size, or -1 for unlimited swap.
pub fn parse_memory_swap(value: &str) -> Result<i64, FlagError> {
    if value == "-1" {
        return Ok(-1);
    }
    let bytes = parse_bytes("--memory-swap", value)?;
    i64::try_from(bytes).map_err(|_| invalid("--memory-swap", value, "size is too large"))
}

/// `--cpus`: a decimal CPU count with at most nine fractional digits; 0 means no limit.
pub fn parse_cpus(value: &str) -> Result<NanoCpus, FlagError> {
    const FLAG: &str = "--cpus";
    let (whole, frac) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
        return Err(invalid(FLAG, value, "expected a decimal number of CPUs"));
    }
    if frac.len() > 9 {
        return Err(invalid(FLAG, value, "value is too precise"));
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        int(FLAG, whole)?
    };
    let frac_nanos: u64 = if frac.is_empty() {
        0
    } else {
        int::<u64>(FLAG, frac)? * 10u64.pow(9 - frac.len() as u32)
    };
    let nanos = whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_nanos))
        .ok_or_else(|| invalid(FLAG, value, "value is too large"))?;
    // Zero means "no limit", as in docker; anything else below a hundredth of a CPU is a typo.
    if nanos != 0 && nanos < 10_000_000 {
        return Err(invalid(FLAG, value, "range of CPUs starts at 0.01"));
    }
    Ok(NanoCpus(nanos))
}

/// `--cpu-shares`: a relative weight.
pub fn parse_cpu_shares(value: &str) -> Result<u64, FlagError> {
    int("--cpu-shares", value)
}

/// `--pids-limit`: a count; zero or negative means unlimited.
pub fn parse_pids_limit(value: &str) -> Result<i64, FlagError> {
    int("--pids-limit", value)
}

/// `--cpuset-cpus`: a list of CPUs and ranges such as `0-2,4`, returned unchanged once valid.
pub fn parse_cpuset(value: &str) -> Result<String, FlagError> {
    const FLAG: &str = "--cpuset-cpus";
    let bad = || invalid(FLAG, value, "expected a list such as 0-2,4");
    if value.is_empty() {
        return Err(bad());
    }
    for part in value.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let is_num = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        if !is_num(lo) || !is_num(hi) {
            return Err(bad());
        }
        let (lo, hi): (u32, u32) = (int(FLAG, lo)?, int(FLAG, hi)?);
        if lo > hi {
            return Err(invalid(FLAG, value, format!("range {part} is reversed")));
        }
    }
    Ok(value.to_string())
}

/// `--ulimit name=soft[:hard]`; the hard limit defaults to the soft one.
pub fn parse_ulimit(value: &str) -> Result<Ulimit, FlagError> {
    const FLAG: &str = "--ulimit";
    let (name, limits) = value
        .split_once('=')
        .ok_or_else(|| invalid(FLAG, value, "expected name=soft[:hard]"))?;
    let kind = rlimit_kind(name)
        .ok_or_else(|| invalid(FLAG, value, format!("invalid ulimit type: {name}")))?;
    let limit = |s: &str| -> Result<u64, FlagError> {
        match int::<i64>(FLAG, s)? {
            -1 => Ok(u64::MAX),
            n => u64::try_from(n).map_err(|_| invalid(FLAG, value, "limits cannot be negative")),
        }
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((soft, hard)) => (limit(soft)?, limit(hard)?),
        None => {
            let soft = limit(limits)?;
            (soft, soft)
        }
    };
    if soft > hard {
        return Err(invalid(
            FLAG,
            value,
            "soft limit must be less than or equal to hard limit",
        ));
    }
    Ok(Ulimit {
        name: name.to_string(),
        kind,
        soft,
        hard,
    })
}

fn rlimit_kind(name: &str) -> Option<PosixRlimitType> {
    use PosixRlimitType::*;
    Some(match name {
        "core" => RlimitCore,
        "cpu" => RlimitCpu,
        "data" => RlimitData,
        "fsize" => RlimitFsize,
        "locks" => RlimitLocks,
        "memlock" => RlimitMemlock,
        "msgqueue" => RlimitMsgqueue,
        "nice" => RlimitNice,
        "nofile" => RlimitNofile,
        "nproc" => RlimitNproc,
        "rss" => RlimitRss,
        "rtprio" => RlimitRtprio,
        "rttime" => RlimitRttime,
        "sigpending" => RlimitSigpending,
        "stack" => RlimitStack,
        "as" => RlimitAs,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_accept_docker_units() {
        let p = |v| parse_bytes("--memory", v).unwrap();
        assert_eq!(p("100"), 100);
        assert_eq!(p("100b"), 100);
        assert_eq!(p("10k"), 10 * 1024);
        assert_eq!(p("10KB"), 10 * 1024);
        assert_eq!(p("64m"), 64 << 20);
        assert_eq!(p("1.5g"), 3 << 29);
        assert_eq!(p("2GiB"), 2 << 30);
        assert_eq!(p("1 t"), 1 << 40);
    }

    #[test]
    fn bytes_reject_garbage_and_name_the_flag() {
        for bad in ["", "m", "-1", "10x", "1.g", "10mbb", ".5m", "1e3"] {
            let err = parse_bytes("--shm-size", bad).unwrap_err();
            assert!(err.to_string().contains("--shm-size"), "{bad}: {err}");
        }
    }

    #[test]
    fn memory_swap_allows_unlimited() {
        assert_eq!(parse_memory_swap("-1").unwrap(), -1);
        assert_eq!(parse_memory_swap("1g").unwrap(), 1 << 30);
        assert!(parse_memory_swap("-2").is_err());
    }

    #[test]
    fn cpus_are_exact_decimals() {
        assert_eq!(parse_cpus("1.5").unwrap(), NanoCpus(1_500_000_000));
        assert_eq!(parse_cpus("0.01").unwrap(), NanoCpus(10_000_000));
        assert_eq!(parse_cpus("2").unwrap(), NanoCpus(2_000_000_000));
        assert_eq!(parse_cpus(".5").unwrap(), NanoCpus(500_000_000));
        assert_eq!(parse_cpus("1.5").unwrap().quota(100_000), 150_000);
        assert_eq!(parse_cpus("1.50").unwrap().to_string(), "1.5");
        assert_eq!(parse_cpus("3").unwrap().to_string(), "3");
        assert_eq!(parse_cpus("0.05").unwrap().to_string(), "0.05");
        assert_eq!(parse_cpus("0").unwrap(), NanoCpus(0));
        for bad in ["", ".", "abc", "-1", "1.2.3", "0.001", "0.0000000001"] {
            assert!(parse_cpus(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpuset_validates_lists_and_ranges() {
        assert_eq!(parse_cpuset("0-2,4").unwrap(), "0-2,4");
        assert_eq!(parse_cpuset("1").unwrap(), "1");
        for bad in ["", "a", "1-", "3-1", "1,,2", "1-2-3"] {
            let err = parse_cpuset(bad).unwrap_err();
            assert!(err.to_string().contains("--cpuset-cpus"), "{bad}: {err}");
        }
    }

    #[test]
    fn shares_and_pids_are_integers() {
        assert_eq!(parse_cpu_shares("512").unwrap(), 512);
        assert!(parse_cpu_shares("-1").is_err());
        assert_eq!(parse_pids_limit("-1").unwrap(), -1);
        assert!(matches!(
            parse_pids_limit("lots"),
            Err(FlagError::Number {
                flag: "--pids-limit",
                ..
            })
        ));
    }

    #[test]
    fn ulimits_parse_soft_and_hard() {
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!(
            (u.kind, u.soft, u.hard),
            (PosixRlimitType::RlimitNofile, 1024, 2048)
        );
        let u = parse_ulimit("nproc=100").unwrap();
        assert_eq!((u.soft, u.hard), (100, 100));
        let u = parse_ulimit("core=-1").unwrap();
        assert_eq!((u.soft, u.hard), (u64::MAX, u64::MAX));
        let u = parse_ulimit("memlock=1:-1").unwrap();
        assert_eq!((u.soft, u.hard), (1, u64::MAX));
    }

    #[test]
    fn ulimits_reject_bad_input() {
        for bad in [
            "nofile",
            "bogus=1",
            "nofile=2:1",
            "nofile=a",
            "nofile=-5",
            "nofile=1:b",
        ] {
            let err = parse_ulimit(bad).unwrap_err();
            assert!(err.to_string().contains("--ulimit"), "{bad}: {err}");
        }
    }
}
