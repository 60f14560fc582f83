//! Image records (name → manifest digest) over the content store, name resolution, and
//! garbage collection of blobs no record reaches.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::image::{Digest, ImageConfiguration, ImageManifest};
use serde::{Deserialize, Serialize};

use crate::content::{ContentError, ContentStore};
use crate::lock::{FileLock, LockError};
use crate::manifest::{self, Kind, ManifestError};
use crate::reference::{Reference, ReferenceError};

mod sizes;

pub use sizes::LayerSizes;

const RECORDS_FILE: &str = "images.json";
const RECORDS_LOCK: &str = "images.lock";
const GC_LOCK: &str = "gc.lock";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("reading image records {path}")]
    ReadRecords {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("image records {path} are corrupt")]
    ParseRecords {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing image records {path}")]
    WriteRecords {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("No such image: {name}")]
    NotFound { name: String },
    #[error("image {name} is an index, not an image manifest")]
    NotAnImage { name: String },
    #[error("parsing config {digest} of image {name}")]
    Config {
        name: String,
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("removing stale ingest {path}")]
    RemoveIngest {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

type Result<T, E = ImageError> = std::result::Result<T, E>;

/// One image name (or an unnamed image) and the image manifest it points at.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    /// `registry/repository:tag` or `registry/repository@digest`; `None` for unnamed images.
    pub name: Option<String>,
    /// Digest of the image manifest (never an index).
    pub digest: Digest,
    pub media_type: String,
    /// The index the manifest was selected from, when pulled through one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<Digest>,
    /// The digest this name's repository knows the image by (`repo@digest`, docker's
    /// RepoDigests): set by a pull (the index or manifest pulled) and a push (the manifest
    /// pushed); `None` for a name only given locally (build, load, tag, commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_digest: Option<Digest>,
    /// Seconds since the epoch when the record was written.
    pub added: u64,
}

impl ImageRecord {
    pub fn new(name: Option<&Reference>, digest: Digest, media_type: &str) -> Self {
        Self {
            name: name.map(Reference::to_string),
            digest,
            media_type: media_type.to_string(),
            index_digest: None,
            repo_digest: None,
            added: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    pub fn reference(&self) -> Option<Reference> {
        self.name.as_deref().and_then(|n| Reference::parse(n).ok())
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RecordsFile {
    images: Vec<ImageRecord>,
}

/// A parsed image: manifest and config.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub manifest: ImageManifest,
    pub manifest_size: u64,
    pub config: ImageConfiguration,
    pub config_digest: Digest,
    /// Config plus layers as stored (compressed).
    pub size: u64,
}

impl ImageInfo {
    /// Docker's image ID: the config digest.
    pub fn id(&self) -> &Digest {
        &self.config_digest
    }

    /// Every blob this image needs besides its manifest.
    pub fn blobs(&self) -> impl Iterator<Item = &Digest> {
        std::iter::once(self.manifest.config().digest())
            .chain(self.manifest.layers().iter().map(|l| l.digest()))
    }
}

#[derive(Debug, Default)]
pub struct GcReport {
    pub deleted: Vec<Digest>,
    pub reclaimed: u64,
}

/// The image store rooted at `--root`.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
    content: ContentStore,
}

impl ImageStore {
    pub fn open(root: &Path) -> Result<Self> {
        Ok(Self {
            root: root.to_path_buf(),
            content: ContentStore::open(root)?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// Held by operations that add blobs until their record is written (see `lock`).
    pub fn adding(&self) -> Result<FileLock> {
        Ok(FileLock::shared(&self.root.join(GC_LOCK))?)
    }

    pub fn records(&self) -> Result<Vec<ImageRecord>> {
        let _lock = FileLock::shared(&self.root.join(RECORDS_LOCK))?;
        self.read_records()
    }

    fn read_records(&self) -> Result<Vec<ImageRecord>> {
        let path = self.root.join(RECORDS_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<RecordsFile>(&bytes)
                .map(|f| f.images)
                .map_err(|source| ImageError::ParseRecords { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(ImageError::ReadRecords { path, source }),
        }
    }

    /// Read-modify-write of the records under the exclusive records lock; the file is
    /// replaced atomically.
    pub fn update<R>(&self, f: impl FnOnce(&mut Vec<ImageRecord>) -> R) -> Result<R> {
        let _lock = FileLock::exclusive(&self.root.join(RECORDS_LOCK))?;
        let mut records = self.read_records()?;
        let out = f(&mut records);
        let path = self.root.join(RECORDS_FILE);
        let tmp = self
            .root
            .join(format!("{RECORDS_FILE}.tmp-{}", std::process::id()));
        let bytes =
            serde_json::to_vec_pretty(&RecordsFile { images: records }).map_err(|source| {
                ImageError::ParseRecords {
                    path: path.clone(),
                    source,
                }
            })?;
        fs::write(&tmp, bytes)
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|source| ImageError::WriteRecords { path, source })?;
        Ok(out)
    }

    /// Adds or replaces the record with the same name (unnamed: same digest).
    pub fn put(&self, record: ImageRecord) -> Result<()> {
        self.update(|records| {
            records.retain(|r| match (&r.name, &record.name) {
                (Some(a), Some(b)) => a != b,
                (None, None) => r.digest != record.digest,
                _ => true,
            });
            // A name given to an unnamed image replaces the unnamed record.
            if record.name.is_some() {
                records.retain(|r| !(r.name.is_none() && r.digest == record.digest));
            }
            records.push(record);
        })
    }

    /// Records that the image `name` points at is known to its registry by `digest` (a
    /// push); other names of the same repository and image keep theirs.
    pub fn set_repo_digest(&self, name: &str, digest: &Digest) -> Result<()> {
        self.update(|records| {
            for r in records.iter_mut() {
                if r.name.as_deref() == Some(name) {
                    r.repo_digest = Some(digest.clone());
                }
            }
        })
    }

    /// Resolves what a user typed: a name (`busybox`, `host/x:tag`, `x@sha256:..`), a full
    /// image ID or manifest digest, or a unique ID prefix. Returns every matching record.
    pub fn lookup(&self, what: &str) -> Result<Vec<ImageRecord>> {
        let records = self.records()?;
        if let Ok(r) = Reference::parse(what) {
            let name = r.to_string();
            let hits: Vec<_> = records
                .iter()
                .filter(|rec| rec.name.as_deref() == Some(name.as_str()))
                .cloned()
                .collect();
            if !hits.is_empty() {
                return Ok(hits);
            }
        }
        let hex = what.strip_prefix("sha256:").unwrap_or(what);
        if hex.len() >= 3 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut hits = Vec::new();
            for rec in &records {
                let id = self
                    .image(rec)
                    .map(|i| i.config_digest.digest().to_string());
                if rec.digest.digest().starts_with(hex) || id.is_ok_and(|id| id.starts_with(hex)) {
                    hits.push(rec.clone());
                }
            }
            if !hits.is_empty() {
                return Ok(hits);
            }
        }
        Err(ImageError::NotFound {
            name: what.to_string(),
        })
    }

    /// Parses the manifest and config of a record.
    pub fn image(&self, record: &ImageRecord) -> Result<ImageInfo> {
        let name = record
            .name
            .clone()
            .unwrap_or_else(|| record.digest.to_string());
        let bytes = self.content.read_metadata(&record.digest)?;
        let (kind, _) = manifest::classify(&name, Some(&record.media_type), &bytes)?;
        if kind != Kind::Image {
            return Err(ImageError::NotAnImage { name });
        }
        let manifest = manifest::parse_image(&name, &bytes)?;
        let config_digest = manifest.config().digest().clone();
        let config_bytes = self.content.read_metadata(&config_digest)?;
        let config =
            serde_json::from_slice(&config_bytes).map_err(|source| ImageError::Config {
                name: name.clone(),
                digest: config_digest.clone(),
                source,
            })?;
        let size =
            config_bytes.len() as u64 + manifest.layers().iter().map(|l| l.size()).sum::<u64>();
        Ok(ImageInfo {
            manifest,
            manifest_size: bytes.len() as u64,
            config,
            config_digest,
            size,
        })
    }

    /// Deletes every blob no record reaches (only among `candidates` when given), and stale
    /// ingests when `ingests` is set. Waits for running pulls and loads to finish first.
    pub fn gc(&self, candidates: Option<&[Digest]>, ingests: bool) -> Result<GcReport> {
        let _gc = FileLock::exclusive(&self.root.join(GC_LOCK))?;
        let mut live: HashSet<Digest> = HashSet::new();
        for rec in self.records()? {
            live.insert(rec.digest.clone());
            if let Some(i) = &rec.index_digest {
                live.insert(i.clone());
            }
            if let Ok(info) = self.image(&rec) {
                live.extend(info.blobs().cloned());
            } else if let Ok(bytes) = self.content.read_metadata(&rec.digest) {
                // A record whose config is missing still protects what its manifest names.
                if let Ok(m) = manifest::parse_image("", &bytes) {
                    live.insert(m.config().digest().clone());
                    live.extend(m.layers().iter().map(|l| l.digest().clone()));
                }
            }
        }
        let all = match candidates {
            Some(c) => c.to_vec(),
            None => self.content.list()?,
        };
        let mut report = GcReport::default();
        for d in all {
            if live.contains(&d) {
                continue;
            }
            if let Some(size) = self.content.delete(&d)? {
                report.reclaimed += size;
                report.deleted.push(d);
            }
        }
        self.forget_layer_sizes(&report.deleted);
        if ingests {
            // Holding the exclusive gc lock means no pull is running: every ingest is stale.
            for path in self.content.ingests() {
                let size = fs::metadata(&path).map_or(0, |m| m.len());
                fs::remove_file(&path)
                    .map_err(|source| ImageError::RemoveIngest { path, source })?;
                report.reclaimed += size;
            }
        }
        Ok(report)
    }
}

/// Parses `sha256:<hex>` or a bare hex string into a digest.
pub fn parse_digest(s: &str) -> Option<Digest> {
    let full = if s.contains(':') {
        s.to_string()
    } else {
        format!("sha256:{s}")
    };
    Digest::from_str(&full).ok()
}
