//! Rendering helpers shared by the front ends: progress events as terminal bars, plain
//! lines or docker's JSON-message stream, and docker's human-readable sizes. The operations
//! layer below never prints; a front end picks a renderer and hands it to an operation as
//! its progress sink.

pub mod buildkit;
pub mod progress;

pub use progress::{JsonMessages, Lines, Terminal};

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
}
