//! What a container changed in its root filesystem (`GET /containers/{id}/changes`,
//! `berth diff`), the filesystem as a tar stream (`export`), and a new image of its
//! changes (`POST /commit`).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::archive::Rootfs;
use crate::container::{Record, Status};
use crate::ops::error::{OpsError, Result};
use crate::ops::images::{make_image, store_layer, NewImage};
use crate::ops::Engine;
use crate::snapshot::Backend;
use crate::unpack::Whiteouts;

/// One change: `Kind` 0 modified, 1 added, 2 deleted (docker's `C`, `A`, `D`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

impl Change {
    /// `C`, `A` or `D`.
    pub fn letter(&self) -> char {
        match self.kind {
            0 => 'C',
            1 => 'A',
            _ => 'D',
        }
    }
}

/// What berth itself puts in every container (mount points of the generated /etc files and
/// the kernel filesystems), hidden as docker hides its init layer.
const HIDDEN: &[&str] = &[
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    ".dockerenv",
    "dev",
    "proc",
    "sys",
];

fn hidden(rel: &Path) -> bool {
    HIDDEN.iter().any(|h| rel == Path::new(h))
}

fn entries(dir: &Path) -> Vec<fs::DirEntry> {
    let mut v: Vec<fs::DirEntry> = fs::read_dir(dir)
        .map(|rd| rd.flatten().collect())
        .unwrap_or_default();
    v.sort_by_key(fs::DirEntry::file_name);
    v
}

fn push(out: &mut Vec<Change>, rel: &Path, kind: u8) {
    out.push(Change {
        path: format!("/{}", rel.display()),
        kind,
    });
}

fn all_added(top: &Path, rel: &Path, out: &mut Vec<Change>) {
    for e in entries(&top.join(rel)) {
        let p = rel.join(e.file_name());
        push(out, &p, 1);
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            all_added(top, &p, out);
        }
    }
}

/// An overlay upper directory: whiteouts are deletions; what a lower has is modified.
fn walk_upper(upper: &Path, lowers: &[PathBuf], rel: &Path, out: &mut Vec<Change>) -> bool {
    let mut any = false;
    for e in entries(&upper.join(rel)) {
        let p = rel.join(e.file_name());
        if hidden(&p) {
            continue;
        }
        let Ok(md) = e.metadata() else { continue };
        if md.file_type().is_char_device() && md.rdev() == 0 {
            push(out, &p, 2);
            any = true;
            continue;
        }
        let in_lower = lowers
            .iter()
            .any(|l| fs::symlink_metadata(l.join(&p)).is_ok());
        if md.is_dir() {
            if in_lower {
                let at = out.len();
                if walk_upper(upper, lowers, &p, out) {
                    out.insert(
                        at,
                        Change {
                            path: format!("/{}", p.display()),
                            kind: 0,
                        },
                    );
                    any = true;
                }
            } else {
                push(out, &p, 1);
                all_added(upper, &p, out);
                any = true;
            }
        } else {
            push(out, &p, if in_lower { 0 } else { 1 });
            any = true;
        }
    }
    any
}

fn differs(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.file_type() != b.file_type()
        || a.mode() != b.mode()
        || a.uid() != b.uid()
        || a.gid() != b.gid()
        || (!a.is_dir()
            && (a.size() != b.size() || a.mtime() != b.mtime() || a.mtime_nsec() != b.mtime_nsec()))
}

/// A full copy against its parent's full copy.
fn walk_copy(top: &Path, lower: Option<&Path>, rel: &Path, out: &mut Vec<Change>) -> bool {
    let mut any = false;
    let here = entries(&top.join(rel));
    for e in &here {
        let p = rel.join(e.file_name());
        if hidden(&p) {
            continue;
        }
        let Ok(md) = e.metadata() else { continue };
        let old = lower.and_then(|l| fs::symlink_metadata(l.join(&p)).ok());
        match old {
            None => {
                push(out, &p, 1);
                if md.is_dir() {
                    all_added(top, &p, out);
                }
                any = true;
            }
            Some(old) if md.is_dir() && old.is_dir() => {
                let at = out.len();
                // A directory whose own mode or owner changed is modified too.
                if walk_copy(top, lower, &p, out) | differs(&md, &old) {
                    out.insert(
                        at,
                        Change {
                            path: format!("/{}", p.display()),
                            kind: 0,
                        },
                    );
                    any = true;
                }
            }
            Some(old) => {
                if differs(&md, &old) {
                    push(out, &p, 0);
                    any = true;
                }
            }
        }
    }
    if let Some(l) = lower {
        for e in entries(&l.join(rel)) {
            let p = rel.join(e.file_name());
            if !hidden(&p) && !here.iter().any(|h| h.file_name() == e.file_name()) {
                push(out, &p, 2);
                any = true;
            }
        }
    }
    any
}

