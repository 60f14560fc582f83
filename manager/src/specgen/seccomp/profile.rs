//! Docker's seccomp profile format and its conversion to an OCI `LinuxSeccomp`.
//!
//! Docker's format is the OCI one plus conditions evaluated when a container is created: an
//! `archMap` (the native architecture and its compat ones), and per rule `includes`/`excludes`
//! on architectures, capabilities and a minimum kernel version.

use std::path::Path;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompBuilder,
    LinuxSeccompFilterFlag, LinuxSyscall, LinuxSyscallBuilder,
};
use serde::Deserialize;

use super::SeccompError;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: LinuxSeccompAction,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub architectures: Vec<Arch>,
    #[serde(default)]
    pub arch_map: Vec<ArchMap>,
    #[serde(default)]
    pub flags: Vec<LinuxSeccompFilterFlag>,
    #[serde(default)]
    pub syscalls: Vec<SyscallRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: Arch,
    #[serde(default)]
    pub sub_architectures: Vec<Arch>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    /// The pre-2016 single-name form.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub names: Vec<String>,
    pub action: LinuxSeccompAction,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Vec<LinuxSeccompArg>,
    #[serde(default)]
    pub includes: Filter,
    #[serde(default)]
    pub excludes: Filter,
}

/// Conditions on a rule; `includes` needs all of them to hold, `excludes` skips the rule when
/// any holds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// libseccomp names without prefix as docker writes them: `amd64`, `x86`, `arm64`...
    #[serde(default)]
    pub arches: Vec<String>,
    /// `CAP_SYS_ADMIN` style names.
    #[serde(default)]
    pub caps: Vec<String>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// The native architecture in docker's short naming and as an OCI arch.
fn native_arch() -> (&'static str, Option<Arch>) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", Some(Arch::ScmpArchX86_64)),
        "aarch64" => ("arm64", Some(Arch::ScmpArchAarch64)),
        "x86" => ("x86", Some(Arch::ScmpArchX86)),
        "arm" => ("arm", Some(Arch::ScmpArchArm)),
        other => (other, None),
    }
}

/// The running kernel's (major, minor) from /proc/sys/kernel/osrelease.
fn kernel_version() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    parse_version(release.trim())
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().unwrap_or(0);
    Some((major, minor))
}

impl Profile {
    /// Evaluates the profile's conditions for this host and a container holding `caps` (names
    /// without prefix) and returns the OCI filter. `origin` names the profile in errors.
    pub fn to_oci(&self, origin: &Path, caps: &[String]) -> Result<LinuxSeccomp, SeccompError> {
        let (native, native_oci) = native_arch();
        let kernel = kernel_version();
        let has_cap = |c: &str| {
            let bare = c.strip_prefix("CAP_").unwrap_or(c);
            caps.iter().any(|have| have == bare)
        };

        let architectures: Vec<Arch> = if self.arch_map.is_empty() {
            self.architectures.clone()
        } else {
            self.arch_map
                .iter()
                .filter(|m| Some(m.architecture) == native_oci)
                .flat_map(|m| std::iter::once(m.architecture).chain(m.sub_architectures.clone()))
                .collect()
        };

        let mut syscalls: Vec<LinuxSyscall> = Vec::new();
        for (index, rule) in self.syscalls.iter().enumerate() {
            let names = match (&rule.name, rule.names.is_empty()) {
                (Some(_), false) => {
                    return Err(SeccompError::NameAndNames {
                        path: origin.to_path_buf(),
                        index,
                    })
                }
                (Some(n), true) => vec![n.clone()],
                (None, false) => rule.names.clone(),
                (None, true) => {
                    return Err(SeccompError::NoNames {
                        path: origin.to_path_buf(),
                        index,
                    })
                }
            };
            let inc = &rule.includes;
            let exc = &rule.excludes;
            if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == native) {
                continue;
            }
            if exc.arches.iter().any(|a| a == native) {
                continue;
            }
            if !inc.caps.iter().all(|c| has_cap(c)) {
                continue;
            }
            if exc.caps.iter().any(|c| has_cap(c)) {
                continue;
            }
            if let Some(min) = &inc.min_kernel {
                let need = parse_version(min).ok_or_else(|| SeccompError::MinKernel {
                    path: origin.to_path_buf(),
                    version: min.clone(),
                })?;
                if kernel.is_some_and(|k| k < need) {
                    continue;
                }
            }
            let mut b = LinuxSyscallBuilder::default()
                .names(names)
                .action(rule.action);
            if let Some(e) = rule.errno_ret {
                b = b.errno_ret(e);
            }
            if !rule.args.is_empty() {
                b = b.args(rule.args.clone());
            }
            syscalls.push(b.build().map_err(|source| SeccompError::Build {
                path: origin.to_path_buf(),
                source,
            })?);
        }

