//! Endpoint records: what one container is attached to, written before each attachment is
//! made and updated after it, so a command that crashed half-way leaves enough behind for the
//! next one to undo it (`attach::recover`). The embedded DNS resolvers read them too: they
//! are the table of names.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::cni::ConfList;
use super::etc::EtcConfig;
use super::ports::PortMapping;
use super::store::{read_json, write_json_volatile, Backend, NetworkStore, StoreError};

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
    /// The IPv6 address on a dual-stack network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Addr>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prefix6: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

impl Attachment {
    /// The addresses of this attachment (IPv4 first).
    pub fn ips(&self) -> Vec<IpAddr> {
        std::iter::once(IpAddr::V4(self.ip))
            .chain(self.ipv6.map(IpAddr::V6))
            .collect()
    }

    /// Docker's `NetworkSettings.Networks.<name>` entry of `inspect`.
    pub fn settings_json(&self) -> Value {
        json!({
            "IPAddress": self.ip.to_string(),
            "IPPrefixLen": self.prefix,
            "Gateway": self.gateway.to_string(),
            "GlobalIPv6Address": self.ipv6.map(|a| a.to_string()).unwrap_or_default(),
            "GlobalIPv6PrefixLen": self.prefix6,
            "IPv6Gateway": self.gateway6.map(|a| a.to_string()).unwrap_or_default(),
            "MacAddress": self.mac,
            "Aliases": self.aliases,
        })
    }
}

/// Where an attachment got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Started; any part of it may have been made.
    Adding,
    /// Finished; `attachment` says what the container got.
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
    #[serde(default)]
    pub backend: Backend,
    /// CNI: the exact list ADD ran; DEL runs it again in reverse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflist: Option<ConfList>,
    /// CNI: `CNI_ARGS` given to ADD (a static address).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<(String, String)>,
    /// CNI: the list's result.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub result: Value,
    /// Native: the host end of the container's veth.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_link: String,
    /// Native: the ports published through this network (DNAT rules to its addresses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
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
    write_json_volatile(&path(store, &rec.container_id), rec)
}

pub(crate) fn delete(store: &NetworkStore, container_id: &str) -> Result<(), StoreError> {
    let p = path(store, container_id);
    // A writer killed between its temp file and the rename leaves the temp file.
    remove_if_there(&p.with_extension("json.tmp"))?;
    remove_if_there(&p)
}

/// Removes `p`; one already gone is fine.
pub(crate) fn remove_if_there(p: &Path) -> Result<(), StoreError> {
    match fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Remove {
            path: p.to_path_buf(),
            source,
        }),
    }
}

/// Temp files of record writes that never reached their rename (a killed `berth`), with the
/// container each belongs to. Remove one only while holding that container's endpoint lock.
pub(crate) fn stale_temp_files(store: &NetworkStore) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(store.endpoints_dir()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let id = name.strip_suffix(".json.tmp")?.to_string();
            Some((id, e.path()))
        })
        .collect()
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
            match read_json(&p) {
                Ok(r) => out.push(r),
                // Deleted by its owner between the listing and the read.
                Err(StoreError::Read { source, .. })
                    if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    out.sort_by(|a: &EndpointRecord, b| a.container_id.cmp(&b.container_id));
    Ok(out)
}
