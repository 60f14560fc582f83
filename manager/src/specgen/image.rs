//! The `config` object of an image's config blob, with docker's capitalised keys.
//!
//! Docker writes `null` for empty lists and maps (`"Cmd": null`, `"Labels": null`), and durations
//! as Go `time.Duration` values, i.e. integer nanoseconds; both are handled here so the rest of
//! spec generation sees plain Rust types.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::flags::{clean, parse_signal, FlagError, Signal};

#[derive(Debug, thiserror::Error)]
pub enum ImageConfigError {
    #[error("parsing image config blob")]
    Parse {
        #[source]
        source: serde_json::Error,
    },
}

/// What the image says about how to run it (the blob's `config` object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_default")]
    pub env: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub user: String,
    #[serde(default, deserialize_with = "null_default")]
    pub working_dir: String,
    /// Paths that get an anonymous volume unless the user mounts something there.
    #[serde(default, with = "key_set")]
    pub volumes: BTreeSet<String>,
    /// `port/proto` strings such as `80/tcp`.
    #[serde(default, with = "key_set")]
    pub exposed_ports: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
}

/// Docker's `HEALTHCHECK`: `Test` is `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", script]`;
/// an absent or zero duration means "inherit the default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default, deserialize_with = "null_default")]
    pub test: Vec<String>,
    #[serde(default, with = "go_duration", skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(default, with = "go_duration", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, with = "go_duration", skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
    #[serde(default, with = "go_duration", skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
}

#[derive(Deserialize)]
struct Blob {
    #[serde(default, deserialize_with = "null_default")]
    config: ImageConfig,
}

impl ImageConfig {
    /// Parses a whole image config blob (`{"architecture": ..., "config": {...}, "rootfs": ...}`)
    /// and keeps its `config` object; a blob without one yields the empty config.
    pub fn from_blob(blob: &[u8]) -> Result<Self, ImageConfigError> {
        let blob: Blob =
            serde_json::from_slice(blob).map_err(|source| ImageConfigError::Parse { source })?;
        Ok(blob.config)
    }

