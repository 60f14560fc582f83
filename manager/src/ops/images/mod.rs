//! Image operations: list, inspect, tag, remove, prune, mount; registry operations (pull,
//! push, login) in [`registry`]; archives (save, load) in [`archive`].

mod archive;
mod build;
mod filter;
mod layered;
mod registry;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::image::{ImageRecord, ImageStore};
use crate::ops::error::{OpsError, Result};
use crate::ops::models::{
    ImageDeleteResponseItem, ImageInspect, ImageName, ImagePruneResponse, ImageSummary,
    ManifestInfo, RootFs,
};
use crate::ops::Engine;
use crate::reference::Reference;
use crate::snapshot::{mount_all, unmount, Backend, SnapshotError};
use crate::unpack::{prune_snapshots, unpack_image};

pub use archive::{load, save, ArchiveFormat};
pub(crate) use build::write_step_layer;
pub use build::{
    build, context_from_tar, exit_code as build_exit_code, export_local, history, BuildRequest,
    BuildResult, HistoryItem, TarContext,
};
pub use layered::{import, NewImage};
pub(crate) use layered::{make_image, store_layer};
pub use registry::{login, logout, pull, pull_with_auth, push, push_with_auth, PullOptions};

/// Checks that `reference` is a valid image reference (a request's fault before any work).
pub fn check_reference(reference: &str) -> Result<()> {
    crate::reference::Reference::parse(reference)?;
    Ok(())
}

/// Whether `image` (a name, ID or digest) is in the store.
pub fn exists(engine: &Engine, image: &str) -> Result<bool> {
    Ok(engine.images()?.lookup(image).is_ok())
}

/// [`list`] narrowed by docker's image filters (`reference`, `dangling`, `label`,
/// `before`, `since`).
pub fn list_filtered(
    engine: &Engine,
    reference: Option<&str>,
    filters: &crate::ops::models::Filters,
) -> Result<Vec<ImageSummary>> {
    filter::apply(engine, list(engine, reference)?, filters)
}

/// `GET /images/json`; `reference` keeps the names of one repository (`NAME[:TAG]`) only.
/// One summary per image, its names in [`ImageSummary::names`] sorted by repository and tag.
pub fn list(engine: &Engine, reference: Option<&str>) -> Result<Vec<ImageSummary>> {
    let filter = reference.map(Reference::parse_name_only).transpose()?;
    let store = engine.images()?;
    let users = container_users(engine.root())?;
    let mut by_id: BTreeMap<String, ImageSummary> = BTreeMap::new();
    let mut sizes = store.layer_sizes();
    for rec in store.records()? {
        if let Some(f) = &filter {
            let Some(r) = rec.reference() else { continue };
            if r.name() != f.name() || f.tag().is_some_and(|t| r.tag() != Some(t)) {
                continue;
            }
        }
        let reference = rec.reference();
        let name = ImageName {
            repository: reference
                .as_ref()
                .map_or_else(|| "<none>".to_string(), Reference::familiar_name),
            tag: reference
                .as_ref()
                .and_then(|r| r.tag().map(str::to_string))
                .unwrap_or_else(|| "<none>".to_string()),
            digest: String::new(),
        };
        let summary = match store.image(&rec) {
            Ok(info) => {
                let id = info.id().to_string();
                by_id.entry(id.clone()).or_insert_with(|| {
                    let created_at = info.config.created().clone();
                    let size =
                        i64::try_from(store.unpacked_size(&info, &mut sizes)).unwrap_or(i64::MAX);
                    ImageSummary {
                        containers: users.get(&id).map_or(0, |u| u.len() as i64),
                        id,
                        created: created_at.as_deref().map_or(0, unix_seconds),
                        size,
                        virtual_size: size,
                        labels: info
                            .config
                            .config()
                            .as_ref()
                            .and_then(|c| c.labels().clone())
                            .unwrap_or_default()
                            .into_iter()
                            .collect(),
                        created_at,
                        ..ImageSummary::default()
                    }
                })
            }
            // A damaged image still shows up, so that the user can see and remove it.
            Err(_) => by_id
                .entry(rec.digest.to_string())
                .or_insert_with(|| ImageSummary {
                    id: rec.digest.to_string(),
                    containers: -1,
                    damaged: true,
                    ..ImageSummary::default()
                }),
        };
        if let Some(r) = &reference {
            if r.tag().is_some() {
                summary.repo_tags.push(r.familiar());
            }
            if let Some(d) = &rec.repo_digest {
                summary
                    .repo_digests
                    .push(r.with_digest(d.clone()).familiar());
            }
        }
        summary.names.push(name);
    }
    let mut out: Vec<ImageSummary> = by_id.into_values().collect();
    for s in &mut out {
        // docker's DIGEST column: the digest the name's repository knows the image by.
        for n in &mut s.names {
            let prefix = format!("{}@", n.repository);
            n.digest = s
                .repo_digests
                .iter()
                .find_map(|d| d.strip_prefix(&prefix))
                .unwrap_or("<none>")
                .to_string();
        }
        s.names
            .sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
        s.repo_digests.sort();
        s.repo_digests.dedup();
    }
    Ok(out)
}

