//! Container operations: create, start, run, stop, kill, wait, remove, pause, rename,
//! attach, and the rest of docker's container verbs.

mod archive;
mod attach;
mod changes;
mod create;
mod exec;
mod inspect;
mod list;
mod logs;
pub(crate) mod plan;
mod start;
mod stop;
mod update;

use crate::container::lifecycle::{refresh, Paths};
use crate::container::runtime::Runtime;
use crate::container::{ContainerStore, Record};
use crate::ops::error::Result;
use crate::ops::Engine;

pub(crate) use archive::reach::{stat_answer as cp_stat_answer, target_answer as cp_target_answer};
pub use archive::stat::{stat_path, PathStat};
pub use archive::{
    archive_get, archive_put, copy_target, split_copy_arg, ArchiveReader, CopyTarget,
};
pub(crate) use archive::{unpack_archive, write_archive};
pub use attach::{attach, AttachInput, AttachOptions, Attached, Output};
pub use changes::{changes, commit, export, Change, CommitOptions};
pub(crate) use changes::{copy_changes_json, copy_layer_tar};
pub use create::{create, CreateOptions};
pub use exec::{exec, exec_create, top, ExecChild, ExecStdio, EXEC_START_FAILED};
pub use inspect::inspect;
pub(crate) use list::rw_size;
pub use list::{list, prune, ContainerPruneResponse, ListOptions};
pub use logs::{logs, LogEntry, Logs, LogsOptions, Stream};
pub use plan::check;
pub use start::{run, start, start_attached, RunMode, Running};
pub use stop::{
    kill, pause, remove, rename, restart, stop, unpause, wait, wait_healthy, wait_timeout,
    RemoveOptions, StopOptions,
};
pub use update::{update, UpdateConfig, UpdateResponse};

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

/// Runs the monitor of container `id` (what `berth __monitor` is): it creates the container
/// through the runtime, owns its stdio, and lives until the container is down for good.
/// `sync` is the pipe its spawner waits on.
pub fn monitor(engine: &Engine, id: &str, start: bool, sync: Option<std::fs::File>) -> Result<()> {
    Ok(crate::container::monitor::run(
        engine.root(),
        id,
        start,
        sync,
    )?)
}
