//! Parsing signal arguments the way runc does: `KILL`, `SIGKILL`, `kill`, or a number.

#[derive(Debug, thiserror::Error)]
#[error("invalid signal {given:?}: use a name like TERM or SIGKILL, or a number from 0 to 64")]
pub struct BadSignal {
    pub given: String,
}

/// Returns the signal number.
pub fn parse(s: &str) -> Result<i32, BadSignal> {
    let bad = || BadSignal {
        given: s.to_string(),
    };
    if let Ok(n) = s.parse::<i32>() {
        // 0 checks that the process exists without signalling it (kill(2)).
        return if (0..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rt) = name.strip_prefix("RTMIN") {
        let off: i32 = if rt.is_empty() {
            0
        } else {
            rt.strip_prefix('+')
                .and_then(|n| n.parse().ok())
                .ok_or_else(bad)?
        };
        let n = libc::SIGRTMIN() + off;
        return if n <= libc::SIGRTMAX() {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    format!("SIG{name}")
        .parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_and_without_sig_and_numbers() {
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGKILL").unwrap(), 9);
        assert_eq!(parse("term").unwrap(), 15);
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("SIGUSR1").unwrap(), libc::SIGUSR1);
        assert_eq!(parse("RTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
    }

    #[test]
    fn nonsense_is_rejected_by_name() {
        for bad in ["NOPE", "65", "-1", "SIG", ""] {
            let err = parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }
}