fn unix_seconds(t: &str) -> i64 {
    humantime::parse_rfc3339_weak(t)
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

/// `--platform` of run and create: the image must be of that platform (docker's check;
/// berth runs no emulation, so another platform's image would not run anyway).
pub fn check_platform(engine: &Engine, image: &str, platform: &str) -> Result<()> {
    let wanted: crate::platform::Platform = platform.parse().map_err(OpsError::Platform)?;
    let info = inspect(engine, image)?;
    let actual = crate::platform::Platform {
        os: info.os.clone(),
        architecture: info.architecture.clone(),
        variant: info.variant.clone().filter(|v| !v.is_empty()),
    };
    if wanted.matches(&actual).is_none() {
        return Err(OpsError::PlatformMismatch {
            image: image.to_string(),
            wanted: wanted.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// `GET /images/{name}/json`, plus the stored manifest.
pub fn inspect(engine: &Engine, what: &str) -> Result<ImageInspect> {
    let store = engine.images()?;
    let records = store.records()?;
    let hits = store.lookup(what)?;
    let rec = &hits[0];
    let info = store.image(rec)?;
    let same: Vec<_> = records.iter().filter(|r| r.digest == rec.digest).collect();
    let repo_tags: Vec<String> = same
        .iter()
        .filter_map(|r| r.reference())
        .filter(|r| r.tag().is_some())
        .map(|r| r.familiar())
        .collect();
    let mut repo_digests: Vec<String> = same
        .iter()
        .filter_map(|r| {
            let pinned = r.repo_digest.clone()?;
            r.reference().map(|x| x.with_digest(pinned).familiar())
        })
        .collect();
    repo_digests.sort();
    repo_digests.dedup();
    let config = &info.config;
    // The config blob as written: docker's fields beyond the OCI model.
    let raw: serde_json::Value = store
        .content()
        .read_metadata(&info.config_digest)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let text = |k: &str| raw[k].as_str().unwrap_or_default().to_string();
    let size = store.unpacked_size(&info, &mut store.layer_sizes());
    Ok(ImageInspect {
        id: info.id().to_string(),
        repo_tags,
        repo_digests,
        parent: String::new(),
        comment: text("comment"),
        created: config.created().clone(),
        container: text("container"),
        container_config: serde_json::from_value(raw["container_config"].clone())
            .unwrap_or_default(),
        docker_version: text("docker_version"),
        author: config.author().clone().unwrap_or_default(),
        config: serde_json::from_value(raw["config"].clone()).ok(),
        architecture: config.architecture().to_string(),
        variant: config.variant().clone(),
        os: config.os().to_string(),
        size,
        virtual_size: size,
        graph_driver: crate::ops::models::GraphDriver {
            data: Default::default(),
            name: crate::snapshot::Backend::detect().name().to_string(),
        },
        metadata: crate::ops::models::ImageMetadata {
            last_tag_time: "0001-01-01T00:00:00Z".into(),
        },
        root_fs: RootFs {
            r#type: "layers".into(),
            layers: config.rootfs().diff_ids().clone(),
        },
        manifest: ManifestInfo {
            digest: rec.digest.to_string(),
            media_type: rec.media_type.clone(),
            index_digest: rec.index_digest.as_ref().map(ToString::to_string),
            layers: info.manifest.layers().clone(),
        },
    })
}

/// `POST /images/{name}/tag`: `target` (a name with a tag) names the image of `source`.
pub fn tag(engine: &Engine, source: &str, target: &str) -> Result<()> {
    let target_ref = Reference::parse(target)?;
    if target_ref.digest().is_some() {
        return Err(OpsError::TagWithDigest {
            target: target.to_string(),
        });
    }
    let store = engine.images()?;
    let hits = store.lookup(source)?;
    let first = &hits[0];
    if hits.iter().any(|h| h.digest != first.digest) {
        return Err(OpsError::ImageAmbiguous {
            what: source.to_string(),
        });
    }
    let mut record = ImageRecord::new(Some(&target_ref), first.digest.clone(), &first.media_type);
    record.index_digest = first.index_digest.clone();
    // A new tag in a repository that knows the image keeps that repository's digest (docker's
    // digest references are per repository, not per tag).
    record.repo_digest = store
        .records()?
        .into_iter()
        .filter(|r| r.digest == first.digest)
        .filter(|r| r.reference().is_some_and(|x| x.name() == target_ref.name()))
        .find_map(|r| r.repo_digest);
    store.put(record)?;
    let id = image_id(store, first).unwrap_or_else(|| first.digest.to_string());
    crate::events::emit(
        engine.root(),
        "image",
        "tag",
        &id,
        &[("name", target_ref.to_string())],
    );
    Ok(())
}

/// Image ID (config digest) → the short ids of the containers made from it.
fn container_users(root: &Path) -> Result<HashMap<String, Vec<String>>> {
    let mut users: HashMap<String, Vec<String>> = HashMap::new();
    for c in crate::container::ContainerStore::open(root)?.list()? {
        users
            .entry(c.image_id.clone())
            .or_default()
            .push(c.short_id().to_string());
    }
    Ok(users)
}

/// The image ID (config digest) of a record, when its manifest is readable.
fn image_id(store: &ImageStore, rec: &ImageRecord) -> Option<String> {
    store.image(rec).ok().map(|i| i.id().to_string())
}

/// Removes the committed snapshots no image needs any more, in every snapshotter in use;
/// snapshots a container builds on are kept (the snapshotter refuses to remove a parent).
fn prune_all_snapshots(root: &Path, store: &ImageStore) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for backend in Backend::ALL {
        if !root.join("snapshots").join(backend.name()).is_dir() {
            continue;
        }
        let sn = backend.open(root)?;
        removed.extend(prune_snapshots(store, &*sn)?);
    }
    Ok(removed)
}

/// What removing images did: the names untagged and blobs deleted, in order, and the
/// images that could not be removed (each error's text).
#[derive(Debug, Default)]
pub struct RemoveReport {
    pub items: Vec<ImageDeleteResponseItem>,
    pub errors: Vec<OpsError>,
}

/// `DELETE /images/{name}` for each of `names`, then one garbage collection: names are
/// untagged, blobs no image needs are deleted. The last name of an image a container uses
/// is only untagged with `force` (the image stays, unnamed, for the container); an ID that
/// several names share needs `force` too.
pub fn remove(engine: &Engine, names: &[String], force: bool) -> Result<RemoveReport> {
    let root = engine.root();
    let users = container_users(root)?;
    let store = engine.images()?;
    let mut report = RemoveReport::default();
    let mut removed_ids: Vec<String> = Vec::new();
    for what in names {
        let hits = match store.lookup(what) {
            Ok(h) => h,
            Err(e) => {
                report.errors.push(e.into());
                continue;
            }
        };
        let by_name = hits.len() == 1
            || hits
                .iter()
                .all(|h| h.name.is_some() && h.reference().is_some_and(|r| r.to_string() == *what));
        if hits.len() > 1 && !force && !by_name {
            report
                .errors
                .push(OpsError::ImageAmbiguousDelete { what: what.clone() });
            continue;
        }
        let mut keep_unnamed: Vec<ImageRecord> = Vec::new();
        let records = store.records()?;
        let mut conflict = None;
        for h in &hits {
            let others = records
                .iter()
                .any(|r| r.digest == h.digest && !hits.contains(r));
            let id = image_id(store, h).unwrap_or_default();
            let Some(used_by) = users.get(&id) else {
                continue;
            };
            if others {
                continue;
            }
            if !force {
                conflict = Some(OpsError::ImageInUse {
                    what: what.clone(),
                    container: used_by[0].clone(),
                    image: id.trim_start_matches("sha256:")[..12.min(id.len())].to_string(),
                });
                break;
            }
            if h.name.is_some() && !keep_unnamed.iter().any(|k| k.digest == h.digest) {
                let mut unnamed = h.clone();
                unnamed.name = None;
                keep_unnamed.push(unnamed);
            }
        }
        if let Some(c) = conflict {
            report.errors.push(c);
            continue;
        }
        let removed = store.update(|records| {
            let before = records.clone();
            records.retain(|r| !hits.contains(r));
            records.extend(keep_unnamed.iter().cloned());
            before
                .into_iter()
                .filter(|r| hits.contains(r))
                .collect::<Vec<_>>()
        })?;
        for r in &removed {
            let id = image_id(store, r).unwrap_or_else(|| r.digest.to_string());
            let name = r.name.clone().unwrap_or_default();
            crate::events::emit(root, "image", "untag", &id, &[("name", name.clone())]);
            if !store.records()?.iter().any(|o| o.digest == r.digest) && !removed_ids.contains(&id)
            {
                removed_ids.push(id);
            }
            report.items.push(ImageDeleteResponseItem {
                untagged: Some(
                    r.reference()
                        .map(|x| x.familiar())
                        .unwrap_or_else(|| r.digest.to_string()),
                ),
                deleted: None,
            });
        }
    }
    let gc = store.gc(None, false)?;
    for id in &removed_ids {
        crate::events::emit(root, "image", "delete", id, &[]);
    }
    for d in &gc.deleted {
        report.items.push(ImageDeleteResponseItem {
            untagged: None,
            deleted: Some(d.to_string()),
        });
    }
    prune_all_snapshots(root, store)?;
    Ok(report)
}

/// `POST /images/prune`: unnamed images (every image with `all`) no container was made
/// from, then every unreferenced blob and stale ingest.
pub fn prune(engine: &Engine, all: bool) -> Result<ImagePruneResponse> {
    let root = engine.root();
    // Images a container (running or not) was made from are never pruned, as docker.
    let users = container_users(root)?;
    let store = engine.images()?;
    let in_use: Vec<_> = store
        .records()?
        .into_iter()
        .filter(|r| image_id(store, r).is_some_and(|id| users.contains_key(&id)))
        .collect();
    let removed = store.update(|records| {
        let (gone, kept): (Vec<_>, Vec<_>) = records
            .drain(..)
            .partition(|r| (all || r.name.is_none()) && !in_use.contains(r));
        *records = kept;
        gone
    })?;
    let gc = store.gc(None, true)?;
    prune_all_snapshots(root, store)?;
    let mut deleted: Vec<ImageDeleteResponseItem> = removed
        .iter()
        .map(|r| ImageDeleteResponseItem {
            untagged: Some(r.name.clone().unwrap_or_else(|| r.digest.to_string())),
            deleted: None,
        })
        .collect();
    deleted.extend(gc.deleted.iter().map(|d| ImageDeleteResponseItem {
        untagged: None,
        deleted: Some(d.to_string()),
    }));
    Ok(ImagePruneResponse {
        images_deleted: deleted,
        space_reclaimed: gc.reclaimed,
    })
}

/// The view snapshot that holds a mount's layers in use, named after the mount point.
fn view_key(dir: &Path) -> String {
    let hash = crate::content::sha256_of(dir.as_os_str().as_encoded_bytes());
    format!("mount-{}", hash.digest())
}

fn canonical(dir: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(dir)
        .map_err(|e| OpsError::io(format!("mount point {}", dir.display()), e))
}

/// Mounts an image's root filesystem read-only on `dir` (unpacked into snapshots first);
/// returns the mount point.
pub fn mount(
    engine: &Engine,
    image: &str,
    dir: &Path,
    snapshotter: Option<&str>,
) -> Result<PathBuf> {
    let backend = match snapshotter {
        Some(s) => s.parse::<Backend>()?,
        None => Backend::detect(),
    };
    let dir = canonical(dir)?;
    let store = engine.images()?;
    let hits = store.lookup(image)?;
    let first = &hits[0];
    if hits.iter().any(|h| h.digest != first.digest) {
        return Err(OpsError::ImageAmbiguous {
            what: image.to_string(),
        });
    }
    let info = store.image(first)?;
    let sn = backend.open(engine.root())?;
    let top = unpack_image(store, &info, image, &*sn)?.ok_or_else(|| OpsError::NoLayers {
        image: image.to_string(),
    })?;
    let key = view_key(&dir);
    let mounts = match sn.view(&key, top.as_ref()) {
        Err(SnapshotError::AlreadyExists { .. }) => {
            return Err(OpsError::AlreadyMounted { dir: dir.clone() })
        }
        r => r?,
    };
    if let Err(e) = mount_all(&mounts, &dir) {
        return Err(match sn.remove(&key) {
            Ok(()) => e.into(),
            Err(cleanup) => OpsError::MountUndo {
                key,
                cleanup: cleanup.to_string(),
                source: Box::new(e),
            },
        });
    }
    Ok(dir)
}

/// Unmounts an image mounted by [`mount`] and releases its view.
pub fn unmount_image(engine: &Engine, dir: &Path) -> Result<()> {
    let dir = canonical(dir)?;
    unmount(&dir)?;
    let key = view_key(&dir);
    for backend in Backend::ALL {
        match backend.open(engine.root())?.remove(&key) {
            Ok(()) => return Ok(()),
            Err(SnapshotError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
