//! Endpoint records: what one container is attached to, written before each CNI ADD and
//! updated after it, so a command that crashed half-way leaves enough behind for the next one
//! to run the matching DEL (`attach::recover`).

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cni::ConfList;
use super::etc::EtcConfig;
use super::ports::PortMapping;
use super::store::{read_json, write_json, NetworkStore, StoreError};

/// A container's attachment to one network, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub network: String,
    /// Interface name inside the container (`eth0`, `eth1`, ...).
    pub interface: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// Where an ADD got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// ADD started; the plugins may have done any part of it.
    Adding,
    /// ADD finished; `result` holds the list's result.
    Ready,
}

/// One network of one container, with everything DEL needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkEndpoint {
    pub network: String,
    pub bridge: String,
    pub internal: bool,
    pub interface: String,
    pub phase: Phase,
    /// The exact list ADD ran; DEL runs it again in reverse.
    pub conflist: ConfList,
    /// `CNI_ARGS` given to ADD (a static address).
    #[serde(default)]
    pub args: Vec<(String, String)>,
    #[serde(default)]
    pub result: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// Everything berth set up for one container's network namespace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub container_id: String,
    pub container_name: String,
    pub netns: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etc: Option<EtcConfig>,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    #[serde(default)]
    pub networks: Vec<NetworkEndpoint>,
}

impl EndpointRecord {
    /// The attachments whose ADD completed.
    pub fn attachments(&self) -> Vec<Attachment> {
        self.networks
            .iter()
            .filter_map(|n| n.attachment.clone())
            .collect()
    }
}

fn path(store: &NetworkStore, container_id: &str) -> PathBuf {
    store.endpoints_dir().join(format!("{container_id}.json"))
}

/// The endpoint record of one container, if it has one.
pub fn load(
    store: &NetworkStore,
    container_id: &str,
) -> Result<Option<EndpointRecord>, StoreError> {
    let p = path(store, container_id);
    if !p.exists() {
        return Ok(None);
    }
    read_json(&p).map(Some)
}

pub(crate) fn save(store: &NetworkStore, rec: &EndpointRecord) -> Result<(), StoreError> {
    write_json(&path(store, &rec.container_id), rec)
}

pub(crate) fn delete(store: &NetworkStore, container_id: &str) -> Result<(), StoreError> {
    let p = path(store, container_id);
    match fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Remove { path: p, source }),
    }
}

/// Every endpoint record of the store.
pub fn load_all(store: &NetworkStore) -> Result<Vec<EndpointRecord>, StoreError> {
    let dir = store.endpoints_dir();
    let entries = fs::read_dir(&dir).map_err(|source| StoreError::Read {
        path: dir.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|source| StoreError::Read {
            path: dir.clone(),
            source,
        })?;
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            out.push(read_json(&p)?);
        }
    }
    out.sort_by(|a: &EndpointRecord, b| a.container_id.cmp(&b.container_id));
    Ok(out)
}
