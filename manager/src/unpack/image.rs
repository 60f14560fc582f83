//! From a stored image to a committed snapshot chain: each layer, bottom up, is unpacked from
//! the content store into an active snapshot under a temporary key and committed under its
//! ChainID, unless a snapshot of that ChainID already exists (shared base layers are unpacked
//! once). The diffID computed while unpacking must equal the config's `rootfs.diff_ids` entry.

use std::collections::HashSet;
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
    let mut sizes = Vec::new();
    for (layer, diff) in layers.iter().zip(diff_ids) {
        let expected = Digest::from_str(diff).map_err(|_| UnpackError::BadDiffId {
            layer: layer.digest().to_string(),
            expected: diff.clone(),
        })?;
        let chain = chain_id(parent.as_ref(), &expected);
        match sn.stat(chain.as_ref()) {
            Ok(info) if info.kind == Kind::Committed => {}
            _ => {
                let (_, bytes) =
                    unpack_layer(store, sn, layer.digest(), &expected, parent.as_ref()).map_err(
                        |e| UnpackError::Layer {
                            layer: layer.digest().to_string(),
                            source: Box::new(e),
                        },
                    )?;
                sizes.push((layer.digest().clone(), bytes));
            }
        }
        parent = Some(chain);
    }
    store.record_layer_sizes(&sizes);
    Ok(parent)
}

fn unpack_layer(
    store: &ImageStore,
    sn: &dyn Snapshotter,
    blob: &Digest,
    expected: &Digest,
    parent: Option<&Digest>,
) -> Result<(Digest, u64), UnpackError> {
    let file = store.content().open_blob(blob)?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    unpack_layer_from(sn, reader, blob, expected, parent)
}

/// Unpacks one layer read from `reader` (the compressed blob, possibly still downloading:
/// see `stream`) on top of committed snapshot `parent`, checks its diffID against `expected`
/// and commits it under its ChainID, which it returns with the layer's unpacked size
/// ([`crate::unpack::Applied::bytes`]). When another process committed the same ChainID
/// meanwhile, theirs is kept and this copy is dropped.
pub fn unpack_layer_from(
    sn: &dyn Snapshotter,
    reader: impl Read,
    blob: &Digest,
    expected: &Digest,
    parent: Option<&Digest>,
) -> Result<(Digest, u64), UnpackError> {
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
            Ok(()) => Ok((false, applied.bytes)),
            // Another berth unpacked the same layer meanwhile: use theirs.
            Err(SnapshotError::AlreadyExists { .. }) => Ok((true, applied.bytes)),
            Err(e) => Err(e.into()),
        }
    })();
    match result {
        Ok((false, bytes)) => Ok((chain, bytes)),
        Ok((true, bytes)) => sn
            .remove(&key)
            .map(|()| (chain, bytes))
            .map_err(UnpackError::from),
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
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let alive = std::path::Path::new("/proc").join(pid.to_string()).exists();
        if info.kind == Kind::Active && !alive {
            // Best effort: the next unpack tries again.
            let _ = sn.remove(&info.key);
        }
    }
}