/// The changes of a copy snapshot `top` against its parent's tree `lower`, sorted by path.
pub(crate) fn copy_changes(top: &Path, lower: Option<&Path>) -> Vec<Change> {
    let mut out = Vec::new();
    walk_copy(top, lower, Path::new(""), &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// [`copy_changes`] as JSON (rootless berth's user-namespace helper answers with it).
pub(crate) fn copy_changes_json(top: &Path, lower: Option<&Path>) -> std::io::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&copy_changes(top, lower))?)
}

/// The layer tar of a copy snapshot's changes (rootless berth's helper writes it).
pub(crate) fn copy_layer_tar(
    top: &Path,
    lower: Option<&Path>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    write_layer(top, &copy_changes(top, lower), out)
}

/// The layer of `list` (changes of the tree `root`): the changed entries as they are in
/// `root`, deletions as whiteouts.
fn write_layer(root: &Path, list: &[Change], out: &mut dyn Write) -> std::io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    for c in list {
        let rel = c.path.trim_start_matches('/');
        let at = |e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("adding {} to the layer: {e}", c.path))
        };
        if c.kind == 2 {
            let p = Path::new(rel);
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let wh = p.with_file_name(format!(".wh.{name}"));
            let mut h = tar::Header::new_ustar();
            h.set_size(0);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            );
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, wh, std::io::empty()).map_err(at)?;
        } else {
            b.append_path_with_name(root.join(rel), rel).map_err(at)?;
        }
    }
    b.finish()
}

/// `GET /containers/{id}/changes`: sorted by path.
pub fn changes(engine: &Engine, what: &str) -> Result<Vec<Change>> {
    let (_, r) = super::find(engine, what)?;
    record_changes(engine, &r)
}

