//! Human output helpers: docker-style sizes, ages and tables.

use std::time::{Duration, SystemTime};

/// Sizes as docker prints them: decimal units, three significant digits (`4.26MB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{value:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[unit])
}

/// `2 days ago`, as docker prints ages.
pub fn human_age(created: Option<&str>) -> String {
    let Some(t) = created.and_then(|c| humantime::parse_rfc3339_weak(c).ok()) else {
        return "N/A".to_string();
    };
    let age = SystemTime::now()
        .duration_since(t)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit} ago")
        } else {
            format!("{n} {unit}s ago")
        }
    };
    match age {
        0..=1 => "Less than a second ago".into(),
        2..=59 => plural(age, "second"),
        60..=119 => "About a minute ago".into(),
        120..=3599 => plural(age / 60, "minute"),
        3600..=7199 => "About an hour ago".into(),
        7200..=172_799 => plural(age / 3600, "hour"),
        172_800..=1_209_599 => plural(age / 86_400, "day"),
        1_209_600..=5_183_999 => plural(age / 604_800, "week"),
        5_184_000..=63_071_999 => plural(age / 2_592_000, "month"),
        _ => plural(age / 31_536_000, "year"),
    }
}

/// Prints rows in columns separated by at least three spaces, like docker's tables.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}", width = w + 3));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Prints `rows` per a `--format` value (`table`, `table TEMPLATE`, `json`, a Go template);
/// `default_table` is the command's table and `header` names its columns.
pub fn print_formatted(
    format: &str,
    default_table: &str,
    rows: &[serde_json::Value],
    header: &dyn Fn(&str) -> String,
) -> anyhow::Result<()> {
    let f = berth::template::Format::parse(format, default_table)
        .map_err(|e| anyhow::anyhow!("flag --format: {e}"))?;
    print!("{}", f.render(rows, header)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(74_800_000), "74.8MB");
        assert_eq!(human_size(1_000_000_000), "1GB");
        assert_eq!(human_size(123_456_789), "123MB");
    }

    #[test]
    fn ages_read_like_docker() {
        assert_eq!(human_age(None), "N/A");
        assert!(human_age(Some("1970-01-02T00:00:00Z")).ends_with("years ago"));
    }
}
