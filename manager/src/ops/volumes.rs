//! Volume operations: create, list, inspect, remove, prune.

use std::collections::HashMap;

use crate::ops::error::{OpsError, Result};
use crate::ops::models::{
    Filters, Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse,
};
use crate::ops::Engine;
use crate::volume::{self, VolumeFilter, VolumeStore};

fn store(engine: &Engine) -> Result<VolumeStore> {
    Ok(VolumeStore::open(engine.root())?)
}

/// Which containers use each volume (names), from the container records.
fn users(engine: &Engine) -> Result<HashMap<String, Vec<String>>> {
    Ok(crate::container::volume_users(engine.root())?)
}

fn model(v: &volume::Volume) -> Volume {
    let map_or_null =
        |m: &std::collections::BTreeMap<String, String>| (!m.is_empty()).then(|| m.clone());
    Volume {
        created_at: v.created_at.clone(),
        driver: v.driver.clone(),
        labels: map_or_null(&v.labels),
        mountpoint: v.mountpoint.clone(),
        name: v.name.clone(),
        options: map_or_null(&v.options),
        scope: "local".into(),
    }
}

/// `POST /volumes/create`: a local volume (a random name when none is given); `type`,
/// `device` and `o` options make a filesystem mounted on first use.
pub fn create(engine: &Engine, req: &VolumeCreateRequest) -> Result<Volume> {
    if !matches!(req.driver.as_str(), "" | "local") {
        return Err(OpsError::VolumeDriver {
            driver: req.driver.clone(),
        });
    }
    let name = (!req.name.is_empty()).then_some(req.name.as_str());
    let v = store(engine)?.create(name, req.labels.clone(), req.driver_opts.clone())?;
    let m = model(&v);
    crate::events::emit(
        engine.root(),
        "volume",
        "create",
        &m.name,
        &[("driver", "local".into())],
    );
    Ok(m)
}

/// `GET /volumes`: filters `name`, `label`, `label!`, `dangling`, `driver`.
pub fn list(engine: &Engine, filters: &Filters) -> Result<VolumeListResponse> {
    let filter = VolumeFilter::parse(&filters.to_terms())?;
    let vols = store(engine)?.list(&filter, &users(engine)?)?;
    Ok(VolumeListResponse {
        volumes: vols.iter().map(model).collect(),
        warnings: Vec::new(),
    })
}

/// `GET /volumes/{name}`.
pub fn inspect(engine: &Engine, name: &str) -> Result<Volume> {
    Ok(model(&store(engine)?.get(name)?))
}

/// `DELETE /volumes/{name}`: refused while a container uses it.
pub fn remove(engine: &Engine, name: &str) -> Result<()> {
    let in_use = users(engine)?.get(name).cloned().unwrap_or_default();
    store(engine)?.remove(name, &in_use)?;
    crate::events::emit(
        engine.root(),
        "volume",
        "destroy",
        name,
        &[("driver", "local".into())],
    );
    Ok(())
}

/// `POST /volumes/prune`: unused anonymous volumes (every unused one with `all`), filtered
/// by `label=` / `label!=`.
pub fn prune(engine: &Engine, all: bool, filters: &Filters) -> Result<VolumePruneResponse> {
    let terms = filters.to_terms();
    if let Some(bad) = terms
        .iter()
        .find(|f| !(f.starts_with("label=") || f.starts_with("label!=")))
    {
        return Err(OpsError::VolumePruneFilter { term: bad.clone() });
    }
    let filter = VolumeFilter::parse(&terms)?;
    let report = store(engine)?.prune(all, &filter, &users(engine)?)?;
    for name in &report.deleted {
        crate::events::emit(
            engine.root(),
            "volume",
            "destroy",
            name,
            &[("driver", "local".into())],
        );
    }
    Ok(VolumePruneResponse {
        volumes_deleted: report.deleted,
        space_reclaimed: report.reclaimed,
    })
}
