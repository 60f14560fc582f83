//! Helpers shared by the container verbs.

use std::path::Path;

use anyhow::Result;
use berth::container::lifecycle::{refresh, Paths};
use berth::container::runtime::Runtime;
use berth::container::{ContainerStore, Record};

/// The container store and a container found by name or id, its status refreshed.
pub fn find(root: &Path, what: &str) -> Result<(ContainerStore, Record)> {
    let store = ContainerStore::open(root)?;
    let record = store.find(what)?;
    let record = refresh(&store, record)?;
    Ok((store, record))
}

/// The runtime as the container was created with.
pub fn runtime(root: &Path, store: &ContainerStore, record: &Record) -> Runtime {
    Paths::new(root, store, record).runtime(record)
}

/// Runs `f` for every named container, printing each name as docker does on success and
/// each error on stderr; fails at the end when any failed.
pub fn each(names: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<()> {
    let mut failed = 0;
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("Error: {e:#}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(super::Exit::silent(1).into());
    }
    Ok(())
}
