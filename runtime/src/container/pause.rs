//! `pause` / `resume`: freeze and thaw every process of the container (v1 freezer or v2
//! cgroup.freeze). `state` then reports `paused`, derived from the freezer itself.

use std::path::Path;

use super::Error;
use crate::state::{ContainerDir, Status};

pub fn pause(root: &Path, id: &str) -> Result<(), Error> {
    let dir = ContainerDir::open(root, id)?;
    let state = dir.load()?;
    let status = state.status(&dir.path);
    if status != Status::Running {
        return Err(Error::WrongStatus {
            id: id.into(),
            action: "pause",
            status,
        });
    }
    state.cgroup.freeze()?;
    Ok(())
}

pub fn resume(root: &Path, id: &str) -> Result<(), Error> {
    let dir = ContainerDir::open(root, id)?;
    let state = dir.load()?;
    let status = state.status(&dir.path);
    if status != Status::Paused {
        return Err(Error::WrongStatus {
            id: id.into(),
            action: "resume",
            status,
        });
    }
    state.cgroup.thaw()?;
    Ok(())
}
