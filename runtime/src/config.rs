//! Loading and validating a bundle's `config.json`.
//!
//! Everything the runtime needs from the bundle is checked here, once, before any state is
//! created, so bad input fails without leaving anything behind.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde_json::value::RawValue;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("bundle {bundle}: config.json not found")]
    Missing { bundle: PathBuf },
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parsing {path}: field {field}")]
    Parse {
        path: PathBuf,
        /// Where in the document the problem is, e.g. `linux.namespaces[0].type`.
        field: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("config.json: {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("config.json: root.path: rootfs {path} does not exist")]
    RootfsMissing { path: PathBuf },
    #[error("config.json")]
    Seccomp(#[from] crate::linux::seccomp::SeccompError),
    #[error("config.json")]
    Security(#[from] crate::linux::security::SecurityError),
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A validated bundle: its absolute directory, the parsed spec and the absolute rootfs path.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// The config.json text `spec` was parsed from, kept verbatim with the container's state
    /// for `exec` (cheaper than serialising the spec again, and exactly what was validated).
    pub raw: Box<RawValue>,
}

impl Bundle {
    /// Reads `<dir>/config.json` and validates it.
    pub fn load(dir: &Path) -> Result<Bundle, ConfigError> {
        let dir = std::path::absolute(dir).map_err(|source| ConfigError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("config.json");
        let data = std::fs::read(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                ConfigError::Missing {
                    bundle: dir.clone(),
                }
            } else {
                ConfigError::Read {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let spec = parse_spec(&data, &path)?;
        // The document parsed, so it is one valid JSON value and UTF-8.
        let raw = String::from_utf8(data)
            .ok()
            .and_then(|text| RawValue::from_string(text).ok())
            .ok_or_else(|| invalid("config.json", "not a single UTF-8 JSON document"))?;
        let rootfs = match spec.root() {
            Some(root) if root.path().is_absolute() => root.path().clone(),
            Some(root) => dir.join(root.path()),
            None => return Err(invalid("root", "missing")),
        };
        validate(&spec)?;
        if !rootfs.is_dir() {
            return Err(ConfigError::RootfsMissing { path: rootfs });
        }
        // The bundle is trusted host input: a symlinked rootfs is followed here, once, so
        // everything after works on the real directory.
        let rootfs = rootfs.canonicalize().map_err(|source| ConfigError::Read {
            path: rootfs.clone(),
            source,
        })?;
        Ok(Bundle {
            dir,
            rootfs,
            spec,
            raw,
        })
    }
}

/// Parses config.json text and validates it, as `Bundle::load` does for the file (used by
/// the fuzz target, runtime/fuzz). `path` only names the document in errors.
pub fn parse(data: &[u8], path: &Path) -> Result<Spec, ConfigError> {
    let spec = parse_spec(data, path)?;
    validate(&spec)?;
    Ok(spec)
}

/// Deserialises the spec; a failure names the JSON path of the problem (see jsonpath.rs).
fn parse_spec(data: &[u8], path: &Path) -> Result<Spec, ConfigError> {
    let mut spec: Spec = crate::jsonpath::from_slice(data).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        field: if e.field.is_empty() {
            ".".to_string()
        } else {
            e.field
        },
        source: e.source,
    })?;
    // An empty namespace path means no path: a new namespace (runc reads it so, and its
    // tests write `"path": ""` for the namespaces they do not join).
    if let Some(linux) = spec.linux_mut() {
        if let Some(namespaces) = linux.namespaces_mut() {
            for ns in namespaces.iter_mut() {
                if ns.path().as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                    ns.set_path(None);
                }
            }
        }
    }
    Ok(spec)
}

/// Checks the parts of the spec that serde cannot: required fields and consistency.
pub fn validate(spec: &Spec) -> Result<(), ConfigError> {
    if spec.version().is_empty() {
        return Err(invalid("ociVersion", "missing"));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing"))?;
    match process.args() {
        Some(args) if !args.is_empty() => {}
        _ => return Err(invalid("process.args", "must not be empty")),
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{:?} is not an absolute path", process.cwd()),
        ));
    }
    for env in process.env().iter().flatten() {
        if !env.contains('=') {
            return Err(invalid(
                "process.env",
                format!("{env:?} is not of the form KEY=VALUE"),
            ));
        }
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux", "missing"))?;
    let mut seen = HashSet::new();
    let mut has_user = false;
    let mut has_uts = false;
    for ns in linux.namespaces().iter().flatten() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                "linux.namespaces",
                format!("duplicate namespace type {}", ns.typ()),
            ));
        }
        if let Some(path) = ns.path() {
            if !path.is_absolute() {
                return Err(invalid(
                    "linux.namespaces",
                    format!("{} namespace path {path:?} is not absolute", ns.typ()),
                ));
            }
        }
        match ns.typ() {
            LinuxNamespaceType::User => has_user = ns.path().is_none(),
            LinuxNamespaceType::Uts => has_uts = true,
            LinuxNamespaceType::Time if !Path::new("/proc/self/ns/time").exists() => {
                return Err(invalid(
                    "linux.namespaces",
                    "time namespaces are not supported by this kernel",
                ))
            }
            _ => {}
        }
    }
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if has_user && !has_maps {
        return Err(invalid(
            "linux.uidMappings",
            "a new user namespace needs uidMappings and gidMappings",
        ));
    }
    if !has_user && has_maps {
        return Err(invalid(
            "linux.uidMappings",
            "id mappings are set but no new user namespace is requested",
        ));
    }
    if (spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
        || spec.domainname().as_ref().is_some_and(|h| !h.is_empty()))
        && !has_uts
    {
        return Err(invalid(
            "hostname",
            "setting the hostname or domainname needs a private uts namespace",
        ));
    }
    if let Some(offsets) = linux.time_offsets() {
        if !offsets.is_empty() && !seen.contains(&LinuxNamespaceType::Time) {
            return Err(invalid(
                "linux.timeOffsets",
                "time offsets need a time namespace",
            ));
        }
        for clock in offsets.keys() {
            if clock != "monotonic" && clock != "boottime" {
                return Err(invalid(
                    "linux.timeOffsets",
                    format!("unknown clock {clock:?}"),
                ));
            }
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(invalid(
                format!("mounts[{i}].destination"),
                format!("{:?} is not an absolute path", m.destination()),
            ));
        }
    }
    if let Some(prop) = linux.rootfs_propagation() {
        if crate::linux::mount::propagation_flag(prop).is_none() && !prop.is_empty() {
            return Err(invalid(
                "linux.rootfsPropagation",
                format!("unknown propagation {prop:?}"),
            ));
        }
    }
    if let Some(profile) = linux.seccomp() {
        crate::linux::seccomp::validate(profile)?;
    }
    crate::linux::security::validate(process)?;
    if let Some(hooks) = spec.hooks() {
        for (name, list) in crate::hooks::all(hooks) {
            for h in list {
                if !h.path().is_absolute() {
                    return Err(invalid(
                        format!("hooks.{name}"),
                        format!("path {:?} is not absolute", h.path()),
                    ));
                }
                if h.timeout().is_some_and(|t| t <= 0) {
                    return Err(invalid(
                        format!("hooks.{name}"),
                        "timeout must be a positive number of seconds",
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_from(json: &str) -> Spec {
        serde_json::from_str(json).expect("test spec parses")
    }

    const BASE: &str = r#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/"},
        "root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid"},{"type":"mount"}]}}"#;

    #[test]
    fn a_minimal_spec_is_valid() {
        validate(&spec_from(BASE)).expect("valid");
    }

    #[test]
    fn unknown_namespace_type_is_a_parse_error_naming_it() {
        let bad = BASE.replace(r#"{"type":"pid"}"#, r#"{"type":"bogus"}"#);
        let err = serde_json::from_str::<Spec>(&bad).expect_err("must fail");
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn duplicate_namespaces_are_rejected() {
        let bad = BASE.replace(r#"{"type":"mount"}"#, r#"{"type":"pid"}"#);
        let err = validate(&spec_from(&bad)).expect_err("must fail");
        assert!(
            err.to_string().contains("duplicate namespace type pid"),
            "{err}"
        );
    }

    #[test]
    fn empty_args_are_rejected() {
        let bad = BASE.replace(r#"["sh"]"#, "[]");
        let err = validate(&spec_from(&bad)).expect_err("must fail");
        assert!(err.to_string().contains("process.args"), "{err}");
    }

    #[test]
    fn a_user_namespace_needs_mappings() {
        let bad = BASE.replace(r#"{"type":"mount"}"#, r#"{"type":"user"}"#);
        let err = validate(&spec_from(&bad)).expect_err("must fail");
        assert!(err.to_string().contains("uidMappings"), "{err}");
    }

    #[test]
    fn hostname_needs_a_uts_namespace() {
        let bad = BASE.replace(r#""root""#, r#""hostname":"x","root""#);
        let err = validate(&spec_from(&bad)).expect_err("must fail");
        assert!(err.to_string().contains("uts"), "{err}");
    }

    #[test]
    fn relative_mount_destinations_are_rejected() {
        let bad = BASE.replace(
            r#""root""#,
            r#""mounts":[{"destination":"tmp","type":"tmpfs","source":"tmpfs"}],"root""#,
        );
        let err = validate(&spec_from(&bad)).expect_err("must fail");
        assert!(err.to_string().contains("mounts[0].destination"), "{err}");
    }
}
