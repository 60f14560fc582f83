//! Container operations: create, start, run, stop, kill, wait, remove, pause, rename,
//! attach, and the rest of docker's container verbs.

mod attach;
mod create;
mod exec;
pub(crate) mod plan;
mod start;
mod stop;

use crate::container::lifecycle::{refresh, Paths};
use crate::container::runtime::Runtime;
use crate::container::{ContainerStore, Record};
use crate::ops::error::Result;
use crate::ops::Engine;

pub use attach::{attach, AttachInput, AttachOptions, Attached, Output};
pub use create::{create, CreateOptions};
pub use exec::{exec, top, ExecStdio};
pub use plan::check;
pub use start::{run, start, start_attached, RunMode, Running};
pub use stop::{
    kill, pause, remove, rename, restart, stop, unpause, wait, wait_timeout, RemoveOptions,
    StopOptions,
};

/// The container store and a container found by name, id or unique id prefix, its status
/// refreshed (a monitor that died unseen makes it exited).
pub(crate) fn find(engine: &Engine, what: &str) -> Result<(ContainerStore, Record)> {
    let store = engine.containers()?;
    let record = store.find(what)?;
    let record = refresh(&store, record)?;
    Ok((store, record))
}

/// A record by full id, its status refreshed.
pub(crate) fn load_fresh(store: &ContainerStore, id: &str) -> Result<Record> {
    Ok(refresh(store, store.load(id)?)?)
}

/// The runtime as the container was created with.
pub(crate) fn runtime(engine: &Engine, store: &ContainerStore, record: &Record) -> Runtime {
    Paths::new(engine.root(), store, record).runtime(record)
}
