//! `GET /system/df`, `berth system df`: what images, containers, volumes and the build
//! cache take on disk, and how much of it nothing uses.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::ops::containers::{self, ListOptions};
use crate::ops::error::Result;
use crate::ops::models::{ContainerSummary, ImageSummary, Volume};
use crate::ops::{images, volumes, Engine};

/// A container with its sizes (docker's `SizeRw`, `SizeRootFs`).
#[derive(Debug, Clone, Serialize)]
pub struct ContainerUsage {
    #[serde(flatten)]
    pub summary: ContainerSummary,
    #[serde(rename = "SizeRw")]
    pub size_rw: i64,
    #[serde(rename = "SizeRootFs")]
    pub size_root_fs: i64,
}

/// A volume with docker's `UsageData`.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeUsage {
    #[serde(flatten)]
    pub volume: Volume,
    #[serde(rename = "UsageData")]
    pub usage: UsageData,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UsageData {
    pub size: i64,
    pub ref_count: i64,
}

/// `GET /system/df`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskUsage {
    pub layers_size: i64,
    pub images: Vec<ImageSummary>,
    pub containers: Vec<ContainerUsage>,
    pub volumes: Vec<VolumeUsage>,
    pub build_cache: Vec<Value>,
}

/// One line of `system df`'s summary.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UsageRow {
    #[serde(rename = "Type")]
    pub kind: String,
    pub total_count: usize,
    pub active: usize,
    pub size: i64,
    pub reclaimable: i64,
}

/// Computes the usage (sizes walk the container layers and volumes).
pub fn disk_usage(engine: &Engine) -> Result<DiskUsage> {
    let images = images::list(engine, None)?;
    let layers_size = images.iter().map(|i| i.size.max(0)).sum();
    let list = containers::list(
        engine,
        &ListOptions {
            all: true,
            ..ListOptions::default()
        },
    )?;
    let store = engine.containers()?;
    let sizes: HashMap<String, i64> = images.iter().map(|i| (i.id.clone(), i.size)).collect();
    let mut cs = Vec::new();
    for c in list {
        let size_rw = store
            .load(&c.id)
            .map(|r| containers::rw_size(engine, &r))
            .unwrap_or(0);
        let base = sizes.get(&c.image_id).copied().unwrap_or(0);
        cs.push(ContainerUsage {
            summary: c,
            size_rw,
            size_root_fs: size_rw + base,
        });
    }
    let users = crate::container::volume_users(engine.root())?;
    let vols = volumes::list(engine, &Default::default())?
        .volumes
        .into_iter()
        .map(|v| VolumeUsage {
            usage: UsageData {
                size: dir_size(&v.mountpoint) as i64,
                ref_count: users.get(&v.name).map_or(0, |u| u.len() as i64),
            },
            volume: v,
        })
        .collect();
    Ok(DiskUsage {
        layers_size,
        images,
        containers: cs,
        volumes: vols,
        build_cache: Vec::new(),
    })
}

impl DiskUsage {
    /// docker's summary: Images, Containers, Local Volumes, Build Cache.
    pub fn summary(&self) -> Vec<UsageRow> {
        let img_active: Vec<&ImageSummary> =
            self.images.iter().filter(|i| i.containers > 0).collect();
        let img_used: i64 = img_active.iter().map(|i| i.size.max(0)).sum();
        let running = |c: &&ContainerUsage| {
            matches!(
                c.summary.state.as_str(),
                "running" | "paused" | "restarting"
            )
        };
        let c_size: i64 = self.containers.iter().map(|c| c.size_rw).sum();
        let c_active: Vec<&ContainerUsage> = self.containers.iter().filter(running).collect();
        let c_used: i64 = c_active.iter().map(|c| c.size_rw).sum();
        let v_size: i64 = self.volumes.iter().map(|v| v.usage.size).sum();
        let v_active: Vec<&VolumeUsage> = self
            .volumes
            .iter()
            .filter(|v| v.usage.ref_count > 0)
            .collect();
        let v_used: i64 = v_active.iter().map(|v| v.usage.size).sum();
        vec![
            UsageRow {
                kind: "Images".into(),
                total_count: self.images.len(),
                active: img_active.len(),
                size: self.layers_size,
                reclaimable: (self.layers_size - img_used).max(0),
            },
            UsageRow {
                kind: "Containers".into(),
                total_count: self.containers.len(),
                active: c_active.len(),
                size: c_size,
                reclaimable: c_size - c_used,
            },
            UsageRow {
                kind: "Local Volumes".into(),
                total_count: self.volumes.len(),
                active: v_active.len(),
                size: v_size,
                reclaimable: v_size - v_used,
            },
            UsageRow {
                kind: "Build Cache".into(),
                total_count: 0,
                active: 0,
                size: 0,
                reclaimable: 0,
            },
        ]
    }
}

/// Bytes of the regular files under `dir` (symlinks not followed; hard links counted once
/// per name, as `du --apparent-size -l` would).
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                total += md.len();
            }
        }
    }
    total
}
