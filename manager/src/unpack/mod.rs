//! Layer extraction: one layer (a gzip, zstd or plain tar stream, told apart by its magic
//! bytes) applied onto a directory, streaming, while the uncompressed bytes are hashed into the
//! layer's diffID (image-spec config.md, `rootfs.diff_ids`).
//!
//! Whiteouts follow image-spec layer.md. A [`Whiteouts::Delete`] target is a full copy of the
//! lower layers, so `.wh.<name>` deletes `<name>` and `.wh..wh..opq` empties the directory of
//! what the lower layers put there. A [`Whiteouts::Overlay`] target is an empty upper directory
//! that overlayfs will stack on the lower layers, so the markers become what overlayfs reads
//! (Documentation/filesystems/overlayfs.rst): a 0/0 character device and the
//! `trusted.overlay.opaque=y` xattr.
//!
//! Every path is resolved inside the target (see `tree`): entries that climb out with `..`,
//! hardlinks to outside and paths through symlinks pointing outside are refused with an error
//! naming the entry; absolute entry names are taken relative to the root, as docker does.

mod apply;
pub mod image;
pub mod stream;
mod tree;

use std::io::{self, BufReader, Read};
use std::path::PathBuf;
use std::str::FromStr;

use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

pub use apply::Applied;
pub use image::{prune_snapshots, unpack_image, unpack_layer_from};

use crate::content::ContentError;
use crate::image::ImageError;
use crate::snapshot::SnapshotError;

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("opening extraction target {path}")]
    OpenTarget {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading layer stream")]
    Read {
        #[source]
        source: io::Error,
    },
    #[error("extracting {entry}")]
    Entry {
        entry: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("entry {entry} escapes the root with '..'")]
    Escape { entry: PathBuf },
    #[error("hardlink {entry} points outside the root (to {target})")]
    LinkEscape { entry: PathBuf, target: PathBuf },
    #[error(
        "entry {entry} goes through symlink {symlink} -> {target}, which points outside the root"
    )]
    SymlinkEscape {
        entry: PathBuf,
        symlink: PathBuf,
        target: PathBuf,
    },
    #[error("whiteout {entry} names no file (it would remove its own directory or parent)")]
    BadWhiteout { entry: PathBuf },
    #[error("entry {entry}: too many levels of symlinks")]
    SymlinkLoop { entry: PathBuf },
    #[error("entry {entry}: {component} is not a directory")]
    NotADirectory { entry: PathBuf, component: PathBuf },
    #[error("hardlink {entry}: target {target} does not exist in this layer or below")]
    LinkTarget {
        entry: PathBuf,
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unpacking in the user's namespace (owners shifted into its subordinate ids)")]
    InUserNamespace {
        #[source]
        source: io::Error,
    },
    #[error("entry {entry} has unsupported tar type {kind:?}")]
    Unsupported { entry: PathBuf, kind: u8 },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error("image {image} has {layers} layers but {diff_ids} diff IDs in its config")]
    LayerCount {
        image: String,
        layers: usize,
        diff_ids: usize,
    },
    #[error("layer {layer}: diff ID {expected} is not a valid sha256 digest")]
    BadDiffId { layer: String, expected: String },
    #[error(
        "layer {layer}: uncompressed content hashes to {actual}, but the config says {expected}"
    )]
    DiffIdMismatch {
        layer: String,
        expected: String,
        actual: String,
    },
    #[error("unpacking layer {layer}")]
    Layer {
        layer: String,
        #[source]
        source: Box<UnpackError>,
    },
    #[error("{error}; removing the partial snapshot {key} also failed: {cleanup}")]
    Cleanup {
        error: Box<UnpackError>,
        key: String,
        cleanup: Box<SnapshotError>,
    },
}

/// How whiteout markers are materialised (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// The target holds the lower layers' files: delete what the markers name.
    Delete,
    /// The target is an overlayfs upper layer: write overlayfs whiteouts.
    Overlay,
}

/// Where and how one layer is applied.
#[derive(Debug, Clone)]
pub struct Target {
    pub dir: PathBuf,
    pub whiteouts: Whiteouts,
    /// The layers below, topmost first. Overlay consults them for parent directories
    /// (metadata, symlinks) and hardlink targets that the stream does not carry; both backends
    /// take from them the mtimes of directories the layer changes without naming (for the copy
    /// backend, whose target already holds everything below, the parent snapshot's tree).
    pub lowers: Vec<PathBuf>,
}