/// [`changes`] of a container whose record is at hand.
pub(crate) fn record_changes(engine: &Engine, r: &Record) -> Result<Vec<Change>> {
    let backend: Backend = r.snapshotter.parse()?;
    let sn = backend.open(engine.root())?;
    let target = sn.apply_target(&r.id)?;
    let mut out = Vec::new();
    match target.whiteouts {
        Whiteouts::Overlay => {
            walk_upper(&target.dir, &target.lowers, Path::new(""), &mut out);
        }
        _ if crate::rootless::userns::shifting() => {
            // Owners in the user's subordinate range: compared from its user namespace.
            let lower = target.lowers.first().map(PathBuf::as_path);
            let json = crate::rootless::userns::changes_json(&target.dir, lower)
                .map_err(|e| OpsError::io(format!("comparing container {}", r.id), e))?;
            out = serde_json::from_slice(&json)
                .map_err(|e| OpsError::io(format!("comparing container {}", r.id), e.into()))?;
        }
        _ => out = copy_changes(&target.dir, target.lowers.first().map(PathBuf::as_path)),
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// `GET /containers/{id}/export`: the container's whole filesystem as a tar stream into
/// `out` (a stopped container's is mounted for the time of the export).
pub fn export(engine: &Engine, what: &str, out: impl Write) -> Result<()> {
    let mut rootfs = Rootfs::open(engine, what)?;
    let r = (|| -> std::io::Result<()> {
        if crate::rootless::userns::shifting() {
            // Owners in the user's subordinate range: archived from its user namespace.
            let mut out = out;
            return crate::rootless::userns::tar_tree(&rootfs.path, &mut out);
        }
        let mut b = tar::Builder::new(out);
        b.follow_symlinks(false);
        for e in entries(&rootfs.path) {
            let name = PathBuf::from(e.file_name());
            if e.file_type()?.is_dir() {
                b.append_dir_all(&name, e.path())?;
            } else {
                b.append_path_with_name(e.path(), &name)?;
            }
        }
        b.finish()
    })();
    let also = rootfs.release();
    let (_, rec) = super::find(engine, what)?;
    r.map_err(|e| OpsError::io(format!("exporting container {}", rec.id), e).with_also(also))?;
    crate::events::container(engine.root(), &rec, "export", &[]);
    Ok(())
}

/// How to commit.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `REPOSITORY[:TAG]`; an unnamed image when `None`.
    pub reference: Option<String>,
    pub comment: String,
    pub author: String,
    /// Dockerfile instructions (`-c`).
    pub changes: Vec<String>,
    /// Pause a running container during the commit (docker's default).
    pub pause: bool,
    /// Config fields that replace the container's (`POST /commit`'s body).
    pub config: serde_json::Map<String, Value>,
}

/// `POST /commit`: a new image of the container's image plus its changes; returns the ID.
pub fn commit(engine: &Engine, what: &str, opts: &CommitOptions) -> Result<String> {
    let (_, r) = super::find(engine, what)?;
    let paused = opts.pause && r.state.status == Status::Running && pause_running(engine, &r.id)?;
    let made = commit_paused(engine, &r.id, opts);
    if paused {
        let _ = super::unpause(engine, &r.id);
    }
    made
}

/// Pauses a container seen running; `false` when it turned out to have exited meanwhile
/// (a short command: the runtime no longer knows it), which commits without a pause.
fn pause_running(engine: &Engine, id: &str) -> Result<bool> {
    match super::pause(engine, id) {
        Ok(()) => Ok(true),
        Err(e) => match super::wait_timeout(engine, id, std::time::Duration::from_secs(2))? {
            Some(_) => Ok(false),
            None => Err(e),
        },
    }
}

fn commit_paused(engine: &Engine, id: &str, opts: &CommitOptions) -> Result<String> {
    let (_, r) = super::find(engine, id)?;
    let list = changes(engine, id)?;
    let mut rootfs = Rootfs::open(engine, id)?;
    let shifted = crate::rootless::userns::shifting()
        .then(|| -> Result<_> {
            let backend: Backend = r.snapshotter.parse()?;
            let target = backend.open(engine.root())?.apply_target(&r.id)?;
            Ok((target.whiteouts == Whiteouts::Delete).then_some(target))
        })
        .transpose()?
        .flatten();
    let layer = store_layer(engine, |out| {
        let written = match &shifted {
            // Owners in the user's subordinate range: the layer is written from its user
            // namespace (the container's owners, every file readable).
            Some(t) => crate::rootless::userns::layer_tar(
                &t.dir,
                t.lowers.first().map(PathBuf::as_path),
                out,
            ),
            None => write_layer(&rootfs.path, &list, out),
        };
        written.map_err(|e| OpsError::io(format!("writing the layer of container {}", r.id), e))
    });
    let also = rootfs.release();
    let layer = layer.map_err(|e| e.with_also(also))?;
    let mut config = serde_json::Map::new();
    let cfg = &r.config;
    let list_or_null = |v: &Vec<String>| if v.is_empty() { Value::Null } else { json!(v) };
    config.insert("Cmd".into(), list_or_null(&cfg.cmd));
    config.insert("Entrypoint".into(), list_or_null(&cfg.entrypoint));
    config.insert("Env".into(), json!(cfg.env));
    config.insert("WorkingDir".into(), json!(cfg.working_dir));
    config.insert("User".into(), json!(cfg.user));
    if !cfg.labels.is_empty() {
        config.insert("Labels".into(), json!(cfg.labels));
    }
    for (k, v) in &opts.config {
        config.insert(k.clone(), v.clone());
    }
    let new = NewImage {
        name: opts.reference.clone(),
        created_by: cfg.args.join(" "),
        comment: opts.comment.clone(),
        author: opts.author.clone(),
        config,
        changes: opts.changes.clone(),
    };
    let image = make_image(engine, Some(&r.image_id), layer, &new)?;
    crate::events::container(
        engine.root(),
        &r,
        "commit",
        &[
            ("comment", opts.comment.clone()),
            ("imageID", image.clone()),
            ("imageRef", opts.reference.clone().unwrap_or_default()),
        ],
    );
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_copy_snapshots_changes_include_a_directory_whose_mode_alone_changed() {
        let d = tempfile::tempdir().unwrap();
        let (lower, top) = (d.path().join("l"), d.path().join("t"));
        for t in [&lower, &top] {
            fs::create_dir_all(t.join("same")).unwrap();
            fs::create_dir_all(t.join("chmod")).unwrap();
        }
        fs::set_permissions(top.join("chmod"), fs::Permissions::from_mode(0o700)).unwrap();
        let got = copy_changes(&top, Some(&lower));
        assert_eq!(
            got,
            [Change {
                path: "/chmod".into(),
                kind: 0
            }]
        );
    }
}
