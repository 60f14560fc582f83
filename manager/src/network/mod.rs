//! Container networking: network records, per-container network namespaces, the backends that
//! wire them (native: in-process netlink and one rule batch per network; CNI: the standard
//! plugins), and each user network's embedded DNS resolver.
//!
//! The container code uses it in this order: [`Netns::create`] a namespace, [`attach`] it to
//! the networks (`bridge` by default) with the published ports, hand the namespace path to the
//! runtime and bind-mount the files [`attach`] wrote (`EtcConfig::dir`); at the end [`detach`]
//! and [`Netns::remove`]. `none` needs only the namespace and `attach(.., &[], &[])` (loopback);
//! `host` needs neither, only [`etc::write_files`]. Any command may call [`recover`] first to
//! finish teardowns a crash interrupted.

mod addressing;
pub mod attach;
pub mod cni;
mod cni_backend;
pub mod dns;
pub mod endpoint;
pub mod etc;
pub mod firewall;
pub mod ipam;
pub mod native;
pub mod netlink;
pub mod netns;
pub mod ports;
pub mod rules;
pub mod slirp;
pub mod store;
mod subnets;

#[cfg(test)]
mod live_tests;

use std::path::PathBuf;

/// Where network namespaces are pinned: `$BERTH_RUN_DIR`, else /run/berth (a tmpfs, so
/// nothing outlives a reboot).
pub fn run_dir() -> PathBuf {
    std::env::var_os("BERTH_RUN_DIR")
        .filter(|d| !d.is_empty())
        .or_else(|| {
            // Rootless: the user's own run-time directory.
            crate::rootless::is_rootless()
                .then(|| std::env::var_os("XDG_RUNTIME_DIR"))
                .flatten()
                .filter(|d| !d.is_empty())
                .map(|d| PathBuf::from(d).join("berth").into_os_string())
        })
        .map_or_else(|| PathBuf::from("/run/berth"), PathBuf::from)
}

pub use attach::{
    attach, attachments, detach, published_ports, recover, AttachError, Endpoint, Request,
};
pub use endpoint::Attachment;
pub use etc::{DnsConfig, EtcConfig, ExtraHost};
pub use netns::{Netns, NetnsError};
pub use ports::{
    assign_host_ports, parse_exposed, parse_publish, publish_all, PortError, PortMapping, Protocol,
};
pub use store::{
    Backend, CreateOptions, Ipv6Config, Network, NetworkStore, StoreError, DEFAULT_BRIDGE,
    DEFAULT_NETWORK,
};
