//! From a stored image to a committed snapshot chain: each layer, bottom up, is unpacked from
//! the content store into an active snapshot under a temporary key and committed under its
//! ChainID, unless a snapshot of that ChainID already exists (shared base layers are unpacked
//! once). The diffID computed while unpacking must equal the config's `rootfs.diff_ids` entry.

use std::io::Read;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::Digest;

use super::{apply_layer, UnpackError};
use crate::image::{ImageInfo, ImageStore};
use crate::snapshot::{chain_id, Kind, SnapshotError, Snapshotter};

/// Temporary keys of layers being unpacked: `extract-<pid>-<n>-<chainid>`.
const EXTRACT_PREFIX: &str = "extract-";

/// Ensures every layer of `image` is unpacked in `sn` and returns the top layer's ChainID
/// (the parent to `prepare` a container's root on), or `None` for an image without layers.
pub fn unpack_image(
    store: &ImageStore,
    image: &ImageInfo,
    name: &str,
    sn: &dyn Snapshotter,
) -> Result<Option<Digest>, UnpackError> {
    // Keeps `image prune` from deleting the blobs being read (see `lock`).
    let _adding = store.adding()?;
    let layers = image.manifest.layers();
    let diff_ids = image.config.rootfs().diff_ids();
    if layers.len() != diff_ids.len() {
        return Err(UnpackError::LayerCount {
            image: name.to_string(),
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    remove_stale_extracts(sn);
    let mut parent: Option<Digest> = None;
    for (layer, diff) in layers.iter().zip(diff_ids) {
        let expected = Digest::from_str(diff).map_err(|_| UnpackError::BadDiffId {
            layer: layer.digest().to_string(),
            expected: diff.clone(),
        })?;
        let chain = chain_id(parent.as_ref(), &expected);
        match sn.stat(chain.as_ref()) {
            Ok(info) if info.kind == Kind::Committed => {}
            _ => {
                unpack_layer(store, sn, layer.digest(), &expected, parent.as_ref()).map_err(
                    |e| UnpackError::Layer {
                        layer: layer.digest().to_string(),
                        source: Box::new(e),
                    },
                )?;
            }
        }
        parent = Some(chain);
    }
    Ok(parent)
}

fn unpack_layer(
    store: &ImageStore,
    sn: &dyn Snapshotter,
    blob: &Digest,
    expected: &Digest,
    parent: Option<&Digest>,
) -> Result<Digest, UnpackError> {
    let file = store.content().open_blob(blob)?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    unpack_layer_from(sn, reader, blob, expected, parent)
}

/// Unpacks one layer read from `reader` (the compressed blob, possibly still downloading:
/// see `stream`) on top of committed snapshot `parent`, checks its diffID against `expected`
/// and commits it under its ChainID, which it returns. When another process committed the
/// same ChainID meanwhile, theirs is kept and this copy is dropped.
pub fn unpack_layer_from(
    sn: &dyn Snapshotter,
    reader: impl Read,
    blob: &Digest,
    expected: &Digest,
    parent: Option<&Digest>,
) -> Result<Digest, UnpackError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let chain = chain_id(parent, expected);
    let key = format!(
        "{EXTRACT_PREFIX}{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        chain.digest()
    );
    sn.prepare(&key, parent.map(|p| p.as_ref()))?;
    let result = (|| {
        let target = sn.apply_target(&key)?;
        let applied = apply_layer(reader, &target)?;
        if applied.diff_id != *expected {
            return Err(UnpackError::DiffIdMismatch {
                layer: blob.to_string(),
                expected: expected.to_string(),
                actual: applied.diff_id.to_string(),
            });
        }
        match sn.commit(chain.as_ref(), &key) {
            Ok(()) => Ok(false),
            // Another berth unpacked the same layer meanwhile: use theirs.
            Err(SnapshotError::AlreadyExists { .. }) => Ok(true),
            Err(e) => Err(e.into()),
        }
    })();
    match result {
        Ok(false) => Ok(chain),
        Ok(true) => sn.remove(&key).map(|()| chain).map_err(UnpackError::from),
        Err(error) => match sn.remove(&key) {
            Ok(()) => Err(error),
            Err(cleanup) => Err(UnpackError::Cleanup {
                error: Box::new(error),
                key,
                cleanup: Box::new(cleanup),
            }),
        },
    }
}

/// Drops the temporary snapshots of unpacks whose process died (crash, kill -9).
fn remove_stale_extracts(sn: &dyn Snapshotter) {
    let Ok(all) = sn.list() else { return };
    for info in all {
        let Some(rest) = info.key.strip_prefix(EXTRACT_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next() else {
            continue;
        };
        if info.kind == Kind::Active && !std::path::Path::new("/proc").join(pid).exists() {
            // Best effort: the next unpack tries again.
            let _ = sn.remove(&info.key);
        }
    }
}
