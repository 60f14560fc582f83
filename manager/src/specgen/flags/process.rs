//! Process-related flags: `--restart`, `--stop-signal`, `-u`, health durations, `--label`,
//! `--add-host`.

use std::net::IpAddr;
use std::time::Duration;

use super::{invalid, FlagError};

/// `--restart`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    /// Restart after a non-zero exit, at most `max_retries` times when given.
    OnFailure {
        max_retries: Option<u32>,
    },
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn parse_restart(value: &str) -> Result<RestartPolicy, FlagError> {
    const FLAG: &str = "--restart";
    let (name, count) = match value.split_once(':') {
        Some(("", _)) => return Err(invalid(FLAG, value, "no policy provided before colon")),
        Some((name, count)) => (name, Some(count)),
        None => (value, None),
    };
    let count = match count {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| invalid(FLAG, value, "maximum retry count must be an integer"))?,
        ),
    };
    let no_count = |policy| match count {
        None | Some(0) => Ok(policy),
        Some(_) => Err(invalid(
            FLAG,
            value,
            "maximum retry count can only be used with 'on-failure'",
        )),
    };
    match name {
        "" | "no" => no_count(RestartPolicy::No),
        "always" => no_count(RestartPolicy::Always),
        "unless-stopped" => no_count(RestartPolicy::UnlessStopped),
        "on-failure" => {
            match count {
                None | Some(0) => Ok(RestartPolicy::OnFailure { max_retries: None }),
                Some(n) => Ok(RestartPolicy::OnFailure {
                    max_retries: Some(u32::try_from(n).map_err(|_| {
                        invalid(FLAG, value, "maximum retry count cannot be negative")
                    })?),
                }),
            }
        }
        other => Err(invalid(
            FLAG,
            value,
            format!(
                "unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or \
                 'unless-stopped'"
            ),
        )),
    }
}

/// A signal number (signal(7), Linux numbering shared by x86 and arm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Signal(pub i32);

/// Standard signal names by number, index = signal number.
const SIGNAL_NAMES: [&str; 32] = [
    "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];
/// glibc reserves two real-time signals for itself, so user-visible SIGRTMIN is 34.
const SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;

impl Signal {
    pub const TERM: Signal = Signal(15);
    pub const KILL: Signal = Signal(9);

    /// The signal's name with the SIG prefix (`SIGTERM`, `SIGRTMIN+3`).
    pub fn name(self) -> String {
        match self.0 {
            n @ 1..=31 => format!("SIG{}", SIGNAL_NAMES[n as usize]),
            SIGRTMIN => "SIGRTMIN".to_string(),
            SIGRTMAX => "SIGRTMAX".to_string(),
            n @ SIGRTMIN..=SIGRTMAX => format!("SIGRTMIN+{}", n - SIGRTMIN),
            n => n.to_string(),
        }
    }
}

/// `--stop-signal` (and the image's StopSignal): a name with or without `SIG`, in any case,
/// `RTMIN+n`/`RTMAX-n`, or a number.
pub fn parse_stop_signal(value: &str) -> Result<Signal, FlagError> {
    parse_signal("--stop-signal", value)
}

/// [`parse_stop_signal`] for a value from elsewhere (`flag` names it in errors).
pub(crate) fn parse_signal(flag: &'static str, value: &str) -> Result<Signal, FlagError> {
    let bad = || invalid(flag, value, "invalid signal");
    if let Ok(n) = value.parse::<i32>() {
        return if (1..=SIGRTMAX).contains(&n) {
            Ok(Signal(n))
        } else {
            Err(bad())
        };
    }
    let upper = value.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let aliases = [
        ("IOT", 6),
        ("CLD", 17),
        ("POLL", 29),
        ("RTMIN", SIGRTMIN),
        ("RTMAX", SIGRTMAX),
    ];
    if let Some(n) = SIGNAL_NAMES
        .iter()
        .position(|s| !s.is_empty() && *s == name)
    {
        return Ok(Signal(n as i32));
    }
    if let Some((_, n)) = aliases.iter().find(|(a, _)| *a == name) {
        return Ok(Signal(*n));
    }
    let offset = |s: &str| {
        s.parse::<i32>()
            .ok()
            .filter(|o| (1..=SIGRTMAX - SIGRTMIN).contains(o))
    };
    if let Some(n) = name.strip_prefix("RTMIN+").and_then(offset) {
        return Ok(Signal(SIGRTMIN + n));
    }
    if let Some(n) = name.strip_prefix("RTMAX-").and_then(offset) {
        return Ok(Signal(SIGRTMAX - n));
    }
    Err(bad())
}

/// `-u/--user`: `user[:group]` where each part is a name or a number; resolution against the
/// image's passwd and group files happens at spec generation.
pub fn parse_user(value: &str) -> Result<String, FlagError> {
    const FLAG: &str = "--user";
    let (user, group) = match value.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (value, None),
    };
    if user.is_empty() {
        return Err(invalid(FLAG, value, "user name or id is empty"));
    }
    if group.is_some_and(|g| g.is_empty() || g.contains(':')) {
        return Err(invalid(FLAG, value, "expected user[:group]"));
    }
    Ok(value.to_string())
}

