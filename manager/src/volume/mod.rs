//! Named volumes with docker's `local` driver semantics: a directory per volume under
//! `<root>/volumes/<name>/`, its data in `_data/` (what containers mount) beside a JSON record.
//!
//! Every change (create, remove, prune) holds `volumes/.lock` exclusively for its
//! read-check-write, so concurrent `berth` processes never half-create or double-remove a
//! volume. Records are written to a temporary file and renamed into place, so a reader sees a
//! volume either without a record (not yet created: skipped) or with a complete one.

mod copy;
mod mount;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::lock::{FileLock, LockError};

pub use copy::CopyError;

/// A volume's copy-up as such, for rootless berth's user-namespace helper
/// (`rootless::userns`), which runs it where the image's owners can be kept.
pub fn populate_as_is(
    vol_dir: &Path,
    data: &Path,
    rootfs: Option<&Path>,
    source: &Path,
) -> Result<bool, CopyError> {
    copy::populate(vol_dir, data, rootfs, source)
}
pub use mount::MountError;

const VOLUMES_DIR: &str = "volumes";
// Starts with a dot: no volume can be called that.
const LOCK_FILE: &str = ".lock";
const RECORD_FILE: &str = "volume.json";
const DATA_DIR: &str = "_data";

/// The label docker (23+) puts on anonymous volumes; `volume prune` without `--all` removes
/// only volumes carrying it.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("creating volume directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading volume directory {path}")]
    ReadDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading volume record {path}")]
    ReadRecord {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("volume record {path} is corrupt")]
    ParseRecord {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing volume record {path}")]
    WriteRecord {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("removing volume directory {path}")]
    RemoveDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("create {name}: volume name is too short, names should be at least two alphanumeric characters")]
    NameTooShort { name: String },
    #[error("create {name}: {name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed")]
    InvalidName { name: String },
    #[error("create {name}")]
    InvalidOptions {
        name: String,
        #[source]
        source: MountError,
    },
    #[error("volume {name}")]
    Mount {
        name: String,
        #[source]
        source: MountError,
    },
    #[error("reading random bytes for an anonymous volume name")]
    Random(#[source] io::Error),
    #[error("no such volume: {name}")]
    NotFound { name: String },
    #[error("remove {name}: volume is in use - [{}]", users.join(", "))]
    InUse { name: String, users: Vec<String> },
    #[error("invalid filter {filter:?}")]
    InvalidFilter { filter: String },
    #[error("copying image content into volume {name}")]
    Populate {
        name: String,
        #[source]
        source: CopyError,
    },
}

type Result<T, E = VolumeError> = std::result::Result<T, E>;

/// A volume as recorded on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    /// Always "local": berth has no volume plugins.
    pub driver: String,
    /// The `_data` directory containers mount.
    pub mountpoint: PathBuf,
    /// RFC 3339, seconds precision (as docker prints `CreatedAt`).
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// Made for a container without a name (`-v /data`, an image's VOLUME).
    pub anonymous: bool,
}

impl Volume {
    /// `docker volume inspect`'s object (one element of its JSON array); also what
    /// `volume ls --format` templates see, with empty maps as `null` like docker.
    pub fn inspect_json(&self) -> serde_json::Value {
        let map_or_null = |m: &BTreeMap<String, String>| {
            if m.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::json!(m)
            }
        };
        serde_json::json!({
            "CreatedAt": self.created_at,
            "Driver": self.driver,
            "Labels": map_or_null(&self.labels),
            "Mountpoint": self.mountpoint,
            "Name": self.name,
            "Options": map_or_null(&self.options),
            "Scope": "local",
        })
    }
}

/// `volume ls --filter` terms; all given terms must match (labels: every one of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeFilter {
    /// Substrings of the name; a volume matches if any matches.
    pub names: Vec<String>,
    /// `label=key` (`None`) or `label=key=value`.
    pub labels: Vec<(String, Option<String>)>,
    /// `label!=key` or `label!=key=value`: volumes carrying it are excluded.
    pub not_labels: Vec<(String, Option<String>)>,
    /// `dangling=true`: only volumes no container uses; `false`: only used ones.
    pub dangling: Option<bool>,
    /// `driver=local`.
    pub drivers: Vec<String>,
}