    /// The image's VOLUME paths that none of `targets` (the user's mount destinations) covers:
    /// each needs an anonymous volume, as docker creates. Paths are cleaned and sorted.
    pub fn uncovered_volumes<'a>(
        &self,
        targets: impl IntoIterator<Item = &'a Path>,
    ) -> Vec<PathBuf> {
        let taken: Vec<PathBuf> = targets.into_iter().map(clean).collect();
        let mut out: Vec<PathBuf> = self
            .volumes
            .iter()
            .map(|v| clean(Path::new(v)))
            .filter(|v| v != Path::new("/") && !taken.contains(v))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The signal that stops the container: the image's StopSignal, SIGTERM when unset.
    /// (A `--stop-signal` flag, parsed with [`super::flags::parse_stop_signal`], overrides it.)
    pub fn stop_signal_or_default(&self) -> Result<Signal, FlagError> {
        match self.stop_signal.as_deref() {
            None | Some("") => Ok(Signal::TERM),
            Some(s) => parse_signal("image StopSignal", s),
        }
    }
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Go encodes a set as a map to empty objects: `{"/data": {}, "/logs": {}}`.
mod key_set {
    use std::collections::{BTreeMap, BTreeSet};

    use serde::de::IgnoredAny;

    use super::*;

    pub fn serialize<S: Serializer>(set: &BTreeSet<String>, s: S) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<&str, BTreeMap<(), ()>> =
            set.iter().map(|k| (k.as_str(), BTreeMap::new())).collect();
        map.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<String>, D::Error> {
        let map: Option<BTreeMap<String, IgnoredAny>> = Option::deserialize(d)?;
        Ok(map.unwrap_or_default().into_keys().collect())
    }
}

/// Go's `time.Duration` in JSON: signed integer nanoseconds; zero and negatives mean unset.
mod go_duration {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        let nanos = v.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        s.serialize_i64(nanos)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let nanos: Option<i64> = Option::deserialize(d)?;
        Ok(nanos
            .and_then(|n| u64::try_from(n).ok())
            .filter(|&n| n > 0)
            .map(Duration::from_nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_blob_reads_docker_keys_and_nulls() {
        let blob = br#"{
            "architecture": "amd64",
            "config": {
                "Entrypoint": ["/docker-entrypoint.sh"],
                "Cmd": ["nginx", "-g", "daemon off;"],
                "Env": ["PATH=/usr/bin", "NGINX_VERSION=1.25"],
                "User": "",
                "WorkingDir": null,
                "Volumes": {"/var/cache": {}},
                "ExposedPorts": {"80/tcp": {}},
                "StopSignal": "SIGQUIT",
                "Labels": null,
                "Healthcheck": {
                    "Test": ["CMD-SHELL", "curl -f localhost"],
                    "Interval": 30000000000,
                    "Timeout": 0,
                    "StartPeriod": 90000000000,
                    "Retries": 3
                }
            },
            "rootfs": {"type": "layers", "diff_ids": []}
        }"#;
        let c = ImageConfig::from_blob(blob).unwrap();
        assert_eq!(c.entrypoint.unwrap(), vec!["/docker-entrypoint.sh"]);
        assert_eq!(c.cmd.unwrap(), vec!["nginx", "-g", "daemon off;"]);
        assert_eq!(c.env.len(), 2);
        assert_eq!(c.working_dir, "");
        assert!(c.volumes.contains("/var/cache"));
        assert!(c.exposed_ports.contains("80/tcp"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        assert!(c.labels.is_empty());
        let hc = c.healthcheck.unwrap();
        assert_eq!(hc.interval, Some(Duration::from_secs(30)));
        assert_eq!(hc.timeout, None);
        assert_eq!(hc.start_period, Some(Duration::from_secs(90)));
        assert_eq!(hc.retries, Some(3));
    }

    #[test]
    fn uncovered_volumes_skip_user_mounts() {
        let mut c = ImageConfig::default();
        for v in ["/data", "/var/lib/db/", "/logs"] {
            c.volumes.insert(v.to_string());
        }
        let user = [Path::new("/data"), Path::new("/var/lib/db")];
        assert_eq!(c.uncovered_volumes(user), vec![PathBuf::from("/logs")]);
        assert_eq!(c.uncovered_volumes([]).len(), 3);
    }

    #[test]
    fn stop_signal_defaults_to_term() {
        let mut c = ImageConfig::default();
        assert_eq!(c.stop_signal_or_default().unwrap(), Signal::TERM);
        c.stop_signal = Some("SIGQUIT".into());
        assert_eq!(c.stop_signal_or_default().unwrap(), Signal(3));
        c.stop_signal = Some("SIGNOPE".into());
        let err = c.stop_signal_or_default().unwrap_err();
        assert!(err.to_string().contains("image StopSignal"), "{err}");
    }

    #[test]
    fn from_blob_without_config_is_empty() {
        let c = ImageConfig::from_blob(br#"{"architecture":"amd64"}"#).unwrap();
        assert_eq!(c, ImageConfig::default());
        let c = ImageConfig::from_blob(br#"{"config":null}"#).unwrap();
        assert_eq!(c, ImageConfig::default());
    }

    #[test]
    fn from_blob_rejects_garbage() {
        assert!(matches!(
            ImageConfig::from_blob(b"not json"),
            Err(ImageConfigError::Parse { .. })
        ));
        assert!(ImageConfig::from_blob(br#"{"config":{"Cmd":"ls"}}"#).is_err());
    }

    #[test]
    fn volumes_round_trip_as_go_sets() {
        let mut c = ImageConfig::default();
        c.volumes.insert("/data".into());
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["Volumes"], serde_json::json!({"/data": {}}));
        let back: ImageConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }
}
