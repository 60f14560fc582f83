//! The content store: blobs addressed by digest under `blobs/sha256/<hex>`, written through
//! `ingest/` and renamed into place only after their size and digest were verified, so a blob
//! that is visible is always complete and correct. Unfinished ingests keyed by their expected
//! digest stay behind after a network failure so that the next attempt resumes them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use oci_spec::image::{Digest, DigestAlgorithm};
use sha2::{Digest as _, Sha256};

use crate::lock;

/// Manifests and configs are read whole; nothing legitimate comes near this size.
pub const MAX_METADATA_SIZE: u64 = 32 << 20;
const WRITE_BUFFER: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("creating store directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob {digest} is not in the store")]
    NotFound { digest: Digest },
    #[error("reading blob {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("committing blob {digest} to {path}")]
    Commit {
        digest: Digest,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("digest mismatch for blob {expected}: content hashes to sha256:{actual}")]
    DigestMismatch { expected: Digest, actual: String },
    #[error("size mismatch for blob {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {digest} is {size} bytes, more than the {limit}-byte limit for metadata")]
    TooLarge {
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("unsupported digest algorithm in {digest} (only sha256)")]
    Algorithm { digest: Digest },
    #[error("removing blob {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

type Result<T, E = ContentError> = std::result::Result<T, E>;

/// Root of the blob store (`<root>/blobs/sha256`, `<root>/ingest`).
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    pub fn open(root: &Path) -> Result<Self> {
        let store = Self {
            blobs: root.join("blobs").join("sha256"),
            ingest: root.join("ingest"),
        };
        for dir in [&store.blobs, &store.ingest] {
            fs::create_dir_all(dir).map_err(|source| ContentError::CreateDir {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(store)
    }

    /// Where the ingest of `digest` is written while it downloads (`ingest/sha256-<hex>`).
    pub fn ingest_path(&self, digest: &Digest) -> PathBuf {
        self.ingest.join(format!("sha256-{}", digest.digest()))
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.digest())
    }

    /// The size of a committed blob, or `None` when it is absent.
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.blob_path(digest)).ok().map(|m| m.len())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.size(digest).is_some()
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => ContentError::NotFound {
                digest: digest.clone(),
            },
            _ => ContentError::Read { path, source },
        })
    }

    /// Reads a small blob (manifest, config, index) whole.
    pub fn read_metadata(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let mut file = self.open_blob(digest)?;
        let size = file
            .metadata()
            .map_err(|source| ContentError::Read {
                path: path.clone(),
                source,
            })?
            .len();
        if size > MAX_METADATA_SIZE {
            return Err(ContentError::TooLarge {
                digest: digest.clone(),
                size,
                limit: MAX_METADATA_SIZE,
            });
        }
        let mut buf = Vec::with_capacity(size as usize);
        file.read_to_end(&mut buf)
            .map_err(|source| ContentError::Read { path, source })?;
        Ok(buf)
    }

    /// Stores bytes already in memory (manifests), checking them against `expected`.
    pub fn write_bytes(&self, expected: &Digest, bytes: &[u8]) -> Result<()> {
        if self.contains(expected) {
            return Ok(());
        }
        let mut ingest = self.ingest_unknown()?;
        ingest.write(bytes)?;
        ingest.commit_expecting(expected, Some(bytes.len() as u64))?;
        Ok(())
    }

    /// Starts (or resumes) the ingest of a blob whose digest is known. Waits while another
    /// process ingests the same blob; returns `None` when the blob is (or became) present.
    pub async fn ingest(&self, expected: &Digest) -> Result<Option<Ingest>> {
        if *expected.algorithm() != DigestAlgorithm::Sha256 {
            return Err(ContentError::Algorithm {
                digest: expected.clone(),
            });
        }
        let path = self.ingest_path(expected);
        loop {
            if self.contains(expected) {
                return Ok(None);
            }
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|source| ContentError::Write {
                    path: path.clone(),
                    source,
                })?;
            let locked = lock::try_lock_exclusive(&file).map_err(|source| ContentError::Write {
                path: path.clone(),
                source,
            })?;
            if !locked {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            // The previous holder may have committed (renamed our inode away) meanwhile.
            if self.contains(expected) {
                return Ok(None);
            }
            return Ingest::resume(file, path, self.blobs.clone(), Some(expected.clone()))
                .map(Some);
        }
    }

    /// Starts an ingest whose digest is learnt from the content (`load`).
    pub fn ingest_unknown(&self) -> Result<Ingest> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self.ingest.join(format!("tmp-{}-{n}", std::process::id()));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| ContentError::Write {
                path: path.clone(),
                source,
            })?;
        Ingest::resume(file, path, self.blobs.clone(), None)
    }

    /// Every committed blob.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let entries = fs::read_dir(&self.blobs).map_err(|source| ContentError::Read {
            path: self.blobs.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| ContentError::Read {
                path: self.blobs.clone(),
                source,
            })?;
            if let Some(name) = entry.file_name().to_str() {
                if let Ok(d) = Digest::from_str(&format!("sha256:{name}")) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Removes a committed blob; returns its size, or `None` if it was already gone.
    pub fn delete(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.blob_path(digest);
        let size = self.size(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(size),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ContentError::Remove { path, source }),
        }
    }

    /// Deletes the unfinished ingest of `digest` unless another process is writing it.
    pub fn discard_ingest(&self, digest: &Digest) -> Result<()> {
        let path = self.ingest.join(format!("sha256-{}", digest.digest()));
        let file = match OpenOptions::new().write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(ContentError::Remove { path, source }),
        };
        let ours = lock::try_lock_exclusive(&file).map_err(|source| ContentError::Remove {
            path: path.clone(),
            source,
        })?;
        if ours {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(ContentError::Remove { path, source }),
            }
        }
        Ok(())
    }

    /// Paths of unfinished ingests (for tests and `prune`).
    pub fn ingests(&self) -> Vec<PathBuf> {
        fs::read_dir(&self.ingest)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    }
}

