//! Image archives: `save` (docker-archive or oci-archive) and `load` (either).

use std::io::{Read, Write};
use std::str::FromStr;

use crate::archive::{save_docker, save_oci, SaveItem};
use crate::ops::error::{OpsError, Result};
use crate::ops::models::LoadedImage;
use crate::ops::Engine;
use crate::reference::Reference;

/// The tar layouts `save` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `docker save`'s (manifest.json, repositories).
    #[default]
    Docker,
    /// An OCI image layout (index.json, oci-layout).
    Oci,
}

impl FromStr for ArchiveFormat {
    type Err = OpsError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "docker-archive" => Ok(Self::Docker),
            "oci-archive" => Ok(Self::Oci),
            other => Err(OpsError::ArchiveFormat {
                format: other.to_string(),
            }),
        }
    }
}

/// `GET /images/get?names=`: writes the images as one archive. A name saves that name; an
/// ID saves the image under all its names.
pub fn save(
    engine: &Engine,
    names: &[String],
    format: ArchiveFormat,
    out: impl Write,
) -> Result<()> {
    let store = engine.images()?;
    let mut items: Vec<SaveItem> = Vec::new();
    for what in names {
        let hits = store.lookup(what)?;
        let by_name = Reference::parse(what).ok().is_some_and(|r| {
            hits.iter()
                .any(|h| h.name.as_deref() == Some(&r.to_string()))
        });
        for hit in hits {
            // As dockerd: an image named by its ID is saved without its tags.
            let name = hit.reference().filter(|r| by_name && r.tag().is_some());
            match items.iter_mut().find(|i| i.record.digest == hit.digest) {
                Some(item) => item.names.extend(name),
                None => items.push(SaveItem {
                    names: name.into_iter().collect(),
                    record: hit,
                }),
            }
            if by_name {
                break;
            }
        }
    }
    match format {
        ArchiveFormat::Oci => save_oci(store, &items, out)?,
        ArchiveFormat::Docker => save_docker(store, &items, out)?,
    }
    for item in &items {
        let id = store
            .image(&item.record)
            .map_or_else(|_| item.record.digest.to_string(), |i| i.id().to_string());
        let name = item
            .names
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        crate::events::emit(engine.root(), "image", "save", &id, &[("name", name)]);
    }
    Ok(())
}

/// `POST /images/load`: stores the images of an archive (either layout); blocking.
pub fn load(engine: &Engine, input: impl Read) -> Result<Vec<LoadedImage>> {
    let store = engine.images()?;
    let records = crate::archive::load(store, input)?;
    let mut loaded = Vec::new();
    for r in &records {
        // docker's image ID (the config digest) and its short form of the name.
        let id = store
            .image(r)
            .map_or_else(|_| r.digest.to_string(), |i| i.id().to_string());
        let name = r.name.clone().unwrap_or_default();
        crate::events::emit(engine.root(), "image", "load", &id, &[("name", name)]);
        loaded.push(LoadedImage {
            id,
            name: r
                .reference()
                .map(|n| n.familiar())
                .or_else(|| r.name.clone()),
        });
    }
    Ok(loaded)
}