impl VolumeFilter {
    /// Parses docker's `--filter key=value` terms (`name`, `label`, `label!`, `dangling`,
    /// `driver`).
    pub fn parse(terms: &[String]) -> Result<Self> {
        let mut f = Self::default();
        for term in terms {
            let bad = || VolumeError::InvalidFilter {
                filter: term.clone(),
            };
            let (key, value) = term.split_once('=').ok_or_else(bad)?;
            let label = |v: &str| match v.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (v.to_string(), None),
            };
            match key {
                "name" => f.names.push(value.to_string()),
                // `label!=k` splits at the first '=' into key "label!".
                "label!" => f.not_labels.push(label(value)),
                "label" => f.labels.push(label(value)),
                "driver" => f.drivers.push(value.to_string()),
                "dangling" => {
                    f.dangling = Some(match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad()),
                    })
                }
                _ => return Err(bad()),
            }
        }
        Ok(f)
    }

    /// Whether `v` passes; `in_use` tells whether a container uses it.
    pub fn matches(&self, v: &Volume, in_use: bool) -> bool {
        let has = |(k, val): &(String, Option<String>)| {
            v.labels
                .get(k)
                .is_some_and(|have| val.as_ref().is_none_or(|want| want == have))
        };
        (self.names.is_empty() || self.names.iter().any(|n| v.name.contains(n.as_str())))
            && self.labels.iter().all(has)
            && !self.not_labels.iter().any(has)
            && self.dangling.is_none_or(|d| d != in_use)
            && (self.drivers.is_empty() || self.drivers.contains(&v.driver))
    }
}

/// What `prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub deleted: Vec<String>,
    /// Bytes of file content in the removed volumes (hardlinked files counted once).
    pub reclaimed: u64,
}

/// The volumes under one storage root.
#[derive(Debug, Clone)]
pub struct VolumeStore {
    dir: PathBuf,
}

