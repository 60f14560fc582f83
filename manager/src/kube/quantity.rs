//! Kubernetes resource quantities (`500m`, `2`, `64Mi`, `1G`, `129e6`) to and from the
//! numbers berth's containers take: CPUs in billionths, memory in bytes.

/// CPUs in billionths (docker's NanoCpus) from `500m`, `0.5`, `2`.
pub fn cpu_nanos(q: &str) -> Option<u64> {
    let q = q.trim();
    let (num, scale) = match q.strip_suffix('m') {
        Some(n) => (n, 1e6),
        None => (q, 1e9),
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v > 0.0).then(|| (v * scale).round() as u64)
}

/// Bytes from `64Mi`, `1G`, `1000`, `129e6`, `1.5Gi`.
pub fn bytes(q: &str) -> Option<u64> {
    let q = q.trim();
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("m", 1e-3),
    ];
    let (num, scale) = SUFFIXES
        .iter()
        .find_map(|(s, f)| q.strip_suffix(s).map(|n| (n, *f)))
        .unwrap_or((q, 1.0));
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * scale).ceil() as u64)
}

/// `500m` or `2` for CPUs in billionths.
pub fn format_cpu(nanos: u64) -> String {
    if nanos.is_multiple_of(1_000_000_000) {
        (nanos / 1_000_000_000).to_string()
    } else {
        format!("{}m", nanos.div_ceil(1_000_000))
    }
}

/// `64Mi` when exact, else the bytes.
pub fn format_bytes(n: u64) -> String {
    for (s, f) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if n >= f && n.is_multiple_of(f) {
            return format!("{}{s}", n / f);
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_quantities_parse_and_format() {
        assert_eq!(cpu_nanos("500m"), Some(500_000_000));
        assert_eq!(cpu_nanos("1.5"), Some(1_500_000_000));
        assert_eq!(cpu_nanos("2"), Some(2_000_000_000));
        assert_eq!(cpu_nanos("x"), None);
        assert_eq!(cpu_nanos("0"), None);
        assert_eq!(bytes("64Mi"), Some(64 << 20));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("129e6"), Some(129_000_000));
        assert_eq!(bytes("1000"), Some(1000));
        assert_eq!(bytes("lots"), None);
        assert_eq!(format_cpu(500_000_000), "500m");
        assert_eq!(format_cpu(2_000_000_000), "2");
        assert_eq!(format_bytes(64 << 20), "64Mi");
        assert_eq!(format_bytes(1000), "1000");
    }
}
