//! Bookkeeping shared by the backends: which snapshots exist, their kind and parent, and the
//! numbered directory each one owns. Every change is a read-modify-write of `metadata.json`
//! under the exclusive `metadata.lock` (flock(2), see `lock`), and the file is replaced by
//! rename(2), so concurrent berth processes see either the old or the new state. Directories
//! are numbered rather than named by key so that overlay's lowerdir list stays short (mount
//! options are limited to one page).
//!
//! A layer being unpacked is an *active* snapshot under a temporary key; it becomes visible
//! under its ChainID only at commit, which is one metadata rename, so a half-unpacked layer is
//! never mistaken for a complete one.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Info, Kind, Result, SnapshotError, Usage};
use crate::lock::FileLock;

const META_FILE: &str = "metadata.json";
const META_LOCK: &str = "metadata.lock";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Record {
    pub id: u64,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Meta {
    next_id: u64,
    snapshots: BTreeMap<String, Record>,
}

#[derive(Debug, Clone)]
pub(super) struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Self> {
        let snaps = dir.join("snapshots");
        fs::create_dir_all(&snaps).map_err(|source| SnapshotError::CreateDir {
            path: snaps.clone(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory owned by snapshot `id`.
    pub fn snapshot_dir(&self, id: u64) -> PathBuf {
        self.dir.join("snapshots").join(id.to_string())
    }

    fn lock(&self) -> Result<FileLock> {
        Ok(FileLock::exclusive(&self.dir.join(META_LOCK))?)
    }

    fn read(&self) -> Result<Meta> {
        let path = self.dir.join(META_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| SnapshotError::ParseMeta { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Meta {
                next_id: 1,
                ..Meta::default()
            }),
            Err(source) => Err(SnapshotError::ReadMeta { path, source }),
        }
    }

    fn write(&self, meta: &Meta) -> Result<()> {
        let path = self.dir.join(META_FILE);
        let tmp = self
            .dir
            .join(format!("{META_FILE}.tmp-{}", std::process::id()));
        let bytes = serde_json::to_vec_pretty(meta).map_err(|source| SnapshotError::ParseMeta {
            path: path.clone(),
            source,
        })?;
        fs::write(&tmp, bytes)
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|source| SnapshotError::WriteMeta { path, source })
    }

    /// Records a new snapshot and makes its directory with `subdirs` inside.
    pub fn create(
        &self,
        key: &str,
        parent: Option<&str>,
        kind: Kind,
        subdirs: &[&str],
    ) -> Result<Record> {
        let _lock = self.lock()?;
        let mut meta = self.read()?;
        if meta.snapshots.contains_key(key) {
            return Err(SnapshotError::AlreadyExists {
                key: key.to_string(),
            });
        }
        if let Some(p) = parent {
            let rec = meta
                .snapshots
                .get(p)
                .ok_or_else(|| SnapshotError::NotFound { key: p.to_string() })?;
            if rec.kind != Kind::Committed {
                return Err(SnapshotError::WrongKind {
                    key: p.to_string(),
                    expected: Kind::Committed,
                    actual: rec.kind,
                });
            }
        }
        let id = meta.next_id.max(1);
        meta.next_id = id + 1;
        let dir = self.snapshot_dir(id);
        // A directory left by a crash between mkdir and the metadata write is stale.
        let _ = crate::rootless::userns::remove_tree(&dir);
        for sub in std::iter::once(&"").chain(subdirs) {
            let p = dir.join(sub);
            fs::create_dir_all(&p)
                .map_err(|source| SnapshotError::CreateDir { path: p, source })?;
        }
        let rec = Record {
            id,
            kind,
            parent: parent.map(str::to_string),
        };
        meta.snapshots.insert(key.to_string(), rec.clone());
        if let Err(e) = self.write(&meta) {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(rec)
    }

    pub fn commit(&self, name: &str, active: &str) -> Result<()> {
        let _lock = self.lock()?;
        let mut meta = self.read()?;
        if meta.snapshots.contains_key(name) {
            return Err(SnapshotError::AlreadyExists {
                key: name.to_string(),
            });
        }
        let mut rec = meta
            .snapshots
            .remove(active)
            .ok_or_else(|| SnapshotError::NotFound {
                key: active.to_string(),
            })?;
        if rec.kind != Kind::Active {
            return Err(SnapshotError::WrongKind {
                key: active.to_string(),
                expected: Kind::Active,
                actual: rec.kind,
            });
        }
        rec.kind = Kind::Committed;
        meta.snapshots.insert(name.to_string(), rec);
        self.write(&meta)
    }

    /// Forgets a snapshot nobody builds on, then deletes its directory (outside the lock: it
    /// was renamed out of the numbered namespace first, so nothing can find it meanwhile).
    pub fn remove(&self, key: &str) -> Result<()> {
        let doomed = {
            let _lock = self.lock()?;
            let mut meta = self.read()?;
            if let Some((child, _)) = meta
                .snapshots
                .iter()
                .find(|(_, r)| r.parent.as_deref() == Some(key))
            {
                return Err(SnapshotError::InUse {
                    key: key.to_string(),
                    child: child.clone(),
                });
            }
            let rec = meta
                .snapshots
                .remove(key)
                .ok_or_else(|| SnapshotError::NotFound {
                    key: key.to_string(),
                })?;
            let dir = self.snapshot_dir(rec.id);
            let doomed = self.dir.join(format!("removing-{}", rec.id));
            match fs::rename(&dir, &doomed) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(SnapshotError::RemoveDir { path: dir, source }),
            }
            self.write(&meta)?;
            doomed
        };
        match crate::rootless::userns::remove_tree(&doomed) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SnapshotError::RemoveDir {
                path: doomed,
                source,
            }),
        }
    }

    pub fn get(&self, key: &str) -> Result<Record> {
        let _lock = self.lock()?;
        self.read()?
            .snapshots
            .get(key)
            .cloned()
            .ok_or_else(|| SnapshotError::NotFound {
                key: key.to_string(),
            })
    }

    /// `key`'s record followed by its ancestors', nearest first.
    pub fn chain(&self, key: &str) -> Result<Vec<Record>> {
        let _lock = self.lock()?;
        let meta = self.read()?;
        let mut out: Vec<Record> = Vec::new();
        let mut next = Some(key.to_string());
        while let Some(k) = next {
            let rec = meta
                .snapshots
                .get(&k)
                .cloned()
                .ok_or(SnapshotError::NotFound { key: k })?;
            next = rec.parent.clone();
            out.push(rec);
        }
        Ok(out)
    }

    pub fn list(&self) -> Result<Vec<Info>> {
        let _lock = self.lock()?;
        Ok(self
            .read()?
            .snapshots
            .into_iter()
            .map(|(key, r)| Info {
                key,
                kind: r.kind,
                parent: r.parent,
            })
            .collect())
    }

    pub fn info(&self, key: &str) -> Result<Info> {
        let r = self.get(key)?;
        Ok(Info {
            key: key.to_string(),
            kind: r.kind,
            parent: r.parent,
        })
    }

    pub fn usage(&self, key: &str) -> Result<Usage> {
        let dir = self.snapshot_dir(self.get(key)?.id);
        let mut usage = Usage::default();
        let mut seen = HashSet::new();
        du(&dir, &mut usage, &mut seen).map_err(|source| SnapshotError::Usage {
            key: key.to_string(),
            path: dir.clone(),
            source,
        })?;
        Ok(usage)
    }
}

/// Allocated bytes (st_blocks, stat(2): 512-byte units) and inodes, each hardlinked inode once.
fn du(path: &Path, usage: &mut Usage, seen: &mut HashSet<(u64, u64)>) -> io::Result<()> {
    let md = fs::symlink_metadata(path)?;
    if seen.insert((md.dev(), md.ino())) {
        usage.bytes += md.blocks() * 512;
        usage.inodes += 1;
    }
    if md.is_dir() {
        for e in fs::read_dir(path)? {
            du(&e?.path(), usage, seen)?;
        }
    }
    Ok(())
}