impl VolumeStore {
    /// Opens (creating if needed) `<root>/volumes`.
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join(VOLUMES_DIR);
        fs::create_dir_all(&dir).map_err(|source| VolumeError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    fn lock(&self) -> Result<FileLock> {
        Ok(FileLock::exclusive(&self.dir.join(LOCK_FILE))?)
    }

    fn volume_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates a volume; with `name` `None`, an anonymous one with a random 64-hex name
    /// (labelled [`ANONYMOUS_LABEL`], as docker). Creating a name that exists returns the
    /// existing volume unchanged, as docker does.
    pub fn create(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<Volume> {
        let (name, anonymous) = match name {
            Some(n) => {
                validate_name(n)?;
                (n.to_string(), false)
            }
            None => (random_name()?, true),
        };
        if let Err(source) = mount::parse(&options) {
            return Err(VolumeError::InvalidOptions { name, source });
        }
        let _lock = self.lock()?;
        if let Some(existing) = self.read(&name)? {
            return Ok(existing);
        }
        let dir = self.volume_dir(&name);
        let data = dir.join(DATA_DIR);
        let mk = |p: &Path| {
            fs::create_dir_all(p).map_err(|source| VolumeError::CreateDir {
                path: p.to_path_buf(),
                source,
            })
        };
        mk(&data)?;
        let mut labels = labels;
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
        }
        let vol = Volume {
            name,
            driver: "local".into(),
            mountpoint: data,
            created_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            labels,
            options,
            anonymous,
        };
        self.write(&vol)?;
        Ok(vol)
    }

    /// The volume called `name`.
    pub fn get(&self, name: &str) -> Result<Volume> {
        self.read(name)?.ok_or_else(|| VolumeError::NotFound {
            name: name.to_string(),
        })
    }

    /// Every volume passing `filter`, sorted by name. `users` maps volume names to the
    /// containers using them (for `dangling=`).
    pub fn list(
        &self,
        filter: &VolumeFilter,
        users: &HashMap<String, Vec<String>>,
    ) -> Result<Vec<Volume>> {
        let mut out = Vec::new();
        for v in self.all()? {
            let in_use = users.get(&v.name).is_some_and(|u| !u.is_empty());
            if filter.matches(&v, in_use) {
                out.push(v);
            }
        }
        Ok(out)
    }

    fn all(&self) -> Result<Vec<Volume>> {
        let rd = fs::read_dir(&self.dir).map_err(|source| VolumeError::ReadDir {
            path: self.dir.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|source| VolumeError::ReadDir {
                path: self.dir.clone(),
                source,
            })?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            // The lock file and anything half-made (no record yet) are not volumes.
            if validate_name(&name).is_err() {
                continue;
            }
            if let Some(v) = self.read(&name)? {
                out.push(v);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes a volume and its data. `users` are the containers using it (from
    /// `container::volume_users`): a volume in use is refused with docker's message.
    pub fn remove(&self, name: &str, users: &[String]) -> Result<()> {
        let _lock = self.lock()?;
        self.get(name)?;
        if !users.is_empty() {
            return Err(VolumeError::InUse {
                name: name.to_string(),
                users: users.to_vec(),
            });
        }
        self.remove_dir(name)
    }

    fn remove_dir(&self, name: &str) -> Result<()> {
        let dir = self.volume_dir(name);
        // Unmount first, and stop if that fails: removing the tree with a filesystem still
        // mounted on it would delete the device's (or a bound host directory's) content.
        mount::unmount_all(&dir.join(DATA_DIR)).map_err(|source| VolumeError::Mount {
            name: name.to_string(),
            source,
        })?;
        // The record goes first: if removing the data fails half-way, the volume is gone
        // for every reader and the leftovers are plain files, not a damaged volume.
        let record = dir.join(RECORD_FILE);
        fs::remove_file(&record).map_err(|source| VolumeError::RemoveDir {
            path: record.clone(),
            source,
        })?;
        crate::rootless::userns::remove_tree(&dir)
            .map_err(|source| VolumeError::RemoveDir { path: dir, source })
    }

    /// Removes volumes no container uses (per `users`) that pass `filter`: only anonymous
    /// ones unless `all` (docker 23+).
    pub fn prune(
        &self,
        all: bool,
        filter: &VolumeFilter,
        users: &HashMap<String, Vec<String>>,
    ) -> Result<PruneReport> {
        let _lock = self.lock()?;
        let mut report = PruneReport::default();
        for v in self.all()? {
            let in_use = users.get(&v.name).is_some_and(|u| !u.is_empty());
            if in_use || !(all || v.anonymous) || !filter.matches(&v, false) {
                continue;
            }
            report.reclaimed += disk_usage(&v.mountpoint);
            self.remove_dir(&v.name)?;
            report.deleted.push(v.name);
        }
        Ok(report)
    }

    /// Makes the volume ready for a container and returns the directory to bind: for a
    /// volume created with `--opt type=... device=... [o=...]`, mounts that filesystem on the
    /// data directory unless it is mounted already (it stays mounted, shared by every
    /// container using the volume, until the volume is removed). Call before
    /// [`populate`](Self::populate).
    pub fn mount(&self, volume: &Volume) -> Result<PathBuf> {
        let err = |source| VolumeError::Mount {
            name: volume.name.clone(),
            source,
        };
        if let Some(spec) = mount::parse(&volume.options).map_err(err)? {
            // Two containers starting at once must not both mount.
            let _lock = self.lock()?;
            mount::mount(&spec, &volume.mountpoint).map_err(err)?;
        }
        Ok(volume.mountpoint.clone())
    }

    /// Docker's copy-up: if the volume is empty, copies the directory `source` (inside a
    /// container's mounted rootfs; the path itself is trusted, nothing below it is: no
    /// symlink under it is followed) into the volume with modes, owners, xattrs, times,
    /// symlinks, hardlinks and device nodes, and gives the volume's root `source`'s owner and
    /// mode. Returns whether anything was copied (`false`: the volume had content, or
    /// `source` does not exist or is not a directory). Callers skip this for `nocopy`.
    pub fn populate(&self, volume: &Volume, source: &Path) -> Result<bool> {
        copy::populate(
            &self.volume_dir(&volume.name),
            &volume.mountpoint,
            None,
            source,
        )
        .map_err(|source| VolumeError::Populate {
            name: volume.name.clone(),
            source,
        })
    }

    /// [`populate`](Self::populate) from `dest` (a path in the container, like `/var/lib/x`)
    /// resolved inside `rootfs` as the container would see it: symlinks on the way are
    /// followed but can never leave `rootfs` (openat2 RESOLVE_IN_ROOT).
    pub fn populate_from_rootfs(
        &self,
        volume: &Volume,
        rootfs: &Path,
        dest: &Path,
    ) -> Result<bool> {
        copy::populate(
            &self.volume_dir(&volume.name),
            &volume.mountpoint,
            Some(rootfs),
            dest,
        )
        .map_err(|source| VolumeError::Populate {
            name: volume.name.clone(),
            source,
        })
    }

    fn read(&self, name: &str) -> Result<Option<Volume>> {
        let path = self.volume_dir(name).join(RECORD_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(VolumeError::ReadRecord { path, source }),
        };
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(|source| VolumeError::ParseRecord { path, source })
    }

    fn write(&self, v: &Volume) -> Result<()> {
        let path = self.volume_dir(&v.name).join(RECORD_FILE);
        let tmp = path.with_extension("json.tmp");
        let data = serde_json::to_vec_pretty(v).map_err(|source| VolumeError::ParseRecord {
            path: path.clone(),
            source,
        })?;
        fs::write(&tmp, data)
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|source| VolumeError::WriteRecord { path, source })
    }
}

/// Docker's rule for local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !(first_ok && rest_ok) {
        return Err(VolumeError::InvalidName {
            name: name.to_string(),
        });
    }
    if name.len() < 2 {
        return Err(VolumeError::NameTooShort {
            name: name.to_string(),
        });
    }
    Ok(())
}

fn random_name() -> Result<String> {
    let mut buf = [0u8; 32];
    let mut f = fs::File::open("/dev/urandom").map_err(VolumeError::Random)?;
    io::Read::read_exact(&mut f, &mut buf).map_err(VolumeError::Random)?;
    Ok(hex::encode(buf))
}

/// Bytes of regular-file content under `dir` (hardlinks once), without following symlinks;
/// unreadable parts count as zero (this only feeds a "reclaimed" figure).
fn disk_usage(dir: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() && seen.insert((md.dev(), md.ino())) {
                total += md.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests;
