//! The monitor's part in a rootless container's networking: slirp4netns for the default
//! network, or the attachment to user networks in berth's rootless network namespace (see
//! rootless::networks), both made between the runtime's create and start and undone when the
//! run ends.

use nix::unistd::Pid;
use std::path::PathBuf;

use crate::container::lifecycle::Paths;
use crate::container::record::Record;
use crate::container::store::ContainerStore;

/// A rootless container's attachment to its user networks, undone (and the rootless network
/// namespace stopped when it was the last) when the run ends.
pub(super) struct UserNetworks {
    root: PathBuf,
    id: String,
}

impl Drop for UserNetworks {
    fn drop(&mut self) {
        if let Err(e) = crate::rootless::networks::detach(&self.root, &self.id) {
            // The monitor's stderr is its log file (monitor.log), read when a run goes wrong.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "berth: detaching {} from its networks: {}",
                self.id,
                crate::ops::error::chain(&e)
            );
        }
    }
}

/// Wires the container of init `pid` to its user networks in the rootless network namespace
/// and records the attachments and published ports.
pub(super) fn user_networks(
    held: &crate::rootless::netns::Held,
    store: &ContainerStore,
    record: &Record,
    paths: &Paths,
    pid: Pid,
) -> std::result::Result<UserNetworks, String> {
    let attached = crate::rootless::networks::attach(held, &paths.root, record, pid.as_raw())
        .map_err(|e| crate::ops::error::chain(&e))?;
    let guard = UserNetworks {
        root: paths.root.clone(),
        id: record.id.clone(),
    };
    let ports: Vec<crate::container::record::PortBinding> = attached
        .ports
        .iter()
        .map(crate::container::record::PortBinding::from)
        .collect();
    store
        .update(&record.id, |r| {
            r.networks = attached
                .attachments
                .iter()
                .map(|a| (a.network.clone(), a.settings_json()))
                .collect();
            r.config.ports = ports.clone();
        })
        .map_err(|e| e.to_string())?;
    Ok(guard)
}

/// Starts slirp4netns for the container of init `pid` and forwards its published ports
/// (those without a host port get a free one, recorded for `port` and `ps`).
pub(super) fn user_mode_network(
    store: &ContainerStore,
    record: &Record,
    paths: &Paths,
    pid: Pid,
) -> std::result::Result<crate::network::slirp::Slirp, String> {
    use crate::network::slirp::{free_port, Slirp};
    // A short path: a socket's must fit in sun_path.
    let run = crate::network::run_dir();
    std::fs::create_dir_all(&run).map_err(|e| format!("creating {}: {e}", run.display()))?;
    let api = run.join(format!(
        "slirp-{}.sock",
        &record.id[..12.min(record.id.len())]
    ));
    let slirp = Slirp::start(pid.as_raw(), &api, &paths.dir.join("slirp.log"))
        .map_err(|e| e.to_string())?;
    let mut publish = record.config.publish.clone();
    for m in publish.iter_mut() {
        if m.host_port == 0 {
            m.host_port = free_port(m).map_err(|e| e.to_string())?;
        }
        slirp.forward(m).map_err(|e| e.to_string())?;
    }
    let ports: Vec<crate::container::record::PortBinding> = publish
        .iter()
        .map(crate::container::record::PortBinding::from)
        .collect();
    store
        .update(&record.id, |r| {
            r.config.publish = publish.clone();
            r.config.ports = ports.clone();
        })
        .map_err(|e| e.to_string())?;
    Ok(slirp)
}
