//! `GET /images/{name}/history`: the config's history, newest first, each entry that made
//! a layer paired with that layer's size.

use std::str::FromStr;

use oci_spec::image::Digest;
use serde::Serialize;

use crate::ops::error::Result;
use crate::ops::Engine;

/// One history entry as docker's API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    /// The image ID for the newest entry, `<missing>` for the others.
    pub id: String,
    /// Seconds since the epoch.
    pub created: i64,
    pub created_by: String,
    pub tags: Option<Vec<String>>,
    /// Bytes the entry's layer adds (0 for entries without a layer).
    pub size: i64,
    pub comment: String,
}

pub fn history(engine: &Engine, what: &str) -> Result<Vec<HistoryItem>> {
    let store = engine.images()?;
    let records = store.records()?;
    let rec = store.lookup(what)?.remove(0);
    let info = store.image(&rec)?;
    let bytes = store.content().read_metadata(info.id())?;
    let config: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let layers = info.manifest.layers();
    let diff_ids: Vec<Digest> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().and_then(|s| Digest::from_str(s).ok()))
                .collect()
        })
        .unwrap_or_default();
    // docker's size of a layer: the bytes of the files it holds.
    let mut known = store.layer_sizes();
    let mut sizes = Vec::new();
    for (i, _) in diff_ids.iter().enumerate() {
        let size = layers.get(i).map_or(0, |l| store.layer_size(l, &mut known));
        sizes.push(i64::try_from(size).unwrap_or(i64::MAX));
    }
    let tags: Vec<String> = records
        .iter()
        .filter(|r| r.digest == rec.digest)
        .filter_map(|r| r.reference())
        .filter(|r| r.tag().is_some())
        .map(|r| r.familiar())
        .collect();
    let mut out = Vec::new();
    let mut layer = 0;
    let entries = config["history"].as_array().cloned().unwrap_or_default();
    for h in &entries {
        let empty = h["empty_layer"].as_bool().unwrap_or(false);
        let size = if empty {
            0
        } else {
            let s = sizes.get(layer).copied().unwrap_or(0);
            layer += 1;
            s
        };
        out.push(HistoryItem {
            id: "<missing>".into(),
            created: h["created"]
                .as_str()
                .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs() as i64),
            created_by: h["created_by"].as_str().unwrap_or("").to_string(),
            tags: None,
            size,
            comment: h["comment"].as_str().unwrap_or("").to_string(),
        });
    }
    out.reverse();
    if let Some(top) = out.first_mut() {
        top.id = info.id().to_string();
        top.tags = Some(tags);
    }
    Ok(out)
}
