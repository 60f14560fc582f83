//! The overlayfs backend: a committed snapshot is the directory `<id>/fs` holding one layer's
//! changes (whiteouts as 0/0 character devices, opaque directories marked with
//! `trusted.overlay.opaque`); an active snapshot adds an empty `fs` (the upper dir) and `work`
//! on top of its parent's chain. Documentation/filesystems/overlayfs.rst describes the mount.

use std::path::{Path, PathBuf};

use super::store::{Record, Store};
use super::{ApplyTarget, Info, Kind, Mount, Result, SnapshotError, Snapshotter, Usage};
use crate::unpack::Whiteouts;

#[derive(Debug, Clone)]
pub struct OverlaySnapshotter {
    store: Store,
}

impl OverlaySnapshotter {
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            store: Store::open(dir)?,
        })
    }

    fn fs(&self, rec: &Record) -> PathBuf {
        self.store.snapshot_dir(rec.id).join("fs")
    }
}

fn bind(source: PathBuf, ro: bool) -> Mount {
    Mount {
        kind: "bind".into(),
        source,
        options: vec!["rbind".into(), if ro { "ro" } else { "rw" }.into()],
    }
}

impl Snapshotter for OverlaySnapshotter {
    fn name(&self) -> &'static str {
        "overlay"
    }

    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        self.store
            .create(key, parent, Kind::Active, &["fs", "work"])?;
        self.mounts(key)
    }

    fn view(&self, key: &str, parent: &str) -> Result<Vec<Mount>> {
        self.store.create(key, Some(parent), Kind::View, &[])?;
        self.mounts(key)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let chain = self.store.chain(key)?;
        let (me, parents) = chain.split_first().ok_or_else(|| SnapshotError::NotFound {
            key: key.to_string(),
        })?;
        // overlayfs lists lower directories topmost first.
        let lowers: Vec<String> = parents
            .iter()
            .map(|r| self.fs(r).display().to_string())
            .collect();
        match me.kind {
            Kind::Committed => Err(SnapshotError::WrongKind {
                key: key.to_string(),
                expected: Kind::Active,
                actual: Kind::Committed,
            }),
            Kind::Active if parents.is_empty() => Ok(vec![bind(self.fs(me), false)]),
            Kind::Active => {
                let dir = self.store.snapshot_dir(me.id);
                Ok(vec![Mount {
                    kind: "overlay".into(),
                    source: "overlay".into(),
                    options: vec![
                        format!("lowerdir={}", lowers.join(":")),
                        format!("upperdir={}", dir.join("fs").display()),
                        format!("workdir={}", dir.join("work").display()),
                    ],
                }])
            }
            // A single lower directory cannot make a read-only overlay mount; a read-only
            // bind mount of it shows the same tree.
            Kind::View if parents.len() == 1 => Ok(vec![bind(self.fs(&parents[0]), true)]),
            Kind::View => Ok(vec![Mount {
                kind: "overlay".into(),
                source: "overlay".into(),
                options: vec!["ro".into(), format!("lowerdir={}", lowers.join(":"))],
            }]),
        }
    }

    fn commit(&self, name: &str, active: &str) -> Result<()> {
        self.store.commit(name, active)
    }

    fn remove(&self, key: &str) -> Result<()> {
        self.store.remove(key)
    }

    fn stat(&self, key: &str) -> Result<Info> {
        self.store.info(key)
    }

    fn list(&self) -> Result<Vec<Info>> {
        self.store.list()
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        self.store.usage(key)
    }

    fn apply_target(&self, key: &str) -> Result<ApplyTarget> {
        let chain = self.store.chain(key)?;
        let (me, parents) = chain.split_first().ok_or_else(|| SnapshotError::NotFound {
            key: key.to_string(),
        })?;
        if me.kind != Kind::Active {
            return Err(SnapshotError::WrongKind {
                key: key.to_string(),
                expected: Kind::Active,
                actual: me.kind,
            });
        }
        Ok(ApplyTarget {
            dir: self.fs(me),
            whiteouts: Whiteouts::Overlay,
            lowers: parents.iter().map(|r| self.fs(r)).collect(),
        })
    }
}
