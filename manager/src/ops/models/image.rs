//! Images in the Docker Engine API's shapes: `ImageSummary` (list), image inspect, the
//! results of delete and prune, and what pull, push, load and login report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One image of `GET /images/json`: every name of one image (config digest) together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    /// The config digest (`sha256:...`); the manifest digest for an image whose manifest
    /// cannot be read.
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Unix seconds (0 when unknown).
    pub created: i64,
    pub size: i64,
    pub shared_size: i64,
    pub virtual_size: i64,
    pub labels: BTreeMap<String, String>,
    /// Containers made from it; -1 when not counted.
    pub containers: i64,
    /// The stored names of this image, one per record (renderers list one row each); not
    /// part of docker's JSON.
    #[serde(skip)]
    pub names: Vec<ImageName>,
    /// The config's `created` as written (RFC 3339); not part of docker's JSON.
    #[serde(skip)]
    pub created_at: Option<String>,
    /// The image's manifest or config could not be read; not part of docker's JSON.
    #[serde(skip)]
    pub damaged: bool,
}

/// One stored name of an image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageName {
    /// `registry/repository`, `<none>` for an unnamed image.
    pub repository: String,
    /// `<none>` for an unnamed or digest-pinned image.
    pub tag: String,
    /// The manifest (or index) digest the name points at.
    pub digest: String,
}

/// `GET /images/{name}/json`, plus the stored manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Always empty: berth records no parent images.
    pub parent: String,
    /// The config's `comment` (docker's v1 field; `import` writes it).
    pub comment: String,
    pub created: Option<String>,
    /// The config's `container` and `container_config` (docker's builder writes them).
    pub container: String,
    pub container_config: super::container::ContainerConfig,
    pub docker_version: String,
    pub author: String,
    /// The config blob's own `config` object: docker's shape, with the Healthcheck, OnBuild
    /// and Shell that builds set (the OCI model has no place for them).
    pub config: Option<super::container::ContainerConfig>,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    pub size: u64,
    pub virtual_size: u64,
    pub graph_driver: super::container_json::GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    pub metadata: ImageMetadata,
    /// Which manifest berth stores (not part of docker's JSON).
    pub manifest: ManifestInfo,
}

/// `Metadata`: docker's last tag time (berth keeps none: the zero time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageMetadata {
    pub last_tag_time: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    pub r#type: String,
    pub layers: Vec<String>,
}

/// Which manifest berth stores for the image (not part of docker's JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManifestInfo {
    pub digest: String,
    pub media_type: String,
    pub index_digest: Option<String>,
    pub layers: Vec<oci_spec::image::Descriptor>,
}

/// One line of `DELETE /images/{name}` and of image prune.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageDeleteResponseItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

/// `POST /images/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImagePruneResponse {
    pub images_deleted: Vec<ImageDeleteResponseItem>,
    pub space_reclaimed: u64,
}

/// What one pulled reference became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PulledImage {
    pub reference: String,
    /// The manifest (or index) digest pulled.
    pub digest: String,
    /// False when everything was present already ("Image is up to date").
    pub downloaded: bool,
}

/// What one pushed name became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PushedImage {
    pub reference: String,
    pub digest: String,
    pub size: u64,
}

/// One image a `load` stored: its name, or its id when it has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoadedImage {
    pub name: Option<String>,
    pub id: String,
}

/// `POST /auth`: credentials for a registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    /// Registry host (Docker Hub when empty).
    #[serde(default)]
    pub serveraddress: String,
}

/// The answer to a successful login.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthResponse {
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identity_token: String,
}
