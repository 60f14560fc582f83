//! Container records on disk: `<root>/containers/<id>/container.json`, one directory per
//! container (its bundle, logs and sockets live there too).
//!
//! Two locks keep concurrent `berth` commands safe: `containers/names.lock` serialises the
//! commands that add, rename or remove containers (so a name is taken once), and each
//! container's `lock` file guards every read-modify-write of its record.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::record::Record;
use super::ContainerError;
use crate::lock::FileLock;

type Result<T, E = ContainerError> = std::result::Result<T, E>;

const RECORD: &str = "container.json";

/// The directory of container records.
#[derive(Debug, Clone)]
pub struct ContainerStore {
    dir: PathBuf,
}

impl ContainerStore {
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("containers");
        fs::create_dir_all(&dir).map_err(|source| ContainerError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    /// The storage root the store is under.
    pub fn root(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    /// The directory of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Held while containers are added, renamed or removed.
    pub fn names_lock(&self) -> Result<FileLock> {
        Ok(FileLock::exclusive(&self.dir.join("names.lock"))?)
    }

    /// Held for a read-modify-write of one record.
    pub fn lock(&self, id: &str) -> Result<FileLock> {
        Ok(FileLock::exclusive(&self.dir(id).join("lock"))?)
    }

    /// Writes a new container's record; the caller holds the names lock and has checked the
    /// name is free.
    pub fn insert(&self, record: &Record) -> Result<()> {
        let dir = self.dir(&record.id);
        fs::create_dir(&dir).map_err(|source| ContainerError::Io {
            path: dir.clone(),
            source,
        })?;
        self.save(record)
    }

    /// Rewrites a record atomically (the caller holds its lock).
    pub fn save(&self, record: &Record) -> Result<()> {
        let path = self.dir(&record.id).join(RECORD);
        let tmp = self.dir(&record.id).join(".container.json.tmp");
        let bytes = serde_json::to_vec_pretty(record).map_err(ContainerError::Encode)?;
        let write = || -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_data()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|source| ContainerError::Io { path, source })
    }

    /// Reads one record by full id.
    pub fn load(&self, id: &str) -> Result<Record> {
        let path = self.dir(id).join(RECORD);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ContainerError::NotFound {
                    what: id.to_string(),
                })
            }
            Err(source) => return Err(ContainerError::Io { path, source }),
        };
        serde_json::from_slice(&bytes).map_err(|source| ContainerError::Decode { path, source })
    }

    /// Loads, changes and saves a record under its lock; returns the saved record.
    pub fn update(&self, id: &str, f: impl FnOnce(&mut Record)) -> Result<Record> {
        let _lock = self.lock(id)?;
        let mut record = self.load(id)?;
        f(&mut record);
        self.save(&record)?;
        Ok(record)
    }

    /// Every container, oldest first. Directories without a record (a create that died
    /// half-way, a removal in progress) are skipped.
    pub fn list(&self) -> Result<Vec<Record>> {
        let rd = fs::read_dir(&self.dir).map_err(|source| ContainerError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|source| ContainerError::Io {
                path: self.dir.clone(),
                source,
            })?;
            if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let id = entry.file_name().to_string_lossy().into_owned();
            match self.load(&id) {
                Ok(r) => out.push(r),
                Err(ContainerError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Finds a container by name (with or without docker's leading `/`), full id or unique id
    /// prefix, as docker resolves them: an exact name or id wins over a prefix.
    pub fn find(&self, what: &str) -> Result<Record> {
        let all = self.list()?;
        let name = what.strip_prefix('/').unwrap_or(what);
        if let Some(r) = all.iter().find(|r| r.id == what || r.name == name) {
            return Ok(r.clone());
        }
        let hits: Vec<&Record> = if what.is_empty() {
            Vec::new()
        } else {
            all.iter().filter(|r| r.id.starts_with(what)).collect()
        };
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ContainerError::NotFound {
                what: what.to_string(),
            }),
            _ => Err(ContainerError::Ambiguous {
                what: what.to_string(),
            }),
        }
    }

    /// Removes a container's directory (records, bundle, logs); the caller has torn down
    /// mounts and processes.
    pub fn remove_dir(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ContainerError::Io { path: dir, source }),
        }
    }
}

/// Which containers use which named volumes: volume name → container names. `volume rm`
/// refuses to remove a volume in this map.
pub fn volume_users(root: &Path) -> Result<HashMap<String, Vec<String>>> {
    let mut users: HashMap<String, Vec<String>> = HashMap::new();
    for r in ContainerStore::open(root)?.list()? {
        for m in &r.config.mounts {
            if m.kind == "volume" && !m.name.is_empty() {
                users
                    .entry(m.name.clone())
                    .or_default()
                    .push(r.name.clone());
            }
        }
    }
    Ok(users)
}

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::record::{Config, State};

    fn record(id: &str, name: &str, created: &str) -> Record {
        Record {
            id: id.into(),
            name: name.into(),
            created: created.into(),
            image: "busybox".into(),
            image_id: "sha256:00".into(),
            snapshotter: "overlay".into(),
            networks: Default::default(),
            config: Config::default(),
            state: State::default(),
        }
    }

    #[test]
    fn find_prefers_exact_names_and_ids_then_unique_prefixes() {
        let tmp = tempfile::tempdir().unwrap();
        let s = ContainerStore::open(tmp.path()).unwrap();
        s.insert(&record("abc111", "web", "1")).unwrap();
        s.insert(&record("abc222", "abc1", "2")).unwrap();
        assert_eq!(s.find("web").unwrap().id, "abc111");
        assert_eq!(s.find("/web").unwrap().id, "abc111");
        // "abc1" is a name: the exact name wins over the id prefix.
        assert_eq!(s.find("abc1").unwrap().id, "abc222");
        assert_eq!(s.find("abc2").unwrap().id, "abc222");
        assert!(matches!(
            s.find("abc"),
            Err(ContainerError::Ambiguous { .. })
        ));
        assert!(matches!(
            s.find("zzz"),
            Err(ContainerError::NotFound { .. })
        ));
        assert!(matches!(s.find(""), Err(ContainerError::NotFound { .. })));
        let names: Vec<_> = s.list().unwrap().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["web", "abc1"]);
    }

    #[test]
    fn update_rewrites_the_record_and_list_skips_half_made_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let s = ContainerStore::open(tmp.path()).unwrap();
        s.insert(&record("a1", "one", "1")).unwrap();
        fs::create_dir(s.dir("half")).unwrap();
        let r = s.update("a1", |r| r.state.exit_code = 3).unwrap();
        assert_eq!(r.state.exit_code, 3);
        assert_eq!(s.load("a1").unwrap().state.exit_code, 3);
        assert_eq!(s.list().unwrap().len(), 1);
        s.remove_dir("a1").unwrap();
        s.remove_dir("a1").unwrap();
        assert!(s.list().unwrap().is_empty());
    }

    #[test]
    fn names_follow_dockers_rule() {
        for ok in ["web", "a1", "my_app.v2-x", "0x"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "a", "-x", "_x", "a b", "a/b", "é1"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
