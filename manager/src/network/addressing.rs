//! The addresses of a new network: its IPv4 subnet (given or picked from [`USER_POOL`]),
//! gateway and range, and with `--ipv6` its IPv6 subnet (given or picked from
//! [`USER_POOL6`]) and gateway, each checked against the other networks of the store and the
//! host's routes.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net};

use super::store::{
    Backend, CreateOptions, Ipv6Config, Network, StoreError, USER_POOL, USER_POOL6,
};
use super::subnets::{self, Clash, HostRoute};

/// What [`choose`] settled on.
pub(crate) struct Addressing {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub ip_range: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Config>,
}

/// The first host address of a subnet: the default gateway.
pub(crate) fn first_host(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

/// Validates and completes the addresses of `opts` for a new network beside `existing`;
/// `own_bridge`'s routes are not a clash (the default network's bridge may be up already).
pub(crate) fn choose(
    opts: &CreateOptions,
    existing: &[Network],
    own_bridge: Option<&str>,
) -> Result<Addressing, StoreError> {
    let routes = subnets::host_routes();
    let taken: Vec<(String, IpNet)> = existing
        .iter()
        .flat_map(|n| {
            let v6 = n.ipv6.map(|c| (n.name.clone(), IpNet::V6(c.subnet)));
            std::iter::once((n.name.clone(), IpNet::V4(n.subnet))).chain(v6)
        })
        .collect();
    let subnet = match opts.subnet {
        Some(s) => {
            let s = s.trunc();
            subnets::check_free(IpNet::V4(s), &taken, &routes, own_bridge)
                .map_err(|c| clash(IpNet::V4(s), c))?;
            s
        }
        None => pick4(&taken, &routes)?,
    };
    if subnet.prefix_len() > 30 {
        return Err(StoreError::SubnetTooSmall { subnet });
    }
    let gateway = match opts.gateway {
        Some(g) if !subnet.contains(&g) || g == subnet.network() || g == subnet.broadcast() => {
            return Err(StoreError::GatewayOutside { gateway: g, subnet })
        }
        Some(g) => g,
        None => first_host(subnet),
    };
    if let Some(r) = opts.ip_range {
        if !subnet.contains(&r) {
            return Err(StoreError::RangeOutside { range: r, subnet });
        }
    }
    Ok(Addressing {
        subnet,
        gateway,
        ip_range: opts.ip_range.map(|r| r.trunc()),
        ipv6: ipv6(opts, &taken, &routes)?,
    })
}

/// The IPv6 half, checked like the IPv4 one.
fn ipv6(
    opts: &CreateOptions,
    taken: &[(String, IpNet)],
    routes: &[HostRoute],
) -> Result<Option<Ipv6Config>, StoreError> {
    if !opts.ipv6 {
        if let Some(subnet) = opts.subnet6 {
            return Err(StoreError::Ipv6NotEnabled { subnet });
        }
        if let Some(g) = opts.gateway6 {
            return Err(StoreError::GatewayWithoutSubnet { gateway: g.into() });
        }
        return Ok(None);
    }
    if opts.backend == Backend::Cni {
        return Err(StoreError::Ipv6Backend);
    }
    let subnet = match opts.subnet6 {
        Some(s) => {
            let s = s.trunc();
            subnets::check_free(IpNet::V6(s), taken, routes, None)
                .map_err(|c| clash(IpNet::V6(s), c))?;
            s
        }
        None => {
            let pool: IpNet = USER_POOL6.parse().unwrap_or_default();
            match subnets::pick(pool, 64, taken, routes) {
                Some(IpNet::V6(s)) => s,
                _ => return Err(StoreError::PoolExhausted { pool }),
            }
        }
    };
    if subnet.prefix_len() > 120 {
        return Err(StoreError::Subnet6TooSmall { subnet });
    }
    let gateway = match opts.gateway6 {
        Some(g) if !subnet.contains(&g) || g == subnet.network() => {
            return Err(StoreError::Gateway6Outside { gateway: g, subnet })
        }
        Some(g) => g,
        None => Ipv6Addr::from(u128::from(subnet.network()) + 1),
    };
    Ok(Some(Ipv6Config { subnet, gateway }))
}

fn clash(subnet: IpNet, c: Clash) -> StoreError {
    match c {
        Clash::Network {
            name,
            subnet: other,
        } => StoreError::Overlap {
            subnet,
            other: name,
            other_subnet: other,
        },
        Clash::Route { dest, device } => StoreError::HostRoute {
            subnet,
            route: dest,
            device,
        },
    }
}

fn pick4(taken: &[(String, IpNet)], routes: &[HostRoute]) -> Result<Ipv4Net, StoreError> {
    let pool: IpNet = USER_POOL.parse().unwrap_or_default();
    match subnets::pick(pool, 24, taken, routes) {
        Some(IpNet::V4(s)) => Ok(s),
        _ => Err(StoreError::PoolExhausted { pool }),
    }
}
