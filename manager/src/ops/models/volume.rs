//! Volumes in the Docker Engine API's shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::serde_helpers::null_default;

/// `POST /volumes/create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeCreateRequest {
    /// A random name when empty.
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// Only `local` (also when empty).
    #[serde(deserialize_with = "null_default")]
    pub driver: String,
    /// `type`, `device`, `o` (a filesystem mounted on first use).
    #[serde(deserialize_with = "null_default")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
}

/// A volume as inspect and list report it (empty maps as `null`, as docker).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub created_at: String,
    pub driver: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub mountpoint: std::path::PathBuf,
    pub name: String,
    pub options: Option<BTreeMap<String, String>>,
    pub scope: String,
}

/// `GET /volumes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeListResponse {
    pub volumes: Vec<Volume>,
    pub warnings: Vec<String>,
}

/// `POST /volumes/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumePruneResponse {
    pub volumes_deleted: Vec<String>,
    pub space_reclaimed: u64,
}
