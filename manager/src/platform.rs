//! Platforms (`os/arch[/variant]`) as given to `--platform` and found in image indexes.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
#[error("invalid platform {value:?}: expected os/arch[/variant], e.g. linux/amd64")]
pub struct PlatformError {
    value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this berth runs on, in Go's names (as images use them).
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Self {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }

    pub fn from_oci(p: &oci_spec::image::Platform) -> Self {
        Self {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone().filter(|v| !v.is_empty()),
        }
    }

    /// `None` when `have` cannot run as `self`; else a score, higher is a better match.
    pub fn matches(&self, have: &Platform) -> Option<u8> {
        if self.os != have.os || self.architecture != have.architecture {
            return None;
        }
        let norm = |v: Option<&str>, arch: &str| match (v, arch) {
            (None, "arm64") => Some("v8".to_string()),
            (v, _) => v.map(str::to_string),
        };
        let want = norm(self.variant.as_deref(), &self.architecture);
        let got = norm(have.variant.as_deref(), &have.architecture);
        match (want, got) {
            (Some(w), Some(g)) if w == g => Some(2),
            (Some(_), Some(_)) => None,
            (Some(_), None) => Some(1),
            (None, None) => Some(2),
            (None, Some(_)) => Some(1),
        }
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let err = || PlatformError {
            value: s.to_string(),
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(err());
        }
        let lower = |p: &str| p.to_ascii_lowercase();
        match parts.as_slice() {
            [os, arch] => Ok(Self {
                os: lower(os),
                architecture: lower(arch),
                variant: None,
            }),
            [os, arch, variant] => Ok(Self {
                os: lower(os),
                architecture: lower(arch),
                variant: Some(lower(variant)),
            }),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.variant.as_deref(), Some("v8"));
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//x".parse::<Platform>().is_err());
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn variants_match_with_arm64_defaulting_to_v8() {
        let p = |s: &str| s.parse::<Platform>().unwrap();
        assert_eq!(p("linux/arm64").matches(&p("linux/arm64/v8")), Some(2));
        assert_eq!(p("linux/arm/v7").matches(&p("linux/arm/v6")), None);
        assert!(p("linux/amd64").matches(&p("linux/arm64")).is_none());
        assert!(p("linux/amd64").matches(&p("windows/amd64")).is_none());
    }
}
