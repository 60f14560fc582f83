//! ARG scoping, as BuildKit has it: ARGs before the first FROM are global (usable in FROM
//! lines, and inside a stage once redeclared by name); an ARG in a stage is visible from its
//! line to the end of the stage; `--build-arg` overrides a declared default. The platform
//! ARGs (`TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `TARGETVARIANT` and the `BUILD*` ones)
//! are predefined in the global scope.

use std::collections::{BTreeMap, BTreeSet};

use crate::platform::Platform;

/// Build args given by the user, and which of them a build consumed.
#[derive(Debug, Clone, Default)]
pub struct BuildArgs {
    pub given: BTreeMap<String, String>,
    pub platform: BTreeMap<String, String>,
    pub used: BTreeSet<String>,
}

/// The predefined platform ARGs: `TARGET*` of the platform built for (`--platform`), `BUILD*`
/// of the one the build runs on.
pub fn platform_args(target: &Platform, build: &Platform) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (p, platform) in [("TARGET", target), ("BUILD", build)] {
        m.insert(format!("{p}PLATFORM"), platform.to_string());
        m.insert(format!("{p}OS"), platform.os.clone());
        m.insert(format!("{p}ARCH"), platform.architecture.clone());
        m.insert(
            format!("{p}VARIANT"),
            platform.variant.clone().unwrap_or_default(),
        );
    }
    m
}

impl BuildArgs {
    pub fn new(given: BTreeMap<String, String>, platform: BTreeMap<String, String>) -> Self {
        Self {
            given,
            platform,
            used: BTreeSet::new(),
        }
    }

    /// The value an `ARG name[=default]` takes: the build arg, else the default, else (for
    /// a redeclared global or platform ARG) the global value.
    pub fn resolve(
        &mut self,
        name: &str,
        default: Option<String>,
        globals: &[(String, String)],
    ) -> Option<String> {
        if let Some(v) = self.given.get(name) {
            self.used.insert(name.to_string());
            return Some(v.clone());
        }
        if default.is_some() {
            return default;
        }
        if let Some((_, v)) = globals.iter().rev().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        self.platform.get(name).cloned()
    }

    /// Build args no ARG consumed (docker warns about them).
    pub fn unused(&self) -> Vec<String> {
        self.given
            .keys()
            .filter(|k| !self.used.contains(*k) && !is_builtin(k))
            .cloned()
            .collect()
    }
}

/// docker's predefined ARGs that need no declaration (proxy settings).
pub fn is_builtin(name: &str) -> bool {
    matches!(
        name.to_ascii_uppercase().as_str(),
        "HTTP_PROXY" | "HTTPS_PROXY" | "FTP_PROXY" | "NO_PROXY" | "ALL_PROXY"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args_override_defaults_and_redeclared_globals_keep_their_value() {
        let mut given = BTreeMap::new();
        given.insert("A".to_string(), "cli".to_string());
        given.insert("UNUSED".to_string(), "x".to_string());
        let mut b = BuildArgs::new(
            given,
            platform_args(
                &"linux/amd64".parse().unwrap(),
                &"linux/amd64".parse().unwrap(),
            ),
        );
        let globals = vec![("G".to_string(), "global".to_string())];
        assert_eq!(
            b.resolve("A", Some("d".into()), &globals).as_deref(),
            Some("cli")
        );
        assert_eq!(
            b.resolve("B", Some("d".into()), &globals).as_deref(),
            Some("d")
        );
        assert_eq!(b.resolve("G", None, &globals).as_deref(), Some("global"));
        assert_eq!(b.resolve("N", None, &globals), None);
        assert_eq!(
            b.resolve("TARGETARCH", None, &globals).as_deref(),
            Some("amd64")
        );
        assert_eq!(
            b.resolve("TARGETPLATFORM", None, &globals).as_deref(),
            Some("linux/amd64")
        );
        assert_eq!(b.unused(), vec!["UNUSED".to_string()]);
    }
}
