//! The links, addresses and routes of the native backend, made in-process over rtnetlink
//! (the `rtnetlink` crate) instead of by the CNI bridge plugin's separate processes.
//!
//! Every request runs on a short-lived thread of its own with a current-thread tokio runtime:
//! the thread can enter a container's network namespace (`setns(2)` moves only the calling
//! thread) without touching berth's other threads, and the caller may itself be inside a
//! runtime, where `block_on` would panic.

use std::fs::File;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("starting a netlink connection")]
    Connect(#[source] io::Error),
    #[error("opening network namespace {path}")]
    OpenNetns {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("entering network namespace {path}")]
    Setns {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the netlink thread panicked")]
    Panicked,
    #[error("{what}: {}", nl_message(.source))]
    Request {
        what: String,
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("link {name} not found")]
    NoLink { name: String },
}

/// The kernel's errno as text (rtnetlink's Display prints the raw message struct).
fn nl_message(e: &rtnetlink::Error) -> String {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io().to_string(),
        other => other.to_string(),
    }
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

fn req(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    let what = what.into();
    move |source| NetlinkError::Request {
        what,
        source: Box::new(source),
    }
}

/// Runs `f` with a netlink handle on a thread of its own, in the namespace pinned at `netns`
/// (the caller's when `None`).
fn with_handle<T, F, Fut>(netns: Option<&Path>, f: F) -> Result<T, NetlinkError>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<T, NetlinkError>>,
{
    let ns = match netns {
        Some(p) => Some((
            File::open(p).map_err(|source| NetlinkError::OpenNetns {
                path: p.to_path_buf(),
                source,
            })?,
            p.to_path_buf(),
        )),
        None => None,
    };
    std::thread::scope(|s| {
        s.spawn(move || {
            if let Some((file, path)) = &ns {
                rustix::thread::move_into_link_name_space(
                    file.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(|e| NetlinkError::Setns {
                    path: path.clone(),
                    source: e.into(),
                })?;
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .map_err(NetlinkError::Connect)?;
            rt.block_on(async move {
                let (conn, handle, _) =
                    rtnetlink::new_connection().map_err(NetlinkError::Connect)?;
                tokio::spawn(conn);
                f(handle).await
            })
        })
        .join()
        .map_err(|_| NetlinkError::Panicked)?
    })
}

async fn index_of(handle: &Handle, name: &str) -> Result<Option<u32>, NetlinkError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(m)) => Ok(Some(m.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(req(format!("looking up link {name}"))(e)),
    }
}

/// Adds `addr/prefix` to link `index`; one already there is fine. IPv6 addresses skip
/// duplicate address detection (`IFA_F_NODAD`): berth hands them out uniquely, and a tentative
/// address cannot be used for the second or so DAD takes.
async fn add_address(
    handle: &Handle,
    index: u32,
    link: &str,
    addr: IpAddr,
    prefix: u8,
) -> Result<(), NetlinkError> {
    let mut add = handle.address().add(index, addr, prefix);
    if addr.is_ipv6() {
        add.message_mut()
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    match add.execute().await {
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
        r => r.map_err(req(format!("adding {addr}/{prefix} to {link}"))),
    }
}

/// Makes the bridge `name` with `addrs` (gateway/prefix) and brings it up; whatever of it
/// already exists is kept.
pub fn ensure_bridge(name: &str, addrs: &[(IpAddr, u8)]) -> Result<(), NetlinkError> {
    with_handle(None, |h| async move {
        let index = match index_of(&h, name).await? {
            Some(i) => i,
            None => {
                // The address is set, not left to the kernel: a bridge without one takes the
                // lowest of its ports' addresses, so it changes as containers come and go, and
                // a container whose ARP cache holds the old one loses its gateway (and DNS
                // resolver) until the entry expires. docker pins it too.
                let bridge = LinkBridge::new(name).address(bridge_mac(name).to_vec());
                let add = h.link().add(bridge.build()).execute().await;
                match add {
                    Err(e) if errno(&e) == Some(libc::EEXIST) => {}
                    r => r.map_err(req(format!("creating bridge {name}")))?,
                }
                index_of(&h, name)
                    .await?
                    .ok_or_else(|| NetlinkError::NoLink { name: name.into() })?
            }
        };
        for &(addr, prefix) in addrs {
            add_address(&h, index, name, addr, prefix).await?;
        }
        h.link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(req(format!("bringing up {name}")))
    })
}

/// A bridge's fixed MAC address: locally administered, unicast, from its name.
fn bridge_mac(name: &str) -> [u8; 6] {
    let d = Sha256::digest(name.as_bytes());
    [0x02, d[0], d[1], d[2], d[3], d[4]]
}

/// The host end of a container's link, and its peer inside the container.
#[derive(Debug, Clone)]
pub struct VethSpec<'a> {
    /// Host end's name, enslaved to `bridge` and up.
    pub host: &'a str,
    pub bridge: &'a str,
    /// The container's namespace and the peer's name and MAC address there.
    pub netns: &'a Path,
    pub peer: &'a str,
    pub mac: [u8; 6],
}

fn runtime() -> Result<tokio::runtime::Runtime, NetlinkError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(NetlinkError::Connect)
}

async fn connect() -> Result<Handle, NetlinkError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Connect)?;
    tokio::spawn(conn);
    Ok(handle)
}

