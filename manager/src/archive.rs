//! `save` and `load`: images as tar archives in docker's `docker save` form
//! (`manifest.json`, `<config>.json`, `<diff-id>/layer.tar` with uncompressed layers) or as an
//! OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`, blobs byte-for-byte).
//! Both directions stream: blobs go from the store into the tar and from the tar into ingest
//! files, never whole into memory.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use oci_spec::image::{Descriptor, Digest, ImageConfiguration, ImageIndex, ImageManifest};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::content::{ContentError, MAX_METADATA_SIZE};
use crate::image::{ImageError, ImageInfo, ImageRecord, ImageStore};
use crate::manifest::{self, Compression, Kind, ManifestError};
use crate::platform::Platform;
use crate::reference::Reference;

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("writing the archive")]
    Write(#[source] io::Error),
    #[error("reading the archive")]
    Read(#[source] io::Error),
    #[error("archive entry {path}: {reason}")]
    Entry { path: String, reason: &'static str },
    #[error("archive file {path} is not valid JSON")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("archive has neither index.json (OCI layout) nor manifest.json (docker save)")]
    Unknown,
    #[error("archive refers to {path}, which it does not contain")]
    Missing { path: String },
    #[error("layer {layer} of image {image} does not match its diff ID {diff_id}")]
    DiffId {
        image: String,
        layer: Digest,
        diff_id: String,
    },
    #[error("image {image} has {layers} layers but {diff_ids} diff IDs in its config")]
    DiffIdCount {
        image: String,
        layers: usize,
        diff_ids: usize,
    },
    #[error("creating temporary file in {path}")]
    Temp {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// An image to save and the names it is saved under.
#[derive(Debug)]
pub struct SaveItem {
    pub record: ImageRecord,
    pub names: Vec<Reference>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Writes a docker-archive (what `docker save` writes and `docker load` reads).
pub fn save_docker(store: &ImageStore, items: &[SaveItem], out: impl Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut written: HashSet<String> = HashSet::new();
    let mut entries = Vec::new();
    let tmp_dir = store.root().join("tmp");
    fs::create_dir_all(&tmp_dir).map_err(|source| ArchiveError::Temp {
        path: tmp_dir.clone(),
        source,
    })?;
    for item in items {
        let info = store.image(&item.record)?;
        let name = item
            .names
            .first()
            .map_or_else(|| item.record.digest.to_string(), ToString::to_string);
        let config_path = format!("{}.json", info.config_digest.digest());
        if written.insert(config_path.clone()) {
            let file = store.content().open_blob(&info.config_digest)?;
            append(&mut tar, &config_path, file)?;
        }
        let diff_ids = info.config.rootfs().diff_ids();
        if diff_ids.len() != info.manifest.layers().len() {
            return Err(ArchiveError::DiffIdCount {
                image: name,
                layers: info.manifest.layers().len(),
                diff_ids: diff_ids.len(),
            });
        }
        let mut layers = Vec::new();
        for (layer, diff_id) in info.manifest.layers().iter().zip(diff_ids) {
            let hex = diff_id.strip_prefix("sha256:").unwrap_or(diff_id);
            let path = format!("{hex}/layer.tar");
            if written.insert(path.clone()) {
                append_layer(store, &tmp_dir, &mut tar, &path, layer, diff_id, &name)?;
            }
            layers.push(path);
        }
        entries.push(DockerManifestEntry {
            config: config_path,
            repo_tags: Some(item.names.iter().map(docker_name).collect()),
            layers,
        });
    }
    let bytes = serde_json::to_vec(&entries).map_err(|source| ArchiveError::Json {
        path: "manifest.json".into(),
        source,
    })?;
    append(&mut tar, "manifest.json", &bytes[..])?;
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(ArchiveError::Write)
}

/// Names in docker archives use docker's short form (`busybox:latest` for Docker Hub).
fn docker_name(r: &Reference) -> String {
    let s = r.to_string();
    s.strip_prefix("docker.io/library/")
        .or_else(|| s.strip_prefix("docker.io/"))
        .map_or(s.clone(), str::to_string)
}

/// Appends a layer uncompressed. Tar headers need the size first, so a compressed layer is
/// decompressed to a temporary file (checked against its diff ID on the way) and copied in.
fn append_layer<W: Write>(
    store: &ImageStore,
    tmp_dir: &Path,
    tar: &mut tar::Builder<W>,
    path: &str,
    layer: &Descriptor,
    diff_id: &str,
    image: &str,
) -> Result<()> {
    let blob = BufReader::new(store.content().open_blob(layer.digest())?);
    let mut reader: Box<dyn Read> = match manifest::layer_compression(layer)? {
        Compression::None => {
            let file = store.content().open_blob(layer.digest())?;
            return append(tar, path, file);
        }
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(blob).map_err(ArchiveError::Read)?)
        }
    };
    let mut tmp = tempfile_in(tmp_dir)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(ArchiveError::Read)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.1.write_all(&buf[..n]).map_err(ArchiveError::Write)?;
    }
    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
    if actual != diff_id {
        return Err(ArchiveError::DiffId {
            image: image.to_string(),
            layer: layer.digest().clone(),
            diff_id: diff_id.to_string(),
        });
    }
    let file = File::open(&tmp.0).map_err(ArchiveError::Read)?;
    append(tar, path, file)
}

/// A named temporary file, deleted when the guard drops.
struct TempFile(PathBuf, File);

impl Drop for TempFile {
    fn drop(&mut self) {
        // Best effort: a leftover temp file only wastes space and lives under the root's tmp/.
        let _ = fs::remove_file(&self.0);
    }
}

fn tempfile_in(dir: &Path) -> Result<TempFile> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let path = dir.join(format!(
        "layer-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let file = File::create(&path).map_err(|source| ArchiveError::Temp {
        path: path.clone(),
        source,
    })?;
    Ok(TempFile(path, file))
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: impl ReadLen) -> Result<()> {
    let size = data.len().map_err(ArchiveError::Read)?;
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, data)
        .map_err(ArchiveError::Write)
}