        let mut b = LinuxSeccompBuilder::default()
            .default_action(self.default_action)
            .architectures(architectures)
            .syscalls(syscalls);
        if let Some(e) = self.default_errno_ret {
            b = b.default_errno_ret(e);
        }
        if !self.flags.is_empty() {
            b = b.flags(self.flags.clone());
        }
        b.build().map_err(|source| SeccompError::Build {
            path: origin.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::specgen::seccomp::load_profile;

    fn names(s: &LinuxSeccomp) -> Vec<String> {
        s.syscalls()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .flat_map(|c| c.names().clone())
            .collect()
    }

    const PROFILE: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
        ],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"name": "legacy", "action": "SCMP_ACT_ALLOW"},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
            {"names": ["set_tls"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm", "arm64"]}},
            {"names": ["futuristic"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]
    }"#;

    fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
        let path = dir.path().join("profile.json");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn conditions_follow_caps_arch_and_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, PROFILE);
        let plain = load_profile(&path, &["CHOWN".to_string()]).unwrap();
        let n = names(&plain);
        assert!(n.contains(&"read".to_string()) && n.contains(&"legacy".to_string()));
        assert!(!n.contains(&"mount".to_string()));
        assert!(n.contains(&"clone".to_string()));
        assert!(!n.contains(&"futuristic".to_string()));
        assert_eq!(plain.default_errno_ret(), Some(1));
        let clone3 = plain
            .syscalls()
            .as_deref()
            .unwrap()
            .iter()
            .find(|s| s.names() == &["clone3"])
            .unwrap();
        assert_eq!(clone3.errno_ret(), Some(38));

        let admin = load_profile(&path, &["SYS_ADMIN".to_string()]).unwrap();
        let n = names(&admin);
        assert!(n.contains(&"mount".to_string()));
        assert!(!n.contains(&"clone".to_string()));

        if cfg!(target_arch = "x86_64") {
            assert!(n.contains(&"arch_prctl".to_string()));
            assert!(!n.contains(&"set_tls".to_string()));
            assert_eq!(
                admin.architectures().clone().unwrap(),
                vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
            );
        }
    }

    #[test]
    fn malformed_profiles_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "{\"defaultAction\": \"SCMP_ACT_NOPE\"}");
        let err = load_profile(&path, &[]).unwrap_err();
        assert!(matches!(err, SeccompError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("profile.json"));

        let path = write(
            &dir,
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        assert!(matches!(
            load_profile(&path, &[]),
            Err(SeccompError::NameAndNames { index: 0, .. })
        ));
        let path = write(
            &dir,
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        assert!(matches!(
            load_profile(&path, &[]),
            Err(SeccompError::NoNames { .. })
        ));
        let err = load_profile(Path::new("/nonexistent/profile.json"), &[]).unwrap_err();
        assert!(matches!(err, SeccompError::Read { .. }));
    }

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("6.18.44-fc-v657"), Some((6, 18)));
        assert_eq!(parse_version("4.8"), Some((4, 8)));
        assert_eq!(parse_version("5"), Some((5, 0)));
        assert_eq!(parse_version("x"), None);
    }
}
