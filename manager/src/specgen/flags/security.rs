//! `--cap-add/--cap-drop` and `--security-opt`.

use std::path::PathBuf;

use super::{invalid, parse_bool, FlagError};
use crate::specgen::caps::CAP_NAMES;
use crate::specgen::options::{SeccompMode, SecurityOptions};

/// One `--cap-add`/`--cap-drop` value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CapSpec {
    All,
    /// A known capability, upper case, without the CAP_ prefix (`NET_ADMIN`).
    Cap(String),
}

/// `--cap-add`/`--cap-drop`: a capability with or without `CAP_`, in any case, or `ALL`.
pub fn parse_capability(flag: &'static str, value: &str) -> Result<CapSpec, FlagError> {
    let upper = value.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(CapSpec::All);
    }
    let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if CAP_NAMES.contains(&name) {
        Ok(CapSpec::Cap(name.to_string()))
    } else {
        Err(invalid(
            flag,
            value,
            format!("unknown capability: \"CAP_{name}\""),
        ))
    }
}

/// One `--security-opt` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityOpt {
    Seccomp(SeccompMode),
    NoNewPrivileges(bool),
    /// `systempaths=unconfined`.
    UnmaskSystemPaths,
    WritableCgroups(bool),
    /// Accepted because docker accepts it on this kind of host, but without effect.
    Ignored {
        option: String,
        reason: &'static str,
    },
}

impl SecurityOpt {
    /// Records the option in `security`; returns a warning for the user when it is ignored.
    pub fn apply(self, security: &mut SecurityOptions) -> Option<String> {
        match self {
            SecurityOpt::Seccomp(mode) => security.seccomp = mode,
            SecurityOpt::NoNewPrivileges(on) => security.no_new_privileges = on,
            SecurityOpt::UnmaskSystemPaths => security.unmask_system_paths = true,
            SecurityOpt::WritableCgroups(on) => security.writable_cgroups = on,
            SecurityOpt::Ignored { option, reason } => {
                return Some(format!("--security-opt {option} ignored: {reason}"))
            }
        }
        None
    }
}

/// `--security-opt key=value` (docker also accepts the legacy `key:value`):
/// `seccomp=unconfined|builtin|<file>`, `no-new-privileges[=bool]`, `systempaths=unconfined`,
/// `writable-cgroups=bool`, and `apparmor=`/`label=`, which berth accepts but ignores, as docker
/// does on a host without AppArmor or SELinux.
pub fn parse_security_opt(value: &str) -> Result<SecurityOpt, FlagError> {
    const FLAG: &str = "--security-opt";
    if value == "no-new-privileges" {
        return Ok(SecurityOpt::NoNewPrivileges(true));
    }
    let (key, val) = value
        .split_once('=')
        .or_else(|| value.split_once(':'))
        .ok_or_else(|| invalid(FLAG, value, "expected key=value"))?;
    if val.is_empty() {
        return Err(invalid(FLAG, value, "value is empty"));
    }
    Ok(match key {
        "seccomp" => SecurityOpt::Seccomp(match val {
            "unconfined" => SeccompMode::Unconfined,
            "builtin" => SeccompMode::Default,
            path => SeccompMode::Profile(PathBuf::from(path)),
        }),
        "no-new-privileges" => SecurityOpt::NoNewPrivileges(parse_bool(FLAG, val)?),
        "systempaths" if val == "unconfined" => SecurityOpt::UnmaskSystemPaths,
        "systempaths" => return Err(invalid(FLAG, value, "systempaths only accepts unconfined")),
        "writable-cgroups" => SecurityOpt::WritableCgroups(parse_bool(FLAG, val)?),
        "apparmor" => SecurityOpt::Ignored {
            option: value.to_string(),
            reason: "berth does not apply AppArmor profiles",
        },
        "label" => SecurityOpt::Ignored {
            option: value.to_string(),
            reason: "berth does not apply SELinux labels",
        },
        _ => return Err(invalid(FLAG, value, format!("unknown option {key:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_with_and_without_prefix() {
        let p = |v| parse_capability("--cap-add", v).unwrap();
        assert_eq!(p("NET_ADMIN"), CapSpec::Cap("NET_ADMIN".into()));
        assert_eq!(p("cap_net_admin"), CapSpec::Cap("NET_ADMIN".into()));
        assert_eq!(p("CAP_SYS_PTRACE"), CapSpec::Cap("SYS_PTRACE".into()));
        assert_eq!(p("all"), CapSpec::All);
        let err = parse_capability("--cap-drop", "CAP_FLY").unwrap_err();
        assert!(err.to_string().contains("--cap-drop"), "{err}");
        assert!(
            err.to_string().contains("unknown capability: \"CAP_FLY\""),
            "{err}"
        );
        assert!(parse_capability("--cap-add", "").is_err());
    }

    #[test]
    fn security_opts() {
        let p = |v| parse_security_opt(v).unwrap();
        assert_eq!(
            p("seccomp=unconfined"),
            SecurityOpt::Seccomp(SeccompMode::Unconfined)
        );
        assert_eq!(
            p("seccomp:builtin"),
            SecurityOpt::Seccomp(SeccompMode::Default)
        );
        assert_eq!(
            p("seccomp=/etc/profile.json"),
            SecurityOpt::Seccomp(SeccompMode::Profile("/etc/profile.json".into()))
        );
        assert_eq!(p("no-new-privileges"), SecurityOpt::NoNewPrivileges(true));
        assert_eq!(
            p("no-new-privileges:false"),
            SecurityOpt::NoNewPrivileges(false)
        );
        assert_eq!(
            p("no-new-privileges=true"),
            SecurityOpt::NoNewPrivileges(true)
        );
        assert_eq!(p("systempaths=unconfined"), SecurityOpt::UnmaskSystemPaths);
        assert_eq!(p("writable-cgroups=1"), SecurityOpt::WritableCgroups(true));
        assert!(matches!(
            p("apparmor=docker-default"),
            SecurityOpt::Ignored { .. }
        ));
        assert!(matches!(p("label=disable"), SecurityOpt::Ignored { .. }));
    }

    #[test]
    fn security_opts_reject_unknown_and_malformed() {
        for bad in [
            "bogus=1",
            "seccomp",
            "seccomp=",
            "no-new-privileges=maybe",
            "systempaths=confined",
            "writable-cgroups=yes",
            "apparmor",
        ] {
            let err = parse_security_opt(bad).unwrap_err();
            assert!(err.to_string().contains("--security-opt"), "{bad}: {err}");
        }
    }

    #[test]
    fn apply_records_options_and_warns_on_ignored() {
        let mut sec = SecurityOptions::default();
        assert_eq!(
            parse_security_opt("no-new-privileges")
                .unwrap()
                .apply(&mut sec),
            None
        );
        assert_eq!(
            parse_security_opt("seccomp=unconfined")
                .unwrap()
                .apply(&mut sec),
            None
        );
        assert!(sec.no_new_privileges);
        assert_eq!(sec.seccomp, SeccompMode::Unconfined);
        let warning = parse_security_opt("label=disable")
            .unwrap()
            .apply(&mut sec)
            .unwrap();
        assert!(warning.contains("ignored"), "{warning}");
    }
}