/// A reader that knows its length (tar headers need it first).
trait ReadLen: Read {
    fn len(&self) -> io::Result<u64>;
}

impl ReadLen for File {
    fn len(&self) -> io::Result<u64> {
        self.metadata().map(|m| m.len())
    }
}

impl ReadLen for &[u8] {
    fn len(&self) -> io::Result<u64> {
        Ok(<[u8]>::len(self) as u64)
    }
}

/// Writes an OCI image layout as a tar (`oci-archive`); blobs are copied unchanged, so every
/// manifest keeps its digest.
pub fn save_oci(store: &ImageStore, items: &[SaveItem], out: impl Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    append(
        &mut tar,
        "oci-layout",
        &br#"{"imageLayoutVersion":"1.0.0"}"#[..],
    )?;
    let mut written: HashSet<Digest> = HashSet::new();
    let mut descriptors = Vec::new();
    for item in items {
        let info: ImageInfo = store.image(&item.record)?;
        let digests = std::iter::once(&item.record.digest).chain(info.blobs());
        for d in digests {
            if written.insert(d.clone()) {
                let file = store.content().open_blob(d)?;
                append(&mut tar, &format!("blobs/sha256/{}", d.digest()), file)?;
            }
        }
        let names: Vec<Option<&Reference>> = if item.names.is_empty() {
            vec![None]
        } else {
            item.names.iter().map(Some).collect()
        };
        for name in names {
            let mut desc = json!({
                "mediaType": item.record.media_type,
                "digest": item.record.digest.to_string(),
                "size": info.manifest_size,
            });
            if let Some(n) = name {
                desc["annotations"] = json!({
                    CONTAINERD_NAME: n.to_string(),
                    REF_NAME: n.tag().unwrap_or("latest"),
                });
            }
            descriptors.push(desc);
        }
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": descriptors,
    });
    let bytes = serde_json::to_vec(&index).map_err(|source| ArchiveError::Json {
        path: "index.json".into(),
        source,
    })?;
    append(&mut tar, "index.json", &bytes[..])?;
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(ArchiveError::Write)
}

/// A file of the archive ingested into the store.
#[derive(Debug, Clone)]
struct Stored {
    digest: Digest,
    size: u64,
}

/// Loads every image of a docker-archive or OCI archive; returns the records written.
pub fn load(store: &ImageStore, input: impl Read) -> Result<Vec<ImageRecord>> {
    let adding = store.adding()?;
    let mut ingested: Vec<Digest> = Vec::new();
    let result = load_locked(store, input, &mut ingested);
    drop(adding);
    // Blobs of the archive that no image uses (or all of them, on failure) are garbage.
    store.gc(Some(&ingested), false)?;
    result
}

