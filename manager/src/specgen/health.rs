//! Health checks: the image's HEALTHCHECK merged with `--health-*` flags by docker's rules.

use std::time::Duration;

use super::image::Healthcheck;

/// Docker's defaults for a health check field left unset (moby's container/health defaults).
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_HEALTH_START_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_HEALTH_RETRIES: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("--no-healthcheck conflicts with --health-* options")]
    Conflict,
    #[error("--{flag} must be at least 1ms or 0 (the default)")]
    TooShort { flag: &'static str },
}

/// The `--health-*` flags; durations already parsed with [`super::flags::parse_duration`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HealthOptions {
    /// `--health-cmd`: run with the container's shell (`CMD-SHELL`).
    pub cmd: Option<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
    /// `--no-healthcheck`.
    pub disabled: bool,
}

/// The check to run, every field resolved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EffectiveHealthcheck {
    /// `["CMD", args...]` or `["CMD-SHELL", script]`.
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u32,
}

/// Merges the user's flags over the image's check (docker: each flag given replaces the image's
/// field) and fills docker's defaults; `None` when there is no check or it is `NONE`.
pub fn effective_healthcheck(
    image: Option<&Healthcheck>,
    user: &HealthOptions,
) -> Result<Option<EffectiveHealthcheck>, HealthError> {
    let any_flag = user.cmd.is_some()
        || user.interval.is_some()
        || user.timeout.is_some()
        || user.start_period.is_some()
        || user.start_interval.is_some()
        || user.retries.is_some();
    if user.disabled {
        return if any_flag {
            Err(HealthError::Conflict)
        } else {
            Ok(None)
        };
    }
    for (flag, d) in [
        ("health-interval", user.interval),
        ("health-timeout", user.timeout),
        ("health-start-interval", user.start_interval),
    ] {
        if d.is_some_and(|d| !d.is_zero() && d < Duration::from_millis(1)) {
            return Err(HealthError::TooShort { flag });
        }
    }
    let base = image.cloned().unwrap_or_default();
    let test = match &user.cmd {
        Some(cmd) => vec!["CMD-SHELL".to_string(), cmd.clone()],
        None => base.test.clone(),
    };
    if test.is_empty() || test[0] == "NONE" {
        return Ok(None);
    }
    let pick = |user: Option<Duration>, image: Option<Duration>, default: Duration| {
        user.filter(|d| !d.is_zero()).or(image).unwrap_or(default)
    };
    Ok(Some(EffectiveHealthcheck {
        test,
        interval: pick(user.interval, base.interval, DEFAULT_HEALTH_INTERVAL),
        timeout: pick(user.timeout, base.timeout, DEFAULT_HEALTH_TIMEOUT),
        start_period: pick(user.start_period, base.start_period, Duration::ZERO),
        start_interval: pick(
            user.start_interval,
            base.start_interval,
            DEFAULT_HEALTH_START_INTERVAL,
        ),
        retries: user
            .retries
            .filter(|r| *r > 0)
            .or(base.retries.filter(|r| *r > 0))
            .unwrap_or(DEFAULT_HEALTH_RETRIES),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::specgen::flags::parse_duration;

    fn image_check() -> Healthcheck {
        Healthcheck {
            test: vec!["CMD".into(), "/bin/check".into()],
            interval: Some(Duration::from_secs(10)),
            retries: Some(5),
            ..Default::default()
        }
    }

    #[test]
    fn image_check_gets_defaults() {
        let h = effective_healthcheck(Some(&image_check()), &HealthOptions::default())
            .unwrap()
            .unwrap();
        assert_eq!(h.test, ["CMD", "/bin/check"]);
        assert_eq!(h.interval, Duration::from_secs(10));
        assert_eq!(h.timeout, DEFAULT_HEALTH_TIMEOUT);
        assert_eq!(h.start_period, Duration::ZERO);
        assert_eq!(h.retries, 5);
    }

    #[test]
    fn flags_override_field_by_field() {
        let user = HealthOptions {
            cmd: Some("curl -f localhost".into()),
            timeout: Some(parse_duration("--health-timeout", "1m30s").unwrap()),
            ..Default::default()
        };
        let h = effective_healthcheck(Some(&image_check()), &user)
            .unwrap()
            .unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "curl -f localhost"]);
        assert_eq!(h.interval, Duration::from_secs(10));
        assert_eq!(h.timeout, Duration::from_secs(90));
        // A user command without an image check still gets a check with defaults.
        let h = effective_healthcheck(None, &user).unwrap().unwrap();
        assert_eq!(
            (h.interval, h.retries),
            (DEFAULT_HEALTH_INTERVAL, DEFAULT_HEALTH_RETRIES)
        );
    }

    #[test]
    fn none_and_disabled_mean_no_check() {
        let none = Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        assert_eq!(
            effective_healthcheck(Some(&none), &HealthOptions::default()).unwrap(),
            None
        );
        assert_eq!(
            effective_healthcheck(None, &HealthOptions::default()).unwrap(),
            None
        );
        let off = HealthOptions {
            disabled: true,
            ..Default::default()
        };
        assert_eq!(
            effective_healthcheck(Some(&image_check()), &off).unwrap(),
            None
        );
    }

    #[test]
    fn conflicting_or_tiny_flags_are_errors() {
        let both = HealthOptions {
            disabled: true,
            retries: Some(2),
            ..Default::default()
        };
        assert!(matches!(
            effective_healthcheck(None, &both),
            Err(HealthError::Conflict)
        ));
        let tiny = HealthOptions {
            cmd: Some("true".into()),
            interval: Some(Duration::from_micros(10)),
            ..Default::default()
        };
        let err = effective_healthcheck(None, &tiny).unwrap_err();
        assert!(err.to_string().contains("--health-interval"), "{err}");
    }
}
