//! Images made here rather than pulled: a new layer on top of an image (`commit`) or on
//! nothing (`import`). The layer is gzipped into the content store while its uncompressed
//! digest (the config's diff ID) is computed; config and manifest are written after it.

use std::io::{self, Read, Write};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::content::{sha256_of, Ingest};
use crate::image::ImageRecord;
use crate::ops::error::{OpsError, Result};
use crate::ops::Engine;
use crate::reference::Reference;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// What the new image is made of besides its layer.
#[derive(Debug, Clone, Default)]
pub struct NewImage {
    /// `NAME[:TAG]`; unnamed when `None`.
    pub name: Option<String>,
    /// The image's history line: who made it and why.
    pub created_by: String,
    pub comment: String,
    pub author: String,
    /// Config fields to set (`Cmd`, `Env`, ...), after the base image's.
    pub config: serde_json::Map<String, Value>,
    /// Dockerfile instructions applied last (`-c/--change`).
    pub changes: Vec<String>,
}

/// An `io::Write` into an ingest.
struct IngestWriter<'a>(&'a mut Ingest);

impl Write for IngestWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes the uncompressed layer tar to `out`, hashing it.
pub(crate) struct LayerWriter<W: Write> {
    gz: flate2::write::GzEncoder<W>,
    hasher: Sha256,
}

impl<W: Write> Write for LayerWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.gz.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.gz.flush()
    }
}

