//! `update`: change the limits of a live container. Devices are left alone, as runc does
//! (a device program cannot be swapped without a window in which neither applies).

use std::path::Path;

use super::Error;
use crate::cgroups::Limits;
use crate::state::{ContainerDir, Status};

pub fn update(root: &Path, id: &str, limits: &Limits) -> Result<(), Error> {
    let dir = ContainerDir::open(root, id)?;
    let state = dir.load()?;
    let status = state.status(&dir.path);
    if status == Status::Stopped {
        return Err(Error::NotRunning { id: id.into() });
    }
    let limits = Limits {
        devices: Vec::new(),
        ..limits.clone()
    };
    state.cgroup.apply(&limits)?;
    Ok(())
}