/// An in-progress blob write: data is hashed as it is written, and `commit` verifies it.
#[derive(Debug)]
pub struct Ingest {
    writer: BufWriter<File>,
    path: PathBuf,
    blobs: PathBuf,
    expected: Option<Digest>,
    hasher: Sha256,
    written: u64,
}

impl Ingest {
    /// Opens a locked ingest file, re-hashing whatever an earlier attempt left in it.
    fn resume(
        mut file: File,
        path: PathBuf,
        blobs: PathBuf,
        expected: Option<Digest>,
    ) -> Result<Self> {
        let mut hasher = Sha256::new();
        let io_err = |source| ContentError::Write {
            path: path.clone(),
            source,
        };
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let written = io::copy(&mut (&file), &mut HashWriter(&mut hasher)).map_err(io_err)?;
        file.seek(SeekFrom::End(0)).map_err(io_err)?;
        Ok(Self {
            writer: BufWriter::with_capacity(WRITE_BUFFER, file),
            path,
            blobs,
            expected,
            hasher,
            written,
        })
    }

    /// Bytes already written (the offset to resume a download from).
    pub fn offset(&self) -> u64 {
        self.written
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&mut self, buf: &[u8]) -> Result<()> {
        self.hasher.update(buf);
        self.written += buf.len() as u64;
        self.writer
            .write_all(buf)
            .map_err(|source| ContentError::Write {
                path: self.path.clone(),
                source,
            })
    }

    /// Makes buffered data durable in the ingest file (before a retry measures the offset).
    pub fn flush(&mut self) -> Result<()> {
        self.writer.flush().map_err(|source| ContentError::Write {
            path: self.path.clone(),
            source,
        })
    }

