//! Settings: flags over the config file (`<config-dir>/config.toml`) over defaults, validated
//! once into an immutable struct.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

const DEFAULT_CONCURRENCY: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parsing config file {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{path}: max_concurrent_downloads must be at least 1")]
    Concurrency { path: PathBuf },
}

/// The optional config file; every field may be left out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    root: Option<PathBuf>,
    max_concurrent_downloads: Option<usize>,
    #[serde(default)]
    insecure_registries: Vec<String>,
}

/// Where berth keeps things and how it talks to registries.
#[derive(Debug, Clone)]
pub struct Settings {
    pub root: PathBuf,
    pub config_dir: PathBuf,
    /// Directory holding docker's `config.json` (credentials), `$DOCKER_CONFIG` or ~/.docker.
    pub docker_config_dir: PathBuf,
    pub registries: RegistrySettings,
}

#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// Registries that may be reached over plain HTTP (besides loopback).
    pub insecure: Vec<String>,
    /// `certs.d` directories searched for `<host>/ca.crt`, first wins per file name.
    pub certs_dirs: Vec<PathBuf>,
    pub max_concurrent_downloads: usize,
}

impl Settings {
    /// Builds settings from the flags (`None` when not given) and the config file.
    pub fn load(
        root: Option<PathBuf>,
        config_dir: Option<PathBuf>,
        concurrency: Option<usize>,
    ) -> Result<Self, ConfigError> {
        let config_dir = config_dir.unwrap_or_else(default_config_dir);
        let path = config_dir.join("config.toml");
        let file = match fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str::<FileConfig>(&text).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => FileConfig::default(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        let max = concurrency
            .or(file.max_concurrent_downloads)
            .unwrap_or(DEFAULT_CONCURRENCY);
        if max == 0 {
            return Err(ConfigError::Concurrency { path });
        }
        let docker_config_dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| home().join(".docker"));
        Ok(Self {
            root: root.or(file.root).unwrap_or_else(default_root),
            registries: RegistrySettings {
                insecure: file.insecure_registries,
                certs_dirs: vec![
                    config_dir.join("certs.d"),
                    PathBuf::from("/etc/docker/certs.d"),
                ],
                max_concurrent_downloads: max,
            },
            config_dir,
            docker_config_dir,
        })
    }
}

impl RegistrySettings {
    /// Plain HTTP is allowed for configured registries and, as in docker, for loopback.
    pub fn is_insecure(&self, host: &str) -> bool {
        if self.insecure.iter().any(|h| h == host) {
            return true;
        }
        let name = strip_port(host);
        name == "localhost"
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// PEM files with extra CAs for `host` (`certs.d/<host>/*.crt`).
    pub fn ca_files(&self, host: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in &self.certs_dirs {
            let Ok(entries) = fs::read_dir(dir.join(host)) else {
                continue;
            };
            for entry in entries.flatten() {
                let p = entry.path();
                if p.extension().is_some_and(|e| e == "crt") {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split(']')
            .next()
            .map_or(host, |h| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

fn default_root() -> PathBuf {
    if is_root() {
        PathBuf::from("/var/lib/berth")
    } else {
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home().join(".local/share"))
            .join("berth")
    }
}

fn default_config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BERTH_CONFIG_DIR") {
        return PathBuf::from(dir);
    }
    if is_root() {
        PathBuf::from("/etc/berth")
    } else {
        std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home().join(".config"))
            .join("berth")
    }
}

/// The docker credentials file in `dir`.
pub fn docker_config_file(dir: &Path) -> PathBuf {
    dir.join("config.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(insecure: &[&str]) -> RegistrySettings {
        RegistrySettings {
            insecure: insecure.iter().map(|s| s.to_string()).collect(),
            certs_dirs: vec![],
            max_concurrent_downloads: 3,
        }
    }

    #[test]
    fn loopback_and_configured_registries_are_insecure() {
        let s = settings(&["reg.lan:5000"]);
        assert!(s.is_insecure("127.0.0.1:5000"));
        assert!(s.is_insecure("127.3.2.1"));
        assert!(s.is_insecure("localhost:80"));
        assert!(s.is_insecure("[::1]:5000"));
        assert!(s.is_insecure("reg.lan:5000"));
        assert!(!s.is_insecure("reg.lan"));
        assert!(!s.is_insecure("docker.io"));
    }

    #[test]
    fn config_file_is_read_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("config.toml"),
            "root = \"/x\"\nmax_concurrent_downloads = 5\ninsecure_registries = [\"a:1\"]\n",
        )
        .unwrap();
        let s = Settings::load(None, Some(dir.path().into()), None).unwrap();
        assert_eq!(s.root, PathBuf::from("/x"));
        assert_eq!(s.registries.max_concurrent_downloads, 5);
        assert!(s.registries.is_insecure("a:1"));
        let s = Settings::load(Some("/y".into()), Some(dir.path().into()), Some(1)).unwrap();
        assert_eq!(s.root, PathBuf::from("/y"));
        assert_eq!(s.registries.max_concurrent_downloads, 1);
        fs::write(dir.path().join("config.toml"), "bogus = 1\n").unwrap();
        let err = Settings::load(None, Some(dir.path().into()), None).unwrap_err();
        assert!(err.to_string().contains("config.toml"), "{err}");
    }
}
