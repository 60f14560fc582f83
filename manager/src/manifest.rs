//! Manifest media types and the walk from an index or manifest to the blobs it needs.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use serde::Deserialize;

use crate::platform::Platform;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Every manifest type berth understands, for the `Accept` header (schema1 only to be able
/// to name it in the error).
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "manifest {reference} uses docker schema 1, which is deprecated and unsupported; \
         push it again with a current client to convert it"
    )]
    Schema1 { reference: String },
    #[error("manifest {reference} has unsupported media type {media_type:?}")]
    UnsupportedType {
        reference: String,
        media_type: String,
    },
    #[error("parsing manifest {reference}")]
    Parse {
        reference: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "image index {reference} has no manifest for platform {platform} (it has: {available})"
    )]
    NoPlatform {
        reference: String,
        platform: Platform,
        available: String,
    },
    #[error("layer {digest} has unsupported media type {media_type:?}")]
    LayerType { digest: String, media_type: String },
}

/// Whether a manifest lists other manifests or describes one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Index,
    Image,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<u32>,
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
    layers: Option<serde_json::Value>,
}

/// Classifies manifest bytes by `Content-Type`, then the `mediaType` field, then shape; also
/// returns the media type to record.
pub fn classify(
    reference: &str,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<(Kind, String), ManifestError> {
    let probe: Probe = serde_json::from_slice(bytes).map_err(|source| ManifestError::Parse {
        reference: reference.to_string(),
        source,
    })?;
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .filter(|c| !c.is_empty() && c != "application/json" && c != "text/plain");
    let media_type = header.or(probe.media_type.clone());
    if probe.schema_version == Some(1)
        || matches!(
            media_type.as_deref(),
            Some(DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED)
        )
    {
        return Err(ManifestError::Schema1 {
            reference: reference.to_string(),
        });
    }
    match media_type.as_deref() {
        Some(OCI_INDEX | DOCKER_LIST) => Ok((Kind::Index, media_type.unwrap_or_default())),
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => Ok((Kind::Image, media_type.unwrap_or_default())),
        Some(other) => Err(ManifestError::UnsupportedType {
            reference: reference.to_string(),
            media_type: other.to_string(),
        }),
        None if probe.manifests.is_some() => Ok((Kind::Index, OCI_INDEX.to_string())),
        None if probe.layers.is_some() => Ok((Kind::Image, OCI_MANIFEST.to_string())),
        None => Err(ManifestError::UnsupportedType {
            reference: reference.to_string(),
            media_type: String::new(),
        }),
    }
}

pub fn parse_index(reference: &str, bytes: &[u8]) -> Result<ImageIndex, ManifestError> {
    serde_json::from_slice(bytes).map_err(|source| ManifestError::Parse {
        reference: reference.to_string(),
        source,
    })
}

pub fn parse_image(reference: &str, bytes: &[u8]) -> Result<ImageManifest, ManifestError> {
    serde_json::from_slice(bytes).map_err(|source| ManifestError::Parse {
        reference: reference.to_string(),
        source,
    })
}

/// Picks the manifest for `want` from an index. Entries without a platform are skipped
/// (attestations and other artifacts).
pub fn select_platform<'a>(
    reference: &str,
    index: &'a ImageIndex,
    want: &Platform,
) -> Result<&'a Descriptor, ManifestError> {
    let mut best: Option<(&Descriptor, u8)> = None;
    for d in index.manifests() {
        let Some(p) = d.platform() else { continue };
        let have = Platform::from_oci(p);
        if let Some(score) = want.matches(&have) {
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((d, score));
            }
        }
    }
    best.map(|(d, _)| d)
        .ok_or_else(|| ManifestError::NoPlatform {
            reference: reference.to_string(),
            platform: want.clone(),
            available: index
                .manifests()
                .iter()
                .filter_map(|d| {
                    d.platform()
                        .as_ref()
                        .map(|p| Platform::from_oci(p).to_string())
                })
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Layer compression as told by a layer's media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub fn layer_compression(layer: &Descriptor) -> Result<Compression, ManifestError> {
    let mt = layer.media_type().to_string();
    match layer.media_type() {
        MediaType::ImageLayer | MediaType::ImageLayerNonDistributable => Ok(Compression::None),
        MediaType::ImageLayerGzip | MediaType::ImageLayerNonDistributableGzip => {
            Ok(Compression::Gzip)
        }
        MediaType::ImageLayerZstd | MediaType::ImageLayerNonDistributableZstd => {
            Ok(Compression::Zstd)
        }
        _ if mt.ends_with(".tar.gzip") || mt.ends_with("+gzip") => Ok(Compression::Gzip),
        _ if mt.ends_with("+zstd") || mt.ends_with(".tar.zstd") => Ok(Compression::Zstd),
        _ if mt.ends_with(".tar") => Ok(Compression::None),
        _ => Err(ManifestError::LayerType {
            digest: layer.digest().to_string(),
            media_type: mt,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_prefers_header_then_field_then_shape() {
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(
            classify("r", Some(DOCKER_LIST), idx).unwrap().0,
            Kind::Index
        );
        assert_eq!(
            classify("r", None, idx).unwrap(),
            (Kind::Index, OCI_INDEX.into())
        );
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","layers":[]}"#;
        assert_eq!(
            classify("r", Some("application/json"), m).unwrap(),
            (Kind::Image, DOCKER_MANIFEST.into())
        );
    }

    #[test]
    fn schema1_gets_a_clear_error() {
        let m = br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        let err = classify("reg/x:1", None, m).unwrap_err();
        assert!(err.to_string().contains("schema 1"), "{err}");
        let err = classify("r", Some(DOCKER_SCHEMA1_SIGNED), b"{}").unwrap_err();
        assert!(matches!(err, ManifestError::Schema1 { .. }));
    }

    #[test]
    fn unknown_media_type_is_named() {
        let err = classify("r", Some("application/x-foo"), b"{}").unwrap_err();
        assert!(err.to_string().contains("application/x-foo"));
    }

    #[test]
    fn platform_selection_picks_matching_entry_and_lists_the_rest() {
        let index: ImageIndex = serde_json::from_str(&format!(
            r#"{{"schemaVersion":2,"manifests":[
            {{"mediaType":"{OCI_MANIFEST}","size":1,"digest":"sha256:{a}","platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
            {{"mediaType":"{OCI_MANIFEST}","size":1,"digest":"sha256:{b}","platform":{{"os":"linux","architecture":"amd64"}}}},
            {{"mediaType":"{OCI_MANIFEST}","size":1,"digest":"sha256:{c}","platform":{{"os":"unknown","architecture":"unknown"}}}}]}}"#,
            a = "a".repeat(64),
            b = "b".repeat(64),
            c = "c".repeat(64)
        ))
        .unwrap();
        let amd = select_platform("r", &index, &"linux/amd64".parse().unwrap()).unwrap();
        assert!(amd.digest().digest().starts_with('b'));
        let arm = select_platform("r", &index, &"linux/arm64".parse().unwrap()).unwrap();
        assert!(arm.digest().digest().starts_with('a'));
        let err = select_platform("r", &index, &"linux/s390x".parse().unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("linux/arm64/v8, linux/amd64"),
            "{err}"
        );
    }
}