/// Removes the committed snapshots that no image in `store` needs, keeping those that other
/// snapshots still build on (a container's root, an image mount). Returns the keys removed.
pub fn prune_snapshots(
    store: &ImageStore,
    sn: &dyn Snapshotter,
) -> Result<Vec<String>, UnpackError> {
    // The exclusive side of the lock `unpack_image` holds shared (image.rs `GC_LOCK`): no
    // unpack is between committing a layer and its image record being found.
    let _gc = crate::lock::FileLock::exclusive(&store.root().join("gc.lock"))?;
    let mut live: HashSet<String> = HashSet::new();
    for rec in store.records()? {
        let Ok(info) = store.image(&rec) else {
            continue;
        };
        let mut parent: Option<Digest> = None;
        for diff in info.config.rootfs().diff_ids() {
            let Ok(diff) = Digest::from_str(diff) else {
                break;
            };
            let chain = chain_id(parent.as_ref(), &diff);
            live.insert(chain.to_string());
            parent = Some(chain);
        }
    }
    let mut removed = Vec::new();
    // Children first: each pass removes the current leaves of the unused chains.
    loop {
        let before = removed.len();
        for info in sn.list()? {
            if info.kind != Kind::Committed || live.contains(&info.key) {
                continue;
            }
            match sn.remove(&info.key) {
                Ok(()) => removed.push(info.key),
                Err(SnapshotError::InUse { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if removed.len() == before {
            return Ok(removed);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::content::sha256_of;
    use crate::image::ImageRecord;
    use crate::snapshot::Backend;

    fn layer(name: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(1);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, name, &b"x"[..]).unwrap();
        b.into_inner().unwrap()
    }

    /// Stores an image of uncompressed `layers`, named `name`.
    fn add_image(store: &ImageStore, name: &str, layers: &[&[u8]]) -> ImageInfo {
        let mut descs = Vec::new();
        let mut diffs = Vec::new();
        for l in layers {
            let d = sha256_of(l);
            store.content().write_bytes(&d, l).unwrap();
            descs.push(
                json!({"mediaType": crate::manifest::OCI_LAYER, "digest": d, "size": l.len()}),
            );
            diffs.push(d.to_string());
        }
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diffs},
        }))
        .unwrap();
        let cd = sha256_of(&config);
        store.content().write_bytes(&cd, &config).unwrap();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": crate::manifest::OCI_MANIFEST,
            "config": {"mediaType": crate::manifest::OCI_CONFIG, "digest": cd, "size": config.len()},
            "layers": descs,
        }))
        .unwrap();
        let md = sha256_of(&manifest);
        store.content().write_bytes(&md, &manifest).unwrap();
        let reference = crate::reference::Reference::parse(name).unwrap();
        let rec = ImageRecord::new(Some(&reference), md, crate::manifest::OCI_MANIFEST);
        store.put(rec.clone()).unwrap();
        store.image(&rec).unwrap()
    }

    #[test]
    fn images_sharing_base_layers_share_snapshots_and_prune_keeps_what_images_use() {
        for backend in Backend::ALL {
            let dir = tempfile::tempdir().unwrap();
            let store = ImageStore::open(dir.path()).unwrap();
            let sn = backend.open(dir.path()).unwrap();
            let (base, a, b) = (layer("base"), layer("a"), layer("b"));
            let one = add_image(&store, "localhost/one:1", &[&base, &a]);
            let two = add_image(&store, "localhost/two:1", &[&base, &b]);
            let top1 = unpack_image(&store, &one, "one", &*sn).unwrap().unwrap();
            let top2 = unpack_image(&store, &two, "two", &*sn).unwrap().unwrap();
            // Three snapshots: the shared base and one per image.
            assert_eq!(sn.list().unwrap().len(), 3, "{}", backend.name());
            let base_chain = sha256_of(&base).to_string();
            assert_eq!(
                sn.stat(top1.as_ref()).unwrap().parent.as_deref(),
                Some(base_chain.as_str())
            );
            assert_eq!(
                sn.stat(top2.as_ref()).unwrap().parent,
                Some(base_chain.clone())
            );
            // Unpacking again is a no-op.
            assert_eq!(
                unpack_image(&store, &one, "one", &*sn).unwrap(),
                Some(top1.clone())
            );
            assert!(prune_snapshots(&store, &*sn).unwrap().is_empty());
            store
                .update(|r| r.retain(|r| r.name.as_deref() != Some("localhost/one:1")))
                .unwrap();
            assert_eq!(
                prune_snapshots(&store, &*sn).unwrap(),
                vec![top1.to_string()]
            );
            store.update(Vec::clear).unwrap();
            sn.view("in-use", top2.as_ref()).unwrap();
            assert!(
                prune_snapshots(&store, &*sn).unwrap().is_empty(),
                "a view keeps its chain"
            );
            sn.remove("in-use").unwrap();
            let mut gone = prune_snapshots(&store, &*sn).unwrap();
            gone.sort();
            let mut want = vec![top2.to_string(), base_chain];
            want.sort();
            assert_eq!(gone, want);
            assert!(sn.list().unwrap().is_empty());
        }
    }

    #[test]
    fn unpack_drops_what_a_dead_unpacker_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let sn = Backend::Copy.open(dir.path()).unwrap();
        // pid 0 is never a process's: the unpack that made this key is gone.
        sn.prepare("extract-0-0-abc", None).unwrap();
        sn.prepare("extract-other-format", None).unwrap();
        let info = add_image(&store, "localhost/x:1", &[&layer("x")]);
        unpack_image(&store, &info, "x", &*sn).unwrap();
        let keys: Vec<String> = sn.list().unwrap().into_iter().map(|i| i.key).collect();
        assert!(!keys.contains(&"extract-0-0-abc".to_string()), "{keys:?}");
        assert_eq!(keys.len(), 2, "{keys:?}");
    }

    #[test]
    fn a_wrong_diff_id_leaves_no_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let sn = Backend::Copy.open(dir.path()).unwrap();
        let mut info = add_image(&store, "localhost/bad:1", &[&layer("x")]);
        let wrong = sha256_of(b"something else").to_string();
        let rootfs = oci_spec::image::RootFsBuilder::default()
            .typ("layers")
            .diff_ids(vec![wrong.clone()])
            .build()
            .unwrap();
        info.config.set_rootfs(rootfs);
        let err = unpack_image(&store, &info, "bad", &*sn).unwrap_err();
        let UnpackError::Layer { source, .. } = &err else {
            panic!("{err}")
        };
        assert!(
            matches!(**source, UnpackError::DiffIdMismatch { .. }),
            "{source}"
        );
        assert!(sn.list().unwrap().is_empty());
    }
}