/// Compression told by the first bytes of a blob (RFC 1952 gzip, RFC 8878 zstd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Applies one layer blob (compressed or not) read from `blob` onto `target`. Reads the blob
/// once, front to back, so it can be a download in progress; nothing is buffered beyond the
/// decoder's window.
pub fn apply_layer(mut blob: impl Read, target: &Target) -> Result<Applied, UnpackError> {
    if crate::rootless::userns::shifting() {
        // Owners shifted into the user's subordinate ranges: unpacked in its user namespace.
        let (diff_id, entries, bytes) = crate::rootless::userns::unpack(
            &mut blob,
            &target.dir,
            target.whiteouts == Whiteouts::Overlay,
            &target.lowers,
        )
        .map_err(|source| UnpackError::InUserNamespace { source })?;
        let diff_id = Digest::from_str(&diff_id).map_err(|_| UnpackError::InUserNamespace {
            source: io::Error::other(format!("the helper's diff ID {diff_id:?} is not a digest")),
        })?;
        return Ok(Applied {
            diff_id,
            entries,
            bytes,
        });
    }
    let decoded = decoder(blob)?;
    let mut hashed = HashReader {
        inner: decoded,
        hasher: Sha256::new(),
    };
    let (entries, bytes) = apply::apply_tar(&mut hashed, target)?;
    // The tar reader stops at the end-of-archive blocks; the diffID covers every byte.
    io::copy(&mut hashed, &mut io::sink()).map_err(|source| UnpackError::Read { source })?;
    Ok(Applied {
        diff_id: sha256_digest(&hex::encode(hashed.hasher.finalize())),
        entries,
        bytes,
    })
}

/// A layer blob's size as [`Applied::bytes`] counts it, read without unpacking (for layers
/// that were stored without passing through [`apply_layer`]: built, loaded, imported).
pub fn measure_layer(blob: impl Read) -> Result<u64, UnpackError> {
    let mut archive = tar::Archive::new(decoder(blob)?);
    let mut bytes = 0;
    for entry in archive
        .entries()
        .map_err(|source| UnpackError::Read { source })?
    {
        let entry = entry.map_err(|source| UnpackError::Read { source })?;
        bytes += apply::entry_bytes(&entry);
    }
    Ok(bytes)
}

/// The uncompressed stream of a layer blob, whatever its compression.
fn decoder<'a>(blob: impl Read + 'a) -> Result<Box<dyn Read + 'a>, UnpackError> {
    let (compression, stream) = detect(blob).map_err(|source| UnpackError::Read { source })?;
    Ok(match compression {
        Compression::None => Box::new(stream),
        // Several gzip members in one blob are legal (RFC 1952 2.2) and pigz makes them.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(stream)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(stream)
                .map_err(|source| UnpackError::Read { source })?,
        ),
    })
}

/// Peeks at the magic bytes and gives back a reader that still starts at byte 0.
fn detect<R: Read>(mut blob: R) -> io::Result<(Compression, impl Read)> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match blob.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let compression = if head[..n].starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else if head[..n].starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else {
        Compression::None
    };
    let prefix = io::Cursor::new(head[..n].to_vec());
    Ok((compression, BufReader::new(prefix.chain(blob))))
}

/// Hashes what passes through it.
struct HashReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Wraps the hex output of a sha256 hasher (always 64 lowercase hex digits).
pub(crate) fn sha256_digest(hex: &str) -> Digest {
    match oci_spec::image::Sha256Digest::from_str(hex) {
        Ok(d) => Digest::from(d),
        Err(_) => unreachable!("sha256 output is 64 lowercase hex digits"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_or_garbage_layers_fail_with_a_read_error() {
        let dir = tempfile::tempdir().unwrap();
        let target = Target {
            dir: dir.path().to_path_buf(),
            whiteouts: Whiteouts::Delete,
            lowers: Vec::new(),
        };
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5000);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, "f", &[1u8; 5000][..]).unwrap();
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::stream::encode_all(&tar[..], 3).unwrap();
        for (what, blob) in [
            ("tar", &tar[..2000]),
            ("gzip", &gz[..gz.len() / 2]),
            ("zstd", &zst[..zst.len() / 2]),
            ("gzip garbage", &[0x1f, 0x8b, 1, 2, 3, 4, 5][..]),
        ] {
            let err = apply_layer(blob, &target).unwrap_err();
            assert!(
                matches!(err, UnpackError::Read { .. } | UnpackError::Entry { .. }),
                "{what}: {err:?}"
            );
        }
    }

    #[test]
    fn magic_bytes_choose_the_decoder() {
        let (c, mut r) = detect(&[0x1f, 0x8b, 8, 0, 1][..]).unwrap();
        assert_eq!(c, Compression::Gzip);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, [0x1f, 0x8b, 8, 0, 1]);
        assert_eq!(detect(&ZSTD_MAGIC[..]).unwrap().0, Compression::Zstd);
        assert_eq!(detect(&b"ab"[..]).unwrap().0, Compression::None);
    }
}