fn enter(ns: &File, path: &Path) -> Result<(), NetlinkError> {
    rustix::thread::move_into_link_name_space(
        ns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| NetlinkError::Setns {
        path: path.to_path_buf(),
        source: e.into(),
    })
}

/// Gives a container its link on a bridge, all on one short-lived thread: the veth pair is
/// created in one request from the host's namespace (the host end enslaved to the bridge and
/// up, the peer made directly inside the container's namespace under its final name, so no
/// name of the container's can clash with a host interface); then the thread enters the
/// container's namespace and brings loopback and the link up with `addrs` and default routes
/// through `gateways`.
pub fn add_container_link(
    spec: &VethSpec<'_>,
    addrs: &[(IpAddr, u8)],
    gateways: &[IpAddr],
) -> Result<(), NetlinkError> {
    let ns = File::open(spec.netns).map_err(|source| NetlinkError::OpenNetns {
        path: spec.netns.to_path_buf(),
        source,
    })?;
    std::thread::scope(|s| {
        s.spawn(|| {
            runtime()?.block_on(async {
                let host = connect().await?;
                create_veth(&host, spec, ns.as_raw_fd()).await?;
                // The host connection's socket stays in the host's namespace; this thread,
                // and sockets it opens from now on, are in the container's.
                enter(&ns, spec.netns)?;
                let inside = connect().await?;
                configure(&inside, Some(spec.peer), addrs, gateways).await
            })
        })
        .join()
        .map_err(|_| NetlinkError::Panicked)?
    })?;
    // Hairpin mode lets a container reach its own published port through the host.
    let hairpin = Path::new("/sys/class/net")
        .join(spec.host)
        .join("brport/hairpin_mode");
    let _ = std::fs::write(hairpin, "1");
    Ok(())
}

async fn create_veth(h: &Handle, spec: &VethSpec<'_>, ns_fd: i32) -> Result<(), NetlinkError> {
    let bridge = index_of(h, spec.bridge)
        .await?
        .ok_or_else(|| NetlinkError::NoLink {
            name: spec.bridge.into(),
        })?;
    let peer: LinkMessage = LinkMessageBuilder::<LinkUnspec>::new()
        .name(spec.peer.to_string())
        .address(spec.mac.to_vec())
        .append_extra_attribute(LinkAttribute::NetNsFd(ns_fd))
        .build();
    let msg = LinkVeth::new(spec.host, spec.peer)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .controller(bridge)
        .up()
        .build();
    match h.link().add(msg.clone()).execute().await {
        // The host end's name comes from the container's id: a link of that name is the
        // container's previous one, whose namespace the kernel has not destroyed yet (a quick
        // restart; teardown leaves the veth to go with its namespace). It is deleted and the
        // pair made again.
        Err(e) if errno(&e) == Some(libc::EEXIST) => {
            let stale = LinkUnspec::new_with_name(spec.host).build();
            match h.link().del_with_message(stale).execute().await {
                Err(e) if !matches!(errno(&e), Some(libc::ENODEV) | Some(libc::ENOENT)) => {
                    return Err(req(format!("deleting stale veth {}", spec.host))(e));
                }
                _ => {}
            }
            h.link().add(msg).execute().await
        }
        r => r,
    }
    .map_err(req(format!("creating veth {}", spec.host)))
}

/// Loopback up, and for `link` (when given) its addresses, the link up, and default routes
/// through `gateways`; in the namespace of the handle's socket.
async fn configure(
    h: &Handle,
    link: Option<&str>,
    addrs: &[(IpAddr, u8)],
    gateways: &[IpAddr],
) -> Result<(), NetlinkError> {
    h.link()
        .set(LinkUnspec::new_with_name("lo").up().build())
        .execute()
        .await
        .map_err(req("bringing up lo"))?;
    let Some(link) = link else {
        return Ok(());
    };
    let index = index_of(h, link)
        .await?
        .ok_or_else(|| NetlinkError::NoLink { name: link.into() })?;
    for &(addr, prefix) in addrs {
        add_address(h, index, link, addr, prefix).await?;
    }
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(req(format!("bringing up {link}")))?;
    for gw in gateways {
        let msg = match gw {
            IpAddr::V4(g) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .gateway(*g)
                .output_interface(index)
                .build(),
            IpAddr::V6(g) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .gateway(*g)
                .output_interface(index)
                .build(),
        };
        match h.route().add(msg).execute().await {
            Err(e) if errno(&e) == Some(libc::EEXIST) => {}
            r => r.map_err(req(format!("adding the default route via {gw}")))?,
        }
    }
    Ok(())
}

/// Inside a container's namespace: loopback up (a container without networks, or on CNI
/// networks only).
pub fn loopback_up(netns: &Path) -> Result<(), NetlinkError> {
    with_handle(Some(netns), |h| async move {
        configure(&h, None, &[], &[]).await
    })
}

/// Deletes link `name` of the host; `false` when there is none.
pub fn delete_link(name: &str) -> Result<bool, NetlinkError> {
    with_handle(None, |h| async move {
        let msg = LinkUnspec::new_with_name(name).build();
        match h.link().del_with_message(msg).execute().await {
            Ok(()) => Ok(true),
            Err(e) if matches!(errno(&e), Some(libc::ENODEV) | Some(libc::ENOENT)) => Ok(false),
            Err(e) => Err(req(format!("deleting link {name}"))(e)),
        }
    })
}

/// Whether the host has a link of this name.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}