    /// Throws away what was written (the server ignored our Range request).
    pub fn reset(&mut self) -> Result<()> {
        self.flush()?;
        let file = self.writer.get_mut();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
            .map_err(|source| ContentError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.hasher = Sha256::new();
        self.written = 0;
        Ok(())
    }

    /// Verifies size and digest against what the ingest was opened for and moves the blob
    /// into place. On a mismatch the ingest is deleted: its content is wrong, not partial.
    pub fn commit(self, size: Option<u64>) -> Result<Digest> {
        let expected = self.expected.clone();
        match expected {
            Some(d) => self.commit_expecting(&d, size),
            None => self.commit_as_computed(),
        }
    }

    /// Commits under `expected`, failing (and deleting the ingest) when the content differs.
    pub fn commit_expecting(mut self, expected: &Digest, size: Option<u64>) -> Result<Digest> {
        self.flush()?;
        if let Some(size) = size {
            if size != self.written {
                let written = self.written;
                self.abort();
                return Err(ContentError::SizeMismatch {
                    digest: expected.clone(),
                    expected: size,
                    actual: written,
                });
            }
        }
        let actual = hex::encode(self.hasher.clone().finalize());
        if actual != expected.digest() {
            self.abort();
            return Err(ContentError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        self.place(expected.clone())
    }

    fn commit_as_computed(mut self) -> Result<Digest> {
        self.flush()?;
        let digest = digest_from_hex(hex::encode(self.hasher.clone().finalize()));
        self.place(digest)
    }

    fn place(self, digest: Digest) -> Result<Digest> {
        let target = self.blobs.join(digest.digest());
        let file = self.writer.get_ref();
        // fsync before rename: after a crash a visible blob must never be short.
        file.sync_data().map_err(|source| ContentError::Commit {
            digest: digest.clone(),
            path: target.clone(),
            source,
        })?;
        fs::rename(&self.path, &target).map_err(|source| ContentError::Commit {
            digest: digest.clone(),
            path: target.clone(),
            source,
        })?;
        Ok(digest)
    }

    /// Deletes the ingest file.
    pub fn abort(self) {
        // Best effort: a leftover ingest file is harmless and removed by `image prune`.
        let _ = fs::remove_file(&self.path);
    }
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The sha256 digest of bytes in memory.
pub fn sha256_of(bytes: &[u8]) -> Digest {
    digest_from_hex(hex::encode(Sha256::digest(bytes)))
}

/// Wraps the hex output of a sha256 hasher; it is always 64 lowercase hex digits, so the
/// parse cannot fail.
fn digest_from_hex(hex: String) -> Digest {
    match oci_spec::image::Sha256Digest::from_str(&hex) {
        Ok(d) => Digest::from(d),
        Err(_) => unreachable!("sha256 output is 64 lowercase hex digits"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn verified_blob_becomes_visible_only_after_commit() {
        let (_dir, store) = store();
        let d = sha256_of(b"hello");
        let mut ing = store.ingest(&d).await.unwrap().unwrap();
        ing.write(b"hel").unwrap();
        assert!(!store.contains(&d));
        ing.write(b"lo").unwrap();
        assert_eq!(ing.commit(Some(5)).unwrap(), d);
        assert_eq!(store.read_metadata(&d).unwrap(), b"hello");
        assert!(store.ingests().is_empty());
        assert!(store.ingest(&d).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn digest_mismatch_is_rejected_and_leaves_nothing() {
        let (_dir, store) = store();
        let d = sha256_of(b"hello");
        let mut ing = store.ingest(&d).await.unwrap().unwrap();
        ing.write(b"HELLO").unwrap();
        let err = ing.commit(Some(5)).unwrap_err();
        assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
        assert!(!store.contains(&d));
        assert!(store.ingests().is_empty());
    }

    #[tokio::test]
    async fn size_mismatch_is_rejected() {
        let (_dir, store) = store();
        let d = sha256_of(b"hello");
        let mut ing = store.ingest(&d).await.unwrap().unwrap();
        ing.write(b"hello").unwrap();
        let err = ing.commit(Some(6)).unwrap_err();
        assert!(matches!(err, ContentError::SizeMismatch { .. }), "{err}");
        assert!(!store.contains(&d));
    }

    #[tokio::test]
    async fn partial_ingest_resumes_from_its_offset() {
        let (_dir, store) = store();
        let d = sha256_of(b"hello world");
        let mut ing = store.ingest(&d).await.unwrap().unwrap();
        ing.write(b"hello ").unwrap();
        ing.flush().unwrap();
        drop(ing);
        let mut ing = store.ingest(&d).await.unwrap().unwrap();
        assert_eq!(ing.offset(), 6);
        ing.write(b"world").unwrap();
        ing.commit(Some(11)).unwrap();
        assert!(store.contains(&d));
    }

    #[tokio::test]
    async fn reset_discards_partial_data() {
        let (_dir, store) = store();
        let d = sha256_of(b"abc");
        let mut ing = store.ingest(&d).await.unwrap().unwrap();
        ing.write(b"zz").unwrap();
        ing.reset().unwrap();
        ing.write(b"abc").unwrap();
        ing.commit(Some(3)).unwrap();
        assert_eq!(store.read_metadata(&d).unwrap(), b"abc");
    }

    #[test]
    fn unknown_digest_ingest_commits_under_its_hash_and_delete_removes() {
        let (_dir, store) = store();
        let mut ing = store.ingest_unknown().unwrap();
        ing.write(b"data").unwrap();
        let d = ing.commit(None).unwrap();
        assert_eq!(d, sha256_of(b"data"));
        assert_eq!(store.list().unwrap(), vec![d.clone()]);
        assert_eq!(store.delete(&d).unwrap(), Some(4));
        assert_eq!(store.delete(&d).unwrap(), None);
    }
}