fn load_locked(
    store: &ImageStore,
    input: impl Read,
    ingested: &mut Vec<Digest>,
) -> Result<Vec<ImageRecord>> {
    let mut archive = tar::Archive::new(input);
    let mut files: HashMap<String, Stored> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let mut metadata: HashMap<String, Vec<u8>> = HashMap::new();
    for entry in archive.entries().map_err(ArchiveError::Read)? {
        let mut entry = entry.map_err(ArchiveError::Read)?;
        let raw = entry.path().map_err(ArchiveError::Read)?.into_owned();
        let path = clean(&raw).ok_or_else(|| ArchiveError::Entry {
            path: raw.display().to_string(),
            reason: "path escapes the archive",
        })?;
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink | tar::EntryType::Link => {
                if let Some(target) = entry.link_name().map_err(ArchiveError::Read)? {
                    let base = if entry.header().entry_type() == tar::EntryType::Symlink {
                        Path::new(&path)
                            .parent()
                            .unwrap_or(Path::new(""))
                            .join(target)
                    } else {
                        target.into_owned()
                    };
                    if let Some(t) = clean(&base) {
                        links.insert(path, t);
                    }
                }
                continue;
            }
            _ => continue,
        }
        if matches!(
            path.as_str(),
            "index.json" | "manifest.json" | "oci-layout" | "repositories"
        ) {
            if entry.size() > MAX_METADATA_SIZE {
                return Err(ArchiveError::Entry {
                    path,
                    reason: "metadata file too large",
                });
            }
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf).map_err(ArchiveError::Read)?;
            metadata.insert(path, buf);
            continue;
        }
        let mut ingest = store.content().ingest_unknown()?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = entry.read(&mut buf).map_err(ArchiveError::Read)?;
            if n == 0 {
                break;
            }
            ingest.write(&buf[..n])?;
        }
        let size = ingest.offset();
        // Files under blobs/ are named by their digest: hold them to it.
        let digest = match path
            .strip_prefix("blobs/sha256/")
            .and_then(|h| Digest::from_str(&format!("sha256:{h}")).ok())
        {
            Some(expected) => ingest.commit_expecting(&expected, Some(size))?,
            None => ingest.commit(None)?,
        };
        ingested.push(digest.clone());
        files.insert(path, Stored { digest, size });
    }
    let lookup = |path: &str| -> Result<Stored> {
        let p = clean(Path::new(path)).unwrap_or_default();
        let p = links.get(&p).cloned().unwrap_or(p);
        files.get(&p).cloned().ok_or(ArchiveError::Missing {
            path: path.to_string(),
        })
    };
    if let Some(index) = metadata.get("index.json") {
        load_oci(store, index, &lookup)
    } else if let Some(manifest) = metadata.get("manifest.json") {
        load_docker(store, manifest, &lookup)
    } else {
        Err(ArchiveError::Unknown)
    }
}

fn load_oci(
    store: &ImageStore,
    index: &[u8],
    lookup: &dyn Fn(&str) -> Result<Stored>,
) -> Result<Vec<ImageRecord>> {
    let index: ImageIndex = serde_json::from_slice(index).map_err(|source| ArchiveError::Json {
        path: "index.json".into(),
        source,
    })?;
    let mut out = Vec::new();
    for desc in index.manifests() {
        let annotations = desc.annotations().clone().unwrap_or_default();
        let name = annotations
            .get(CONTAINERD_NAME)
            .or_else(|| annotations.get(REF_NAME))
            .filter(|n| n.contains(['/', ':']))
            .and_then(|n| Reference::parse(n).ok());
        let display = name
            .as_ref()
            .map_or_else(|| desc.digest().to_string(), ToString::to_string);
        let bytes = read_archived(store, lookup, desc.digest())?;
        let (kind, media_type) =
            manifest::classify(&display, Some(desc.media_type().as_ref()), &bytes)?;
        let (digest, media_type, index_digest) = match kind {
            Kind::Image => (desc.digest().clone(), media_type, None),
            Kind::Index => {
                let inner = manifest::parse_index(&display, &bytes)?;
                let chosen = manifest::select_platform(&display, &inner, &Platform::host())?;
                let child = read_archived(store, lookup, chosen.digest())?;
                let (_, mt) =
                    manifest::classify(&display, Some(chosen.media_type().as_ref()), &child)?;
                (chosen.digest().clone(), mt, Some(desc.digest().clone()))
            }
        };
        let mut record = ImageRecord::new(name.as_ref(), digest, &media_type);
        record.index_digest = index_digest;
        store.image(&record)?;
        store.put(record.clone())?;
        out.push(record);
    }
    Ok(out)
}