/// Stores a layer whose uncompressed tar `produce` writes; returns (blob digest, size,
/// diff ID).
pub(crate) fn store_layer(
    engine: &Engine,
    produce: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<(String, u64, String)> {
    let store = engine.images()?;
    let mut ingest = store.content().ingest_unknown()?;
    let diff_id = {
        let mut w = LayerWriter {
            gz: flate2::write::GzEncoder::new(
                IngestWriter(&mut ingest),
                flate2::Compression::fast(),
            ),
            hasher: Sha256::new(),
        };
        produce(&mut w)?;
        let LayerWriter { gz, hasher } = w;
        gz.finish()
            .map_err(|e| OpsError::io("compressing the layer", e))?;
        format!("sha256:{}", hex::encode(hasher.finalize()))
    };
    let size = ingest.offset();
    let digest = ingest.commit(Some(size))?;
    Ok((digest.to_string(), size, diff_id))
}

/// Makes an image from a stored layer on top of `base` (an image name or ID) or on
/// nothing; returns its ID (the config digest).
pub(crate) fn make_image(
    engine: &Engine,
    base: Option<&str>,
    layer: (String, u64, String),
    new: &NewImage,
) -> Result<String> {
    let name = new.name.as_deref().map(Reference::parse).transpose()?;
    let store = engine.images()?;
    let (mut config, mut manifest, media_type) = match base {
        Some(b) => {
            let rec = store.lookup(b)?.remove(0);
            let info = store.image(&rec)?;
            let raw = store
                .content()
                .read_metadata(info.manifest.config().digest())?;
            let config: Value = serde_json::from_slice(&raw).map_err(|source| OpsError::Json {
                what: "the base image's config".into(),
                source,
            })?;
            let manifest =
                serde_json::to_value(&info.manifest).map_err(|source| OpsError::Json {
                    what: "the base image's manifest".into(),
                    source,
                })?;
            (config, manifest, rec.media_type.clone())
        }
        None => {
            let arch = crate::platform::Platform::host().architecture.clone();
            (
                json!({"architecture": arch, "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}, "history": []}),
                json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}),
                OCI_MANIFEST.to_string(),
            )
        }
    };
    let docker = media_type == DOCKER_MANIFEST;
    let now = crate::container::record::now_rfc3339();
    let (blob, size, diff_id) = layer;
    // Config: the fields given, then the changes, the new layer and its history line.
    {
        let c = config
            .as_object_mut()
            .ok_or_else(|| OpsError::InvalidField {
                field: "config",
                value: String::new(),
                reason: "the base image's config is not an object".into(),
            })?;
        let inner = c.entry("config").or_insert_with(|| json!({}));
        if !inner.is_object() {
            *inner = json!({});
        }
        if let Some(o) = inner.as_object_mut() {
            for (k, v) in &new.config {
                o.insert(k.clone(), v.clone());
            }
            for change in &new.changes {
                apply_change(o, change)?;
            }
        }
        c.insert("created".into(), now.clone().into());
        if !new.author.is_empty() {
            c.insert("author".into(), new.author.clone().into());
        }
        let rootfs = c
            .entry("rootfs")
            .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
        if let Some(ids) = rootfs.get_mut("diff_ids").and_then(Value::as_array_mut) {
            ids.push(diff_id.into());
        }
        let mut h = json!({"created": now, "created_by": new.created_by});
        if !new.comment.is_empty() {
            h["comment"] = new.comment.clone().into();
        }
        if !new.author.is_empty() {
            h["author"] = new.author.clone().into();
        }
        match c.get_mut("history").and_then(Value::as_array_mut) {
            Some(list) => list.push(h),
            None => {
                c.insert("history".into(), json!([h]));
            }
        }
    }
    let config_bytes = serde_json::to_vec(&config).map_err(|source| OpsError::Json {
        what: "the new image's config".into(),
        source,
    })?;
    let config_digest = sha256_of(&config_bytes);
    store.content().write_bytes(&config_digest, &config_bytes)?;
    manifest["config"] = json!({
        "mediaType": if docker { DOCKER_CONFIG } else { OCI_CONFIG },
        "digest": config_digest.to_string(),
        "size": config_bytes.len(),
    });
    let layer_desc = json!({
        "mediaType": if docker { DOCKER_LAYER } else { OCI_LAYER },
        "digest": blob,
        "size": size,
    });
    match manifest.get_mut("layers").and_then(Value::as_array_mut) {
        Some(l) => l.push(layer_desc),
        None => manifest["layers"] = json!([layer_desc]),
    }
    if let Some(o) = manifest.as_object_mut() {
        o.remove("annotations");
    }
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(|source| OpsError::Json {
        what: "the new image's manifest".into(),
        source,
    })?;
    let manifest_digest = sha256_of(&manifest_bytes);
    store
        .content()
        .write_bytes(&manifest_digest, &manifest_bytes)?;
    store.put(ImageRecord::new(
        name.as_ref(),
        manifest_digest,
        &media_type,
    ))?;
    let id = config_digest.to_string();
    if let Some(n) = &name {
        crate::events::emit(
            engine.root(),
            "image",
            "tag",
            &id,
            &[("name", n.to_string())],
        );
    }
    Ok(id)
}

/// One Dockerfile instruction of `--change` applied to an image config.
fn apply_change(c: &mut serde_json::Map<String, Value>, change: &str) -> Result<()> {
    let bad = |reason: &str| OpsError::InvalidField {
        field: "change",
        value: change.to_string(),
        reason: reason.to_string(),
    };
    let (instr, rest) = change
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((change.trim(), ""));
    let rest = rest.trim();
    let exec_form = || -> Value {
        match serde_json::from_str::<Vec<String>>(rest) {
            Ok(v) => json!(v),
            Err(_) => json!(["/bin/sh", "-c", rest]),
        }
    };
    let pairs = || -> Vec<(String, String)> {
        if !rest.contains('=') {
            return rest
                .split_once(char::is_whitespace)
                .map(|(k, v)| vec![(k.to_string(), v.trim().to_string())])
                .unwrap_or_default();
        }
        shlex::split(rest)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect()
    };
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => {
            c.insert("Cmd".into(), exec_form());
        }
        "ENTRYPOINT" => {
            c.insert("Entrypoint".into(), exec_form());
        }
        "ENV" => {
            let mut env: Vec<Value> = c
                .get("Env")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (k, v) in pairs() {
                env.retain(|e| !e.as_str().is_some_and(|e| e.starts_with(&format!("{k}="))));
                env.push(format!("{k}={v}").into());
            }
            c.insert("Env".into(), env.into());
        }
        "LABEL" => {
            let labels = c.entry("Labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            for (k, v) in pairs() {
                labels[k] = v.into();
            }
        }
        "EXPOSE" => {
            let ports = c.entry("ExposedPorts").or_insert_with(|| json!({}));
            if !ports.is_object() {
                *ports = json!({});
            }
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                ports[p] = json!({});
            }
        }
        "VOLUME" => {
            let vols = c.entry("Volumes").or_insert_with(|| json!({}));
            if !vols.is_object() {
                *vols = json!({});
            }
            let list: Vec<String> = serde_json::from_str(rest)
                .unwrap_or_else(|_| rest.split_whitespace().map(str::to_string).collect());
            for v in list {
                vols[v] = json!({});
            }
        }
        "USER" => {
            c.insert("User".into(), rest.into());
        }
        "WORKDIR" => {
            c.insert("WorkingDir".into(), rest.into());
        }
        "STOPSIGNAL" => {
            c.insert("StopSignal".into(), rest.into());
        }
        "" => return Err(bad("empty instruction")),
        other => {
            return Err(bad(&format!(
                "{other} is not supported (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)"
            )))
        }
    }
    Ok(())
}

/// `POST /images/create?fromSrc=-`: an image of one layer, the tar stream `input` (plain or
/// gzipped); returns its ID.
pub fn import(engine: &Engine, input: impl Read, new: &NewImage) -> Result<String> {
    let mut input = io::BufReader::new(input);
    let gz = {
        use std::io::BufRead;
        let head = input
            .fill_buf()
            .map_err(|e| OpsError::io("reading the imported archive", e))?;
        head.starts_with(&[0x1f, 0x8b])
    };
    let layer = store_layer(engine, |out| {
        let copied = if gz {
            io::copy(&mut flate2::read::GzDecoder::new(&mut input), out)
        } else {
            io::copy(&mut input, out)
        };
        copied.map_err(|e| OpsError::io("reading the imported archive", e))?;
        Ok(())
    })?;
    let mut new = new.clone();
    if new.created_by.is_empty() {
        new.created_by = String::new();
    }
    if new.comment.is_empty() {
        new.comment = "Imported from -".into();
    }
    let id = make_image(engine, None, layer, &new)?;
    crate::events::emit(
        engine.root(),
        "image",
        "import",
        &id,
        &[("name", new.name.clone().unwrap_or_default())],
    );
    Ok(id)
}