/// Health-check durations in Go's syntax (`30s`, `1m30s`, `1.5h`, `500ms`); negative values are
/// rejected.
pub fn parse_duration(flag: &'static str, value: &str) -> Result<Duration, FlagError> {
    let bad = || invalid(flag, value, "expected a duration such as 30s or 1m30s");
    if value == "0" {
        return Ok(Duration::ZERO);
    }
    if value.starts_with('-') {
        return Err(invalid(flag, value, "cannot be negative"));
    }
    let mut rest = value.strip_prefix('+').unwrap_or(value);
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_end);
        if num.is_empty() || num == "." {
            return Err(bad());
        }
        let n: f64 = num.parse().map_err(|_| bad())?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let nanos_per = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * nanos_per;
        rest = tail;
    }
    if total > i64::MAX as f64 {
        return Err(invalid(flag, value, "duration is too long"));
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

/// `--label key[=value]`; a key alone gets the empty value.
pub fn parse_label(value: &str) -> Result<(String, String), FlagError> {
    const FLAG: &str = "--label";
    let (key, val) = value.split_once('=').unwrap_or((value, ""));
    let key = key.trim();
    if key.is_empty() {
        return Err(invalid(FLAG, value, "empty name"));
    }
    if key.chars().any(char::is_whitespace) {
        return Err(invalid(FLAG, value, "name contains whitespaces"));
    }
    Ok((key.to_string(), val.to_string()))
}

/// An `--add-host` entry for /etc/hosts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExtraHost {
    pub name: String,
    pub addr: HostAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HostAddr {
    Ip(IpAddr),
    /// The `host-gateway` literal, which the network code replaces with the host's address.
    HostGateway,
}

/// `--add-host name:ip` or `name=ip`; IPv6 addresses may be bracketed (`name=[::1]`).
pub fn parse_add_host(value: &str) -> Result<ExtraHost, FlagError> {
    const FLAG: &str = "--add-host";
    let (name, addr) = value
        .split_once('=')
        .or_else(|| value.split_once(':'))
        .ok_or_else(|| invalid(FLAG, value, "expected name:ip"))?;
    if name.is_empty() {
        return Err(invalid(FLAG, value, "host name is empty"));
    }
    let addr = if addr == "host-gateway" {
        HostAddr::HostGateway
    } else {
        let bare = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr);
        HostAddr::Ip(
            bare.parse()
                .map_err(|_| invalid(FLAG, value, format!("invalid IP address {addr:?}")))?,
        )
    };
    Ok(ExtraHost {
        name: name.to_string(),
        addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert_eq!(parse_restart("no").unwrap(), RestartPolicy::No);
        assert_eq!(parse_restart("always").unwrap(), RestartPolicy::Always);
        assert_eq!(
            parse_restart("unless-stopped").unwrap(),
            RestartPolicy::UnlessStopped
        );
        assert_eq!(
            parse_restart("on-failure").unwrap(),
            RestartPolicy::OnFailure { max_retries: None }
        );
        assert_eq!(
            parse_restart("on-failure:5").unwrap(),
            RestartPolicy::OnFailure {
                max_retries: Some(5)
            }
        );
        for bad in [
            "sometimes",
            "always:3",
            ":3",
            "on-failure:x",
            "on-failure:-1",
            "no:1",
        ] {
            let err = parse_restart(bad).unwrap_err();
            assert!(err.to_string().contains("--restart"), "{bad}: {err}");
        }
    }

    #[test]
    fn stop_signals() {
        assert_eq!(parse_stop_signal("SIGTERM").unwrap(), Signal(15));
        assert_eq!(parse_stop_signal("quit").unwrap(), Signal(3));
        assert_eq!(parse_stop_signal("sigusr1").unwrap(), Signal(10));
        assert_eq!(parse_stop_signal("9").unwrap(), Signal::KILL);
        assert_eq!(parse_stop_signal("RTMIN+3").unwrap(), Signal(37));
        assert_eq!(parse_stop_signal("SIGRTMAX-1").unwrap(), Signal(63));
        assert_eq!(Signal(37).name(), "SIGRTMIN+3");
        assert_eq!(Signal(2).name(), "SIGINT");
        for bad in ["", "0", "65", "-9", "SIGFOO", "SIG", "RTMIN+99"] {
            let err = parse_stop_signal(bad).unwrap_err();
            assert!(err.to_string().contains("--stop-signal"), "{bad}: {err}");
        }
    }

    #[test]
    fn users() {
        for ok in ["1000", "1000:1000", "app", "app:staff", "0:wheel"] {
            assert_eq!(parse_user(ok).unwrap(), ok);
        }
        for bad in ["", ":1", "a:", "a:b:c"] {
            assert!(parse_user(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_use_go_syntax() {
        let d = |v| parse_duration("--health-interval", v).unwrap();
        assert_eq!(d("30s"), Duration::from_secs(30));
        assert_eq!(d("1m30s"), Duration::from_secs(90));
        assert_eq!(d("1.5h"), Duration::from_secs(5400));
        assert_eq!(d("250ms"), Duration::from_millis(250));
        assert_eq!(d("10us"), Duration::from_micros(10));
        assert_eq!(d("0"), Duration::ZERO);
        for bad in ["", "30", "s", "1x", "-5s", "1m-3s", "1..5s"] {
            let err = parse_duration("--health-timeout", bad).unwrap_err();
            assert!(err.to_string().contains("--health-timeout"), "{bad}: {err}");
        }
    }

    #[test]
    fn labels() {
        assert_eq!(parse_label("a=b").unwrap(), ("a".into(), "b".into()));
        assert_eq!(parse_label("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_label("flag").unwrap(), ("flag".into(), "".into()));
        for bad in ["", "=v", "a b=c"] {
            assert!(parse_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn extra_hosts() {
        let h = parse_add_host("db:10.0.0.2").unwrap();
        assert_eq!(
            (h.name.as_str(), h.addr),
            ("db", HostAddr::Ip("10.0.0.2".parse().unwrap()))
        );
        let h = parse_add_host("v6=[::1]").unwrap();
        assert_eq!(h.addr, HostAddr::Ip("::1".parse().unwrap()));
        let h = parse_add_host("v6:::1").unwrap();
        assert_eq!(h.addr, HostAddr::Ip("::1".parse().unwrap()));
        let h = parse_add_host("host.docker.internal:host-gateway").unwrap();
        assert_eq!(h.addr, HostAddr::HostGateway);
        for bad in ["db", ":1.2.3.4", "db:not-an-ip", "db:300.1.1.1"] {
            let err = parse_add_host(bad).unwrap_err();
            assert!(err.to_string().contains("--add-host"), "{bad}: {err}");
        }
    }
}