/// A small blob of the archive, by digest (under `blobs/sha256/`).
fn read_archived(
    store: &ImageStore,
    lookup: &dyn Fn(&str) -> Result<Stored>,
    digest: &Digest,
) -> Result<Vec<u8>> {
    lookup(&format!("blobs/sha256/{}", digest.digest()))?;
    Ok(store.content().read_metadata(digest)?)
}

fn load_docker(
    store: &ImageStore,
    manifest_json: &[u8],
    lookup: &dyn Fn(&str) -> Result<Stored>,
) -> Result<Vec<ImageRecord>> {
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(manifest_json).map_err(|source| ArchiveError::Json {
            path: "manifest.json".into(),
            source,
        })?;
    let mut out = Vec::new();
    for entry in entries {
        let config = lookup(&entry.config)?;
        let config_json: ImageConfiguration = serde_json::from_slice(
            &store.content().read_metadata(&config.digest)?,
        )
        .map_err(|source| ArchiveError::Json {
            path: entry.config.clone(),
            source,
        })?;
        let diff_ids = config_json.rootfs().diff_ids();
        if diff_ids.len() != entry.layers.len() {
            return Err(ArchiveError::DiffIdCount {
                image: entry.config.clone(),
                layers: entry.layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        let mut layers = Vec::new();
        for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
            let stored = lookup(path)?;
            let blob = store.content().blob_path(&stored.digest);
            let compression = sniff(&blob);
            // Like docker load: every layer must be what the config says it is.
            if uncompressed_digest(&blob, compression)? != *diff_id {
                return Err(ArchiveError::DiffId {
                    image: entry.config.clone(),
                    layer: stored.digest.clone(),
                    diff_id: diff_id.clone(),
                });
            }
            let media_type = match compression {
                Compression::None => manifest::OCI_LAYER,
                Compression::Gzip => manifest::OCI_LAYER_GZIP,
                Compression::Zstd => manifest::OCI_LAYER_ZSTD,
            };
            layers.push(json!({
                "mediaType": media_type,
                "digest": stored.digest.to_string(),
                "size": stored.size,
            }));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": {
                "mediaType": manifest::OCI_CONFIG,
                "digest": config.digest.to_string(),
                "size": config.size,
            },
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest).map_err(|source| ArchiveError::Json {
            path: "manifest.json".into(),
            source,
        })?;
        // Validate through the typed manifest before storing.
        let _: ImageManifest = manifest::parse_image("manifest.json", &bytes)?;
        let digest = crate::content::sha256_of(&bytes);
        store.content().write_bytes(&digest, &bytes)?;
        let names: Vec<Option<Reference>> = match &entry.repo_tags {
            Some(tags) if !tags.is_empty() => tags
                .iter()
                .filter_map(|t| Reference::parse(t).ok())
                .map(Some)
                .collect(),
            _ => vec![None],
        };
        for name in names {
            let record = ImageRecord::new(name.as_ref(), digest.clone(), manifest::OCI_MANIFEST);
            store.image(&record)?;
            store.put(record.clone())?;
            out.push(record);
        }
    }
    Ok(out)
}

/// `sha256:<hex>` of a layer's uncompressed content, streamed.
fn uncompressed_digest(path: &Path, compression: Compression) -> Result<String> {
    let file = BufReader::new(File::open(path).map_err(ArchiveError::Read)?);
    let mut reader: Box<dyn Read> = match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(file).map_err(ArchiveError::Read)?)
        }
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(ArchiveError::Read)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// Compression of a stored file, by its magic number.
fn sniff(path: &Path) -> Compression {
    let mut magic = [0u8; 4];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .unwrap_or(0);
    match &magic[..n] {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    }
}

/// Normalises an archive path (`./a/../b` → `b`); `None` if it escapes the archive.
fn clean(p: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_are_normalised_and_escapes_rejected() {
        assert_eq!(clean(Path::new("./a/b/../c")).as_deref(), Some("a/c"));
        assert_eq!(
            clean(Path::new("/blobs/sha256/x")).as_deref(),
            Some("blobs/sha256/x")
        );
        assert_eq!(clean(Path::new("../x")), None);
    }

    #[test]
    fn docker_names_are_shortened_for_hub() {
        let r = |s: &str| Reference::parse(s).unwrap();
        assert_eq!(docker_name(&r("busybox")), "busybox:latest");
        assert_eq!(docker_name(&r("user/app:1")), "user/app:1");
        assert_eq!(docker_name(&r("h:5000/a/b:2")), "h:5000/a/b:2");
    }
}
