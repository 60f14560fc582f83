//! Unpacked layer sizes, what docker reports as an image's `Size` (the bytes of its files, not
//! of its compressed blobs). Kept per layer blob in `layer-sizes.json` beside the image
//! records: written when a layer is unpacked (the count comes free with it) and, for a layer
//! stored without unpacking (built, loaded, imported), measured once from its blob. The file
//! is a cache: when it cannot be read or written the size is measured again, and a layer that
//! cannot be measured counts its compressed size.

use std::collections::BTreeMap;
use std::fs;
use std::io::BufReader;

use oci_spec::image::{Descriptor, Digest};

use super::{ImageInfo, ImageStore};
use crate::lock::FileLock;

const SIZES_FILE: &str = "layer-sizes.json";
const SIZES_LOCK: &str = "layer-sizes.lock";

/// Layer blob digest → unpacked bytes.
pub type LayerSizes = BTreeMap<String, u64>;

impl ImageStore {
    /// The cached sizes (empty when there is no cache yet or it is unreadable).
    pub fn layer_sizes(&self) -> LayerSizes {
        fs::read(self.root.join(SIZES_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Remembers the unpacked size of layer `blob` (best effort: see the module's note).
    pub fn record_layer_sizes(&self, sizes: &[(Digest, u64)]) {
        if sizes.is_empty() {
            return;
        }
        self.update_sizes(|all| {
            for (blob, bytes) in sizes {
                all.insert(blob.to_string(), *bytes);
            }
        });
    }

    /// Drops the sizes of blobs that are gone (after a garbage collection).
    pub(super) fn forget_layer_sizes(&self, deleted: &[Digest]) {
        if deleted.is_empty() {
            return;
        }
        self.update_sizes(|all| {
            for d in deleted {
                all.remove(d.as_ref());
            }
        });
    }

    fn update_sizes(&self, f: impl FnOnce(&mut LayerSizes)) {
        let Ok(_lock) = FileLock::exclusive(&self.root.join(SIZES_LOCK)) else {
            return;
        };
        let mut all = self.layer_sizes();
        f(&mut all);
        let path = self.root.join(SIZES_FILE);
        let tmp = self
            .root
            .join(format!("{SIZES_FILE}.tmp-{}", std::process::id()));
        let written = serde_json::to_vec(&all).ok().is_some_and(|b| {
            fs::write(&tmp, b)
                .and_then(|()| fs::rename(&tmp, &path))
                .is_ok()
        });
        if !written {
            let _ = fs::remove_file(&tmp);
        }
    }

    /// Docker's `Size` of `image`: the sum of its layers' unpacked sizes. `known` is the
    /// cache as read once by the caller ([`Self::layer_sizes`]).
    pub fn unpacked_size(&self, image: &ImageInfo, known: &mut LayerSizes) -> u64 {
        image
            .manifest
            .layers()
            .iter()
            .map(|l| self.layer_size(l, known))
            .sum()
    }

    /// The unpacked size of one layer: from `known`, else measured from its blob (then
    /// added to `known` and recorded), else its compressed size.
    pub fn layer_size(&self, layer: &Descriptor, known: &mut LayerSizes) -> u64 {
        let key = layer.digest().to_string();
        if let Some(b) = known.get(&key) {
            return *b;
        }
        match self.measure(layer.digest()) {
            Some(b) => {
                known.insert(key, b);
                self.record_layer_sizes(&[(layer.digest().clone(), b)]);
                b
            }
            None => layer.size(),
        }
    }

    fn measure(&self, blob: &Digest) -> Option<u64> {
        let file = self.content.open_blob(blob).ok()?;
        crate::unpack::measure_layer(BufReader::with_capacity(1 << 20, file)).ok()
    }
}
