//! Times in logs: RFC 3339 with nanoseconds, and docker's `--since`/`--until` values.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{LogError, Result};

/// Go's `time.RFC3339Nano` in UTC: trailing zeros of the fraction dropped (what the json-file
/// driver stores).
pub(super) fn format_time_trimmed(t: SystemTime) -> String {
    let s = humantime::format_rfc3339_nanos(t).to_string();
    // "2024-01-02T03:04:05.120000000Z": trim the fraction's zeros, then a bare '.'.
    let body = s.trim_end_matches('Z');
    match body.split_once('.') {
        Some((secs, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                format!("{secs}Z")
            } else {
                format!("{secs}.{frac}Z")
            }
        }
        None => s,
    }
}

/// Fixed-width nanoseconds (`2024-01-02T03:04:05.120000000Z`), as `docker logs --timestamps`
/// prints them so that columns line up.
pub fn format_time_fixed(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

/// Parses RFC 3339 with any fraction and a `Z` or `±hh:mm` offset.
pub(super) fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    if let Some(t) = s
        .strip_suffix('Z')
        .and_then(|b| humantime::parse_rfc3339_weak(b).ok())
    {
        return Some(t);
    }
    // A numeric offset: local time minus offset is UTC.
    let (body, sign, off) = split_offset(s)?;
    let base = humantime::parse_rfc3339_weak(body).ok()?;
    if sign > 0 {
        base.checked_sub(off)
    } else {
        base.checked_add(off)
    }
}

fn split_offset(s: &str) -> Option<(&str, i8, Duration)> {
    if s.len() < 6 {
        return None;
    }
    let (body, tail) = s.split_at(s.len() - 6);
    let b = tail.as_bytes();
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    if b[3] != b':' {
        return None;
    }
    let hours: u64 = tail[1..3].parse().ok()?;
    let minutes: u64 = tail[4..6].parse().ok()?;
    Some((body, sign, Duration::from_secs(hours * 3600 + minutes * 60)))
}

/// Docker's `--since`/`--until` value relative to `now`: a Go duration (`10m`, `1h30m`,
/// `1.5h`: that long before now), a Unix timestamp with optional fraction
/// (`1700000000.5`), RFC 3339 with or without zone or fraction, or a bare date
/// (`2024-01-02`, midnight). Times without a zone are UTC (berth runs in UTC; docker would
/// take the daemon's local zone).
pub fn parse_timestamp(value: &str, now: SystemTime) -> Result<SystemTime> {
    let invalid = || LogError::InvalidTime {
        value: value.to_string(),
    };
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid());
    }
    if let Some(d) = parse_go_duration(v) {
        return now.checked_sub(d).ok_or_else(invalid);
    }
    if v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
        let secs: u64 = secs.parse().map_err(|_| invalid())?;
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let nanos: u32 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<9}").parse().map_err(|_| invalid())?
        };
        return Ok(UNIX_EPOCH + Duration::new(secs, nanos));
    }
    if v.len() == 10 {
        return humantime::parse_rfc3339_weak(&format!("{v}T00:00:00")).map_err(|_| invalid());
    }
    parse_rfc3339(v)
        .or_else(|| humantime::parse_rfc3339_weak(v).ok())
        .ok_or_else(invalid)
}

/// Go's `time.ParseDuration` for non-negative values: a sequence of decimal numbers with
/// units ns, us (µs), ms, s, m, h.
fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut rest = s;
    let mut total = 0f64;
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * nanos_per;
    }
    Some(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn trimmed_and_fixed_formats() {
        assert_eq!(format_time_trimmed(at(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_time_trimmed(at(0, 500_000_000)),
            "1970-01-01T00:00:00.5Z"
        );
        assert_eq!(
            format_time_trimmed(at(0, 1)),
            "1970-01-01T00:00:00.000000001Z"
        );
        assert_eq!(
            format_time_fixed(at(0, 500_000_000)),
            "1970-01-01T00:00:00.500000000Z"
        );
    }

    #[test]
    fn since_values_in_every_docker_form() {
        let now = at(1_700_000_000, 0);
        assert_eq!(
            parse_timestamp("10m", now).unwrap(),
            at(1_700_000_000 - 600, 0)
        );
        assert_eq!(
            parse_timestamp("1h30m", now).unwrap(),
            at(1_700_000_000 - 5400, 0)
        );
        assert_eq!(
            parse_timestamp("1.5h", now).unwrap(),
            at(1_700_000_000 - 5400, 0)
        );
        assert_eq!(
            parse_timestamp("1700000000.25", now).unwrap(),
            at(1_700_000_000, 250_000_000)
        );
        assert_eq!(
            parse_timestamp("1600000000", now).unwrap(),
            at(1_600_000_000, 0)
        );
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20Z", now).unwrap(),
            at(1_700_000_000, 0)
        );
        assert_eq!(
            parse_timestamp("2023-11-14T23:13:20.5+01:00", now).unwrap(),
            at(1_700_000_000, 500_000_000)
        );
        assert_eq!(
            parse_timestamp("2023-11-14T21:13:20-01:00", now).unwrap(),
            at(1_700_000_000, 0)
        );
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20", now).unwrap(),
            at(1_700_000_000, 0)
        );
        assert_eq!(parse_timestamp("1970-01-02", now).unwrap(), at(86_400, 0));
        for bad in ["", "yesterday", "10x", "1.2.3", "2023-13-01"] {
            assert!(parse_timestamp(bad, now).is_err(), "{bad}");
        }
    }
}
